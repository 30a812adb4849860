"""seqmodal.search vs faiss.IndexBinaryFlat.search on the same numpy arrays (bench/python_faiss.sh)."""

import os
import platform
import time

import faiss
import numpy as np

import seqmodal

REPS = int(os.environ.get("REPS", "5"))
N = int(os.environ.get("N", "1000000"))
NQ, K = 1000, 100
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"seqmodal {seqmodal.__version__}, faiss {faiss.__version__}, numpy {np.__version__}; CPU: {cpu}")
rng = np.random.default_rng(2024)
for bits in (64, 128):
    db = rng.integers(0, 256, size=(N, bits // 8), dtype=np.uint8)
    q = rng.integers(0, 256, size=(NQ, bits // 8), dtype=np.uint8)
    index = faiss.IndexBinaryFlat(bits)
    index.add(db)
    for threads in (1, 2):
        faiss.omp_set_num_threads(threads)
        index.search(q[:10], K)
        seqmodal.search(db, q[:10], k=K, threads=threads)
        best_f = best_s = float("inf")
        # Alternated, best of REPS on each side: both see the same machine noise.
        for _ in range(REPS):
            t = time.perf_counter()
            fD, fI = index.search(q, K)
            best_f = min(best_f, time.perf_counter() - t)
            t = time.perf_counter()
            D, I = seqmodal.search(db, q, k=K, threads=threads)
            best_s = min(best_s, time.perf_counter() - t)
        same_d, same_i = np.array_equal(D, fD), np.array_equal(I, fI)
        print(f"top-{K} {NQ} q x {N} db {bits}-bit, {threads} thread(s): seqmodal {best_s:.3f} s, "
              f"faiss {best_f:.3f} s -> {best_f / best_s:.2f}x; ids equal: {same_i}, distances equal: {same_d}",
              flush=True)
        if not (same_d and same_i):
            raise SystemExit("results differ from faiss")
