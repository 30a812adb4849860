#!/usr/bin/env bash
# CUDA backend check on a machine with an NVIDIA GPU (CUDA 12/13 driver), from a prebuilt binary.
#
#   cargo build --release --features cuda        # on the build machine (no GPU needed)
#   scp target/release/seqmodal scripts/gpu-check.sh gpu-host:
#   ./gpu-check.sh ./seqmodal                    # on the GPU machine (no Rust needed)
#
# 1. equality: `seqmodal search/eval --backend cuda` against `--backend cpu` on generated
#    codes (random bytes from /dev/urandom, hand-written .npy headers: no Python needed);
#    ids.npy and distances.npy must be byte-identical (cmp), eval JSON equal but for timing;
# 2. benchmark: `seqmodal bench search --backend cuda` (scan GB/s, top-100, mAP@all vs CPU).
# Exits non-zero on the first difference.
#
# Rehearsal without a GPU: `cargo build --release --features cuda-emulator` makes `--backend cuda`
# run the same kernels on the CPU emulator (results only: its timings mean nothing), so the whole
# script can be checked end to end before a GPU machine is available (~20 min on 2 cores).
set -euo pipefail
BIN="${1:-target/release/seqmodal}"
[ -x "$BIN" ] || { echo "usage: $0 path/to/seqmodal (built with --features cuda)" >&2; exit 2; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

# NVRTC: seqmodal (cudarc, built against CUDA 12.8) asks the loader for libnvrtc.so, .so.12,
# .so.11, ... but not .so.13, and a CUDA 13 machine may have NVRTC only as libnvrtc.so.13, or
# only outside the loader's path (a toolkit in /usr/local/cuda*, PyTorch's nvidia wheels).
# Find one and point the loader at it: a libnvrtc.so link in $WORK/lib, and its folder (for
# libnvrtc-builtins) on LD_LIBRARY_PATH.
nvrtc_setup() {
    local found="" f py_libs
    py_libs="$(python3 -c 'import glob, site
print(" ".join(g for p in site.getsitepackages() for g in glob.glob(p + "/nvidia/**/libnvrtc.so*", recursive=True)))' \
        2>/dev/null || true)"
    for f in $(ldconfig -p 2>/dev/null | awk '/libnvrtc\.so/ {print $NF}' || true) \
        /usr/local/cuda*/lib64/libnvrtc.so* /usr/local/cuda*/targets/*/lib/libnvrtc.so* $py_libs; do
        case "$f" in *builtins*) continue ;; esac
        if [ -e "$f" ]; then found="$f"; break; fi
    done
    if [ -z "$found" ]; then
        echo "gpu-check: no libnvrtc found; seqmodal will report it if it cannot load NVRTC either" >&2
        return 0
    fi
    mkdir -p "$WORK/lib"
    ln -sf "$found" "$WORK/lib/libnvrtc.so"
    export LD_LIBRARY_PATH="$WORK/lib:$(dirname "$found")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "NVRTC: $found"
}
nvrtc_setup

# write_npy FILE ROWS COLS: uint8 (ROWS, COLS) .npy from stdin bytes (numpy's v1 layout).
write_npy() {
    local file=$1 rows=$2 cols=$3
    local dict="{'descr': '|u1', 'fortran_order': False, 'shape': ($rows, $cols), }"
    local total=$(( (10 + ${#dict} + 1 + 63) / 64 * 64 ))
    local hlen=$(( total - 10 ))
    {
        printf '\x93NUMPY\x01\x00'
        printf "\\x$(printf %02x $((hlen & 255)))\\x$(printf %02x $((hlen >> 8)))"
        printf '%s' "$dict"
        printf '%*s' $(( hlen - ${#dict} - 1 )) ''
        printf '\n'
        head -c $(( rows * cols ))
    } > "$file"
}

codes() { head -c $(( $2 * $3 )) /dev/urandom | write_npy "$1" "$2" "$3"; }

# Multi-hot labels, each class present with probability 1/16.
MAP=""
for v in $(seq 0 255); do if (( v % 16 == 0 )); then MAP+='\001'; else MAP+='\000'; fi; done
labels() { head -c $(( $2 * $3 )) /dev/urandom | tr '\000-\377' "$MAP" | write_npy "$1" "$2" "$3"; }

fail=0
check_search() { # name db q k [radius]
    local name=$1 db=$2 q=$3 k=$4 extra=()
    [ $# -ge 5 ] && extra=(--radius "$5")
    for be in cpu cuda; do
        "$BIN" search --database "$db" --queries "$q" -k "$k" "${extra[@]}" --backend $be --out "$WORK/$name-$be" \
            > "$WORK/$name-$be.json"
    done
    if cmp -s "$WORK/$name-cpu/ids.npy" "$WORK/$name-cuda/ids.npy" \
        && cmp -s "$WORK/$name-cpu/distances.npy" "$WORK/$name-cuda/distances.npy"; then
        echo "PASS search $name: cuda == cpu ($(grep -o '"seconds":[0-9.e-]*' "$WORK/$name-cuda.json") cuda, $(grep -o '"seconds":[0-9.e-]*' "$WORK/$name-cpu.json") cpu)"
    else
        echo "FAIL search $name: cuda and cpu results differ"; fail=1
    fi
}

codes "$WORK/db64.npy" 1000000 8;   codes "$WORK/q64.npy" 1000 8
codes "$WORK/db128.npy" 1000000 16; codes "$WORK/q128.npy" 1000 16
codes "$WORK/db96.npy" 200000 12;   codes "$WORK/q96.npy" 300 12
codes "$WORK/db256.npy" 200000 32;  codes "$WORK/q256.npy" 300 32
codes "$WORK/dbsmall.npy" 20000 8;  codes "$WORK/qsmall.npy" 50 8
check_search top100-64 "$WORK/db64.npy" "$WORK/q64.npy" 100
check_search top100-128 "$WORK/db128.npy" "$WORK/q128.npy" 100
check_search top3000-64 "$WORK/db64.npy" "$WORK/q64.npy" 3000
check_search range-128 "$WORK/db128.npy" "$WORK/q128.npy" 50 40
check_search top10-96 "$WORK/db96.npy" "$WORK/q96.npy" 10
check_search top100-256 "$WORK/db256.npy" "$WORK/q256.npy" 100
check_search full-ranking "$WORK/dbsmall.npy" "$WORK/qsmall.npy" 20000

labels "$WORK/dl.npy" 200000 24; labels "$WORK/ql.npy" 2000 24
codes "$WORK/dbe.npy" 200000 8;  codes "$WORK/qe.npy" 2000 8
strip() { sed -E 's/"(backend|kernel|seconds|threads)":("[^"]*"|[0-9.e+-]+),?//g' "$1"; }
for be in cpu cuda; do
    "$BIN" eval --database "$WORK/dbe.npy" --queries "$WORK/qe.npy" --db-labels "$WORK/dl.npy" \
        --query-labels "$WORK/ql.npy" --k 100 --backend $be > "$WORK/eval-$be.json"
done
if [ "$(strip "$WORK/eval-cpu.json")" = "$(strip "$WORK/eval-cuda.json")" ]; then
    echo "PASS eval mAP@all 2000 x 200000: cuda == cpu (bit-identical JSON but timing)"
    grep -o '"map":[0-9.e-]*' "$WORK/eval-cuda.json"
else
    echo "FAIL eval: cuda and cpu differ"; fail=1
    head -c 400 "$WORK/eval-cpu.json"; echo; head -c 400 "$WORK/eval-cuda.json"; echo
fi

echo "== bench search --backend cuda"
"$BIN" bench search --backend cuda
exit $fail
