//! With the `cuda-emulator` feature: compiles the CUDA kernels (`src/cuda/kernels.cu`) as C++
//! inside the CPU emulator (`src/cuda/emulator.cpp`). Nothing to do otherwise.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "cuda-emulator")]
    emulator::build();
}

#[cfg(feature = "cuda-emulator")]
mod emulator {
    use std::path::PathBuf;

    /// `extern __shared__ T name[];` (CUDA's dynamic shared memory) becomes a pointer to the
    /// emulator's per-launch buffer; every other line is kept as written.
    fn emulated(source: &str) -> String {
        let mut out = String::with_capacity(source.len());
        let mut shared = 0;
        for line in source.lines() {
            match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["extern", "__shared__", ty, decl] => {
                    let name = decl.strip_suffix("[];").unwrap_or_else(|| {
                        panic!("kernels.cu: unexpected dynamic shared memory declaration `{}`", line.trim())
                    });
                    out.push_str(&format!("    {ty}* {name} = static_cast<{ty}*>(emu_shared_mem);\n"));
                    shared += 1;
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        assert!(shared > 0, "kernels.cu: no `extern __shared__` declaration found; update build.rs");
        out
    }

    pub fn build() {
        for f in ["src/cuda/kernels.cu", "src/cuda/emulator.cpp"] {
            println!("cargo:rerun-if-changed={f}");
        }
        let source = std::fs::read_to_string("src/cuda/kernels.cu").expect("reading src/cuda/kernels.cu");
        let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
        std::fs::write(out_dir.join("kernels_emulated.cu"), emulated(&source))
            .expect("writing kernels_emulated.cu");
        cc::Build::new()
            .cpp(true)
            .std("c++20")
            .file("src/cuda/emulator.cpp")
            .include(&out_dir)
            .opt_level(2)
            .warnings(true)
            .extra_warnings(true)
            .warnings_into_errors(true)
            .compile("seqmodal_cuda_emulator");
    }
}
