//! Compiles the BPF programs in `bpf/` with clang (via libbpf-cargo) into
//! `$OUT_DIR/*.bpf.o`; the crate embeds them with `include_bytes!`.
//! Needs `clang` on PATH (Debian: `apt-get install clang`). Kernel types come
//! from `bpf/include/flowtap_min.h`, libbpf's helper headers from libbpf-sys.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir")).join("bpf");
    println!("cargo:rerun-if-changed={}", dir.join("include").display());
    for name in ["flowtap", "gen"] {
        let src = dir.join(format!("{name}.bpf.c"));
        println!("cargo:rerun-if-changed={}", src.display());
        SkeletonBuilder::new()
            .source(&src)
            .obj(out.join(format!("{name}.bpf.o")))
            .clang_args([std::ffi::OsString::from("-Wall"), "-Wno-unused-function".into()])
            .build()
            .unwrap_or_else(|e| {
                panic!(
                    "compiling {} with clang failed (install clang: `apt-get install -y clang`): {e:#}",
                    src.display()
                )
            });
    }
}
