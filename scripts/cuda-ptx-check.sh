#!/usr/bin/env bash
# Compiles the CUDA kernels (crates/hamming/src/cuda/kernels.cu, which NVRTC compiles at run
# time) to PTX with clang, on a machine with no GPU and no CUDA toolkit: catches syntax and
# type errors in the kernel source before a GPU machine ever sees it. NVRTC provides __popcll,
# atomicAdd, min and __syncthreads itself; the prelude below declares them for clang.
#
#   scripts/cuda-ptx-check.sh        (installs Debian's clang-14 with apt when no clang is found)
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG="$(command -v clang++ || command -v clang++-14 || true)"
if [ -z "$CLANG" ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get install -y --no-install-recommends clang-14 >/dev/null
        CLANG="$(command -v clang++-14)"
    else
        echo "cuda-ptx-check: no clang++ and no root apt-get to install it" >&2
        exit 1
    fi
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/kernels.cu" <<'PRELUDE'
#include <__clang_cuda_builtin_vars.h>
#define __forceinline__ __attribute__((always_inline))
#define __device__ __attribute__((device))
#define __global__ __attribute__((global))
#define __shared__ __attribute__((shared))
__device__ int __popcll(unsigned long long);
__device__ unsigned atomicAdd(unsigned*, unsigned);
__device__ void __syncthreads();
__device__ unsigned min(unsigned, unsigned);
PRELUDE
cat crates/hamming/src/cuda/kernels.cu >> "$WORK/kernels.cu"
"$CLANG" -x cuda --cuda-device-only --cuda-gpu-arch=sm_80 -nocudainc -nocudalib \
    -Wall -Wextra -Werror -S -o "$WORK/kernels.ptx" "$WORK/kernels.cu"
entries="$(grep -c '^\.visible \.entry' "$WORK/kernels.ptx" || true)"
want="$(grep -c 'extern "C" __global__' crates/hamming/src/cuda/kernels.cu)"
if [ "$entries" != "$want" ]; then
    echo "cuda-ptx-check: $entries kernel entries in the PTX, $want in kernels.cu" >&2
    exit 1
fi
echo "cuda-ptx-check: $entries kernels compile to PTX ($("$CLANG" --version | head -1))"
