typedef unsigned long long u64;
typedef unsigned int u32;

__device__ __forceinline__ u32 dist(const u64* a, const u64* b, u32 w) {
    u32 d = 0;
    for (u32 i = 0; i < w; ++i) d += __popcll(a[i] ^ b[i]);
    return d;
}

__device__ __forceinline__ u32 relevant(const u64* a, const u64* b, u32 lw) {
    u64 x = 0;
    for (u32 i = 0; i < lw; ++i) x |= a[i] & b[i];
    return x != 0;
}

// Bins per query: nbins = bits + 1 (distance) or 2 * (bits + 1) (2 * distance + relevant).
// Grid: x strides over the database, y = blocks of qb queries. Shared: queries, labels, bins.
extern "C" __global__ void hist_kernel(const u64* db, const u64* dl, u64 n, const u64* q, const u64* ql,
                                       u32 nq, u32 w, u32 lw, u32 with_labels, u32 nbins, u32 qb, u32* hist) {
    extern __shared__ u64 shm[];
    u32 q0 = blockIdx.y * qb;
    u32 qn = min(qb, nq - q0);
    u64* sq = shm;
    u64* sql = shm + qb * w;
    u32* bins = (u32*)(sql + qb * lw);
    for (u32 i = threadIdx.x; i < qn * w; i += blockDim.x) sq[i] = q[(u64)q0 * w + i];
    if (with_labels) for (u32 i = threadIdx.x; i < qn * lw; i += blockDim.x) sql[i] = ql[(u64)q0 * lw + i];
    for (u32 i = threadIdx.x; i < qn * nbins; i += blockDim.x) bins[i] = 0;
    __syncthreads();
    for (u64 j = blockIdx.x * (u64)blockDim.x + threadIdx.x; j < n; j += (u64)gridDim.x * blockDim.x) {
        if (w == 1) {
            u64 c = db[j];
            for (u32 t = 0; t < qn; ++t) {
                u32 bin = __popcll(sq[t] ^ c);
                if (with_labels) bin = 2 * bin + relevant(sql + t * lw, dl + j * lw, lw);
                atomicAdd(&bins[t * nbins + bin], 1u);
            }
        } else {
            for (u32 t = 0; t < qn; ++t) {
                u32 bin = dist(sq + t * w, db + j * w, w);
                if (with_labels) bin = 2 * bin + relevant(sql + t * lw, dl + j * lw, lw);
                atomicAdd(&bins[t * nbins + bin], 1u);
            }
        }
    }
    __syncthreads();
    for (u32 i = threadIdx.x; i < qn * nbins; i += blockDim.x)
        if (bins[i]) atomicAdd(&hist[(u64)q0 * nbins + i], bins[i]);
}

// Appends (distance << 32 | index) of every item with distance <= thr[query] at out[offs[query] + ...].
extern "C" __global__ void collect_kernel(const u64* db, u64 n, const u64* q, u32 nq, u32 w, u32 qb,
                                          const u32* thr, const u64* offs, u32* fill, u64* out) {
    extern __shared__ u64 shm[];
    u32 q0 = blockIdx.y * qb;
    u32 qn = min(qb, nq - q0);
    for (u32 i = threadIdx.x; i < qn * w; i += blockDim.x) shm[i] = q[(u64)q0 * w + i];
    __syncthreads();
    for (u64 j = blockIdx.x * (u64)blockDim.x + threadIdx.x; j < n; j += (u64)gridDim.x * blockDim.x) {
        for (u32 t = 0; t < qn; ++t) {
            u32 d = dist(shm + t * w, db + j * w, w);
            u32 qi = q0 + t;
            if (d <= thr[qi]) {
                u32 slot = atomicAdd(&fill[qi], 1u);
                out[offs[qi] + slot] = ((u64)d << 32) | j;
            }
        }
    }
}

// One thread per query walks the database in index order (the CPU engine's order): running
// (position << 32 | hits) per distance bucket, starting from the bucket bases; every relevant
// item adds h / p to the sums of the metrics whose cut-off it is within (u64 max for map).
// Each metric's i-th term goes to lane i % 4 of its 4 partial sums (the CPU's LaneSum); the
// host combines them as (l0 + l1) + (l2 + l3). Sums, counts and cut-offs live in per-thread
// arrays (at most AP_METRICS metrics a launch; the host launches once per group) and are
// written out once at the end: no global read-modify-write chain per relevant item.
#define AP_METRICS 8
extern "C" __global__ void ap_kernel(const u64* db, const u64* dl, u64 n, const u64* q, const u64* ql,
                                     u32 nq, u32 w, u32 lw, u32 nb, const u32* hist,
                                     const u64* cuts, u32 nm, double* sums, u64* counts) {
    extern __shared__ u64 cur_all[];
    u32 qi = blockIdx.x * blockDim.x + threadIdx.x;
    if (qi >= nq || nm > AP_METRICS) return;
    u64* cur = cur_all + (u64)threadIdx.x * nb;
    const u32* h = hist + (u64)qi * 2 * nb;
    u64 acc = 0;
    for (u32 d = 0; d < nb; ++d) {
        cur[d] = acc;
        u64 miss = h[2 * d], hit = h[2 * d + 1];
        acc += ((miss + hit) << 32) | hit;
    }
    double s[AP_METRICS][4];
    u64 c[AP_METRICS], cut[AP_METRICS];
    for (u32 m = 0; m < nm; ++m) {
        for (u32 l = 0; l < 4; ++l) s[m][l] = 0.0;
        c[m] = 0;
        cut[m] = cuts[m];
    }
    const u64* qq = q + (u64)qi * w;
    const u64* qqq = ql + (u64)qi * lw;
    for (u64 j = 0; j < n; ++j) {
        u32 d = dist(qq, db + j * w, w);
        u32 r = relevant(qqq, dl + j * lw, lw);
        u64 v = cur[d] + ((1ull << 32) | r);
        cur[d] = v;
        if (r) {
            u64 p = v >> 32;
            double t = (double)(v & 0xffffffffull) / (double)p;
            for (u32 m = 0; m < nm; ++m) {
                if (p <= cut[m]) {
                    s[m][c[m] & 3] += t;
                    c[m] += 1;
                }
            }
        }
    }
    for (u32 m = 0; m < nm; ++m) {
        for (u32 l = 0; l < 4; ++l) sums[((u64)qi * nm + m) * 4 + l] = s[m][l];
        counts[(u64)qi * nm + m] = c[m];
    }
}
