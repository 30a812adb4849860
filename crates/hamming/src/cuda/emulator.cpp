// CUDA's execution model on the CPU, for testing kernels.cu where there is no GPU.
//
// A launch runs the grid's blocks one after another. The threads of a block are fibers
// (ucontext) on one OS thread: each runs until it reaches __syncthreads or returns, then the
// next one runs; when every thread of the block has reached the barrier, all go on. A barrier
// that some threads of a block reach and others never do (undefined behaviour on CUDA) fails
// the launch. Dynamic shared memory is one buffer of the launch's size, filled with 0xA5 before
// every block (CUDA leaves it uninitialised). The threads of a block run in ascending order in
// even blocks and descending order in odd ones. So a kernel that reads shared memory nobody
// wrote, or that another thread writes without a barrier in between (a race on CUDA), reads
// garbage or gets results that differ between blocks, at least in one of the two orders.
//
// build.rs turns each `extern __shared__ T name[];` of kernels.cu into a pointer to that
// buffer and writes the result to kernels_emulated.cu, included below.

#include <ucontext.h>

#include <cstring>
#include <functional>
#include <mutex>
#include <vector>

struct dim3 {
    unsigned x, y, z;
};

static dim3 threadIdx, blockIdx, blockDim, gridDim;
static void* emu_shared_mem;

namespace emu {
enum class State { Ready, AtBarrier, Done };
struct Fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    State state;
};
static ucontext_t scheduler;
static std::vector<Fiber>* fibers;
static unsigned current;
static const std::function<void()>* kernel;

static void run_fiber() {
    (*kernel)();
    (*fibers)[current].state = State::Done;
    // Returning switches to uc_link, the scheduler.
}

static void barrier() {
    Fiber& f = (*fibers)[current];
    f.state = State::AtBarrier;
    swapcontext(&f.ctx, &scheduler);
}
}  // namespace emu

#define __global__
#define __device__
#define __forceinline__ inline

static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline unsigned atomicAdd(unsigned* p, unsigned v) {
    unsigned old = *p;
    *p = old + v;
    return old;
}
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline void __syncthreads() { emu::barrier(); }

#include "kernels_emulated.cu"

namespace emu {
// 64 KiB of stack per thread: the kernels keep a few scalars and no arrays on the stack.
constexpr size_t STACK = 64 * 1024;

// Runs one block to completion. 0 on success, 2 on a barrier not every thread reached.
static int run_block(std::vector<Fiber>& fs, bool descending) {
    unsigned n = fs.size();
    for (unsigned t = 0; t < n; ++t) {
        Fiber& f = fs[t];
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack.data();
        f.ctx.uc_stack.ss_size = f.stack.size();
        f.ctx.uc_link = &scheduler;
        makecontext(&f.ctx, run_fiber, 0);
        f.state = State::Ready;
    }
    for (;;) {
        for (unsigned i = 0; i < n; ++i) {
            unsigned t = descending ? n - 1 - i : i;
            if (fs[t].state != State::Ready) continue;
            current = t;
            threadIdx = {t, 0, 0};
            swapcontext(&scheduler, &fs[t].ctx);
        }
        unsigned waiting = 0, done = 0;
        for (auto& f : fs) (f.state == State::AtBarrier ? waiting : done) += 1;
        if (waiting == 0) return 0;
        if (done != 0) return 2;
        for (auto& f : fs) f.state = State::Ready;
    }
}

}  // namespace emu

// A launch's shape, as `Launch` in mod.rs lays it out (`repr(C)`).
struct Launch {
    unsigned grid[3];
    unsigned block;
    unsigned shared;
};

namespace emu {
// Runs `body` as the kernel of launch `l`. 0 on success, 1 for a launch CUDA would refuse (an
// empty block, more than 1024 threads, shared memory over 48 KiB), 2 for a barrier not every
// thread of a block reached. One launch at a time.
static int launch(const Launch& l, const std::function<void()>& body) {
    const unsigned* grid = l.grid;
    unsigned block = l.block, shared = l.shared;
    if (block == 0 || block > 1024 || shared > 48 * 1024) return 1;
    static std::mutex one_launch;
    std::lock_guard<std::mutex> guard(one_launch);
    std::vector<unsigned long long> mem(shared / 8 + 1);
    std::vector<Fiber> fs(block);
    for (auto& f : fs) f.stack.resize(STACK);
    emu_shared_mem = mem.data();
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block, 1, 1};
    fibers = &fs;
    kernel = &body;
    unsigned long long b = 0;
    for (unsigned z = 0; z < grid[2]; ++z)
        for (unsigned y = 0; y < grid[1]; ++y)
            for (unsigned x = 0; x < grid[0]; ++x, ++b) {
                std::memset(mem.data(), 0xA5, mem.size() * 8);
                blockIdx = {x, y, z};
                if (int rc = run_block(fs, b % 2 == 1)) return rc;
            }
    return 0;
}
}  // namespace emu

typedef unsigned long long u64;
typedef unsigned int u32;

extern "C" int emu_hist_kernel(const Launch* l, const u64* db, const u64* dl, u64 n, const u64* q, const u64* ql,
                               u32 nq, u32 w, u32 lw, u32 with_labels, u32 nbins, u32 qb, u32* hist) {
    return emu::launch(*l, [=] { hist_kernel(db, dl, n, q, ql, nq, w, lw, with_labels, nbins, qb, hist); });
}

extern "C" int emu_collect_kernel(const Launch* l, const u64* db, u64 n, const u64* q, u32 nq, u32 w, u32 qb,
                                  const u32* thr, const u64* offs, u32* fill, u64* out) {
    return emu::launch(*l, [=] { collect_kernel(db, n, q, nq, w, qb, thr, offs, fill, out); });
}

extern "C" int emu_ap_kernel(const Launch* l, const u64* db, const u64* dl, u64 n, const u64* q, const u64* ql,
                             u32 nq, u32 w, u32 lw, u32 nb, const u32* hist, const u64* cuts, u32 nm,
                             double* sums, u64* counts) {
    return emu::launch(*l, [=] { ap_kernel(db, dl, n, q, ql, nq, w, lw, nb, hist, cuts, nm, sums, counts); });
}
