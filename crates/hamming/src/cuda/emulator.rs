//! The kernels of `kernels.cu` compiled as C++ (by build.rs) and run on the CPU with CUDA's
//! execution model (`emulator.cpp`: a block's threads are fibers that meet at `__syncthreads`):
//! tests the kernels and the host logic with no GPU.

use super::{ApArgs, CollectArgs, Device, Elem, GpuEngine, HistArgs, Launch};
use crate::error::{HammingError, Result};

type In = *const u64;

// The kernels' own parameter lists, after the launch shape (see emulator.cpp).
unsafe extern "C" {
    #[rustfmt::skip]
    fn emu_hist_kernel(
        l: *const Launch,
        db: In,
        dl: In,
        n: u64,
        q: In,
        ql: In,
        nq: u32,
        w: u32,
        lw: u32,
        with_labels: u32,
        nbins: u32,
        qb: u32,
        hist: *mut u32,
    ) -> i32;
    #[rustfmt::skip]
    fn emu_collect_kernel(
        l: *const Launch,
        db: In,
        n: u64,
        q: In,
        nq: u32,
        w: u32,
        qb: u32,
        thr: *const u32,
        offs: In,
        fill: *mut u32,
        out: *mut u64,
    ) -> i32;
    #[rustfmt::skip]
    fn emu_ap_kernel(
        l: *const Launch,
        db: In,
        dl: In,
        n: u64,
        q: In,
        ql: In,
        nq: u32,
        w: u32,
        lw: u32,
        nb: u32,
        hist: *const u32,
        cuts: In,
        nm: u32,
        sums: *mut f64,
        counts: *mut u64,
    ) -> i32;
}

/// The CPU standing in for a GPU; "device" buffers are host vectors.
#[derive(Clone, Copy, Debug, Default)]
pub struct Emulator;

impl GpuEngine<Emulator> {
    /// The engine on the CPU emulator.
    pub fn emulator() -> Self {
        GpuEngine::with_device(Emulator)
    }
}

/// The emulator's return code as a result.
fn launched(what: &str, rc: i32) -> Result<()> {
    match rc {
        0 => Ok(()),
        1 => Err(HammingError::Cuda(format!("{what}: a launch CUDA refuses (block or shared memory size)"))),
        _ => Err(HammingError::Cuda(format!("{what}: a __syncthreads not every thread of a block reached"))),
    }
}

// SAFETY (the three launches): GpuEngine sizes every buffer as the kernel reads and writes it
// (the contract of a real launch too), and the emulator has finished every block when it returns.
impl Device for Emulator {
    type Buf<T: Elem> = Vec<T>;

    fn name(&self) -> &str {
        "CPU emulator of the CUDA kernels"
    }

    fn peak_gigabytes_per_second(&self) -> Option<f64> {
        None
    }

    fn upload<T: Elem>(&self, data: &[T]) -> Result<Vec<T>> {
        Ok(data.to_vec())
    }

    fn zeros<T: Elem>(&self, len: usize) -> Result<Vec<T>> {
        Ok(vec![T::default(); len])
    }

    fn download<T: Elem>(&self, buf: &Vec<T>) -> Result<Vec<T>> {
        Ok(buf.clone())
    }

    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    fn hist_kernel(&self, l: Launch, a: HistArgs<'_, Self>, hist: &mut Vec<u32>) -> Result<()> {
        let r = &a.rows;
        #[rustfmt::skip]
        // SAFETY: see the impl.
        let rc = unsafe { emu_hist_kernel(&l, r.db.as_ptr(), r.dl.as_ptr(), r.n, r.q.as_ptr(), r.ql.as_ptr(),
            r.nq, r.w, r.lw, a.with_labels, a.nbins, a.qb, hist.as_mut_ptr()) };
        launched("hist_kernel", rc)
    }

    fn collect_kernel(
        &self,
        l: Launch,
        a: CollectArgs<'_, Self>,
        fill: &mut Vec<u32>,
        out: &mut Vec<u64>,
    ) -> Result<()> {
        #[rustfmt::skip]
        // SAFETY: see the impl.
        let rc = unsafe { emu_collect_kernel(&l, a.db.as_ptr(), a.n, a.q.as_ptr(), a.nq, a.w, a.qb,
            a.thr.as_ptr(), a.offs.as_ptr(), fill.as_mut_ptr(), out.as_mut_ptr()) };
        launched("collect_kernel", rc)
    }

    fn ap_kernel(
        &self,
        l: Launch,
        a: ApArgs<'_, Self>,
        sums: &mut Vec<f64>,
        counts: &mut Vec<u64>,
    ) -> Result<()> {
        let r = &a.rows;
        #[rustfmt::skip]
        // SAFETY: see the impl.
        let rc = unsafe { emu_ap_kernel(&l, r.db.as_ptr(), r.dl.as_ptr(), r.n, r.q.as_ptr(), r.ql.as_ptr(),
            r.nq, r.w, r.lw, a.nb, a.hist.as_ptr(), a.cuts.as_ptr(), a.nm, sums.as_mut_ptr(),
            counts.as_mut_ptr()) };
        launched("ap_kernel", rc)
    }
}
