//! A real NVIDIA GPU through cudarc: the driver and NVRTC are loaded at run time.

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};

use super::{ApArgs, CollectArgs, Device, Elem, GpuEngine, HistArgs, Launch, KERNELS};
use crate::error::{HammingError, Result};

/// An NVIDIA GPU with the search kernels loaded.
pub type CudaBackend = GpuEngine<Driver>;

/// One GPU's stream and the three kernels, compiled by NVRTC.
pub struct Driver {
    stream: Arc<CudaStream>,
    hist: CudaFunction,
    collect: CudaFunction,
    ap: CudaFunction,
    name: String,
    peak_gbs: Option<f64>,
}

fn cuda<E: std::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> HammingError {
    move |e| HammingError::Cuda(format!("{what}: {e:?}"))
}

fn config(l: Launch) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (l.grid[0], l.grid[1], l.grid[2]),
        block_dim: (l.block, 1, 1),
        shared_mem_bytes: l.shared_bytes,
    }
}

impl GpuEngine<Driver> {
    /// Opens GPU `ordinal` and compiles the kernels; an error (not a panic) without CUDA.
    pub fn new(ordinal: usize) -> Result<CudaBackend> {
        // SAFETY: these only try to dlopen the libraries; nothing is called through them yet.
        let present =
            unsafe { cudarc::driver::sys::is_culib_present() && cudarc::nvrtc::sys::is_culib_present() };
        if !present {
            return Err(HammingError::Cuda(
                "the CUDA driver (libcuda) or NVRTC (libnvrtc) library was not found".into(),
            ));
        }
        let ctx = CudaContext::new(ordinal).map_err(cuda("opening the device"))?;
        let name = ctx.name().map_err(cuda("device name"))?;
        // Peak bandwidth = 2 (double data rate) × memory clock × bus width; None if the driver
        // does not report them.
        let attr = |a| ctx.attribute(a).ok().filter(|&v| v > 0).map(f64::from);
        use cudarc::driver::sys::CUdevice_attribute as A;
        let peak_gbs = match (
            attr(A::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE),
            attr(A::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH),
        ) {
            (Some(khz), Some(bus_bits)) => Some(2.0 * khz * 1e3 * bus_bits / 8.0 / 1e9),
            _ => None,
        };
        let ptx = cudarc::nvrtc::compile_ptx(KERNELS).map_err(cuda("compiling kernels with NVRTC"))?;
        let module = ctx.load_module(ptx).map_err(cuda("loading kernels"))?;
        let f = |n: &str| module.load_function(n).map_err(cuda("loading a kernel"));
        Ok(GpuEngine::with_device(Driver {
            stream: ctx.default_stream(),
            hist: f("hist_kernel")?,
            collect: f("collect_kernel")?,
            ap: f("ap_kernel")?,
            name,
            peak_gbs,
        }))
    }
}

impl Device for Driver {
    type Buf<T: Elem> = CudaSlice<T>;

    fn name(&self) -> &str {
        &self.name
    }

    fn peak_gigabytes_per_second(&self) -> Option<f64> {
        self.peak_gbs
    }

    fn upload<T: Elem>(&self, data: &[T]) -> Result<CudaSlice<T>> {
        self.stream.clone_htod(data).map_err(cuda("copying to the device"))
    }

    fn zeros<T: Elem>(&self, len: usize) -> Result<CudaSlice<T>> {
        self.stream.alloc_zeros::<T>(len).map_err(cuda("allocating"))
    }

    fn download<T: Elem>(&self, buf: &CudaSlice<T>) -> Result<Vec<T>> {
        self.stream.clone_dtoh(buf).map_err(cuda("copying to the host"))
    }

    fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(cuda("synchronising"))
    }

    fn hist_kernel(&self, launch: Launch, a: HistArgs<'_, Self>, hist: &mut CudaSlice<u32>) -> Result<()> {
        let (mut b, r) = (self.stream.launch_builder(&self.hist), &a.rows);
        b.arg(r.db).arg(r.dl).arg(&r.n).arg(r.q).arg(r.ql).arg(&r.nq).arg(&r.w).arg(&r.lw);
        b.arg(&a.with_labels).arg(&a.nbins).arg(&a.qb).arg(hist);
        // SAFETY: argument types and order match hist_kernel; GpuEngine sizes the buffers
        // (nq·w, nq·lw, n·w, n·lw, nq·nbins) and shared memory as the kernel lays them out.
        unsafe { b.launch(config(launch)) }.map_err(cuda("launching hist_kernel"))?;
        Ok(())
    }

    fn collect_kernel(
        &self,
        launch: Launch,
        a: CollectArgs<'_, Self>,
        fill: &mut CudaSlice<u32>,
        out: &mut CudaSlice<u64>,
    ) -> Result<()> {
        let mut b = self.stream.launch_builder(&self.collect);
        b.arg(a.db).arg(&a.n).arg(a.q).arg(&a.nq).arg(&a.w).arg(&a.qb).arg(a.thr).arg(a.offs);
        b.arg(fill).arg(out);
        // SAFETY: argument types and order match collect_kernel; `out` holds exactly the items
        // at distance <= thr per query (counted by the histogram pass).
        unsafe { b.launch(config(launch)) }.map_err(cuda("launching collect_kernel"))?;
        Ok(())
    }

    fn ap_kernel(
        &self,
        launch: Launch,
        a: ApArgs<'_, Self>,
        sums: &mut CudaSlice<f64>,
        counts: &mut CudaSlice<u64>,
    ) -> Result<()> {
        let (mut b, r) = (self.stream.launch_builder(&self.ap), &a.rows);
        b.arg(r.db).arg(r.dl).arg(&r.n).arg(r.q).arg(r.ql).arg(&r.nq).arg(&r.w).arg(&r.lw).arg(&a.nb);
        b.arg(a.hist).arg(a.cuts).arg(&a.nm).arg(sums).arg(counts);
        // SAFETY: argument types and order match ap_kernel; buffers are sized nq·w, nq·lw, n·w,
        // n·lw, nq·2nb, nm, nq·nm·4 and nq·nm; shared memory holds nb counters per thread.
        unsafe { b.launch(config(launch)) }.map_err(cuda("launching ap_kernel"))?;
        Ok(())
    }
}
