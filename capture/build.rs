//! Compiles the BPF programs in `bpf/` with clang (via libbpf-cargo) into
//! `$OUT_DIR/*.bpf.o`; the crate embeds them with `include_bytes!`.
//! Needs `clang` on PATH (Debian: `apt-get install clang`). Kernel types come
//! from `bpf/include/flowtap_min.h`, libbpf's helper headers from libbpf-sys.
//!
//! With the `dpdk` feature, also generates the DPDK bindings (bindgen, over
//! the distribution's headers found with `pkg-config libdpdk`) and compiles
//! `src/dpdk/shim.c` (the inline calls), linking against libdpdk.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

fn main() {
    #[cfg(feature = "dpdk")]
    dpdk::build();
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

#[cfg(feature = "dpdk")]
mod dpdk {
    use std::env;
    use std::path::PathBuf;
    use std::process::Command;

    const HINT: &str = "the `dpdk` feature needs DPDK's headers and pkg-config file \
        (Debian: `apt-get install -y dpdk-dev pkg-config`, as scripts/setup.sh does)";

    fn pkg_config(arg: &str) -> Vec<String> {
        let out = Command::new("pkg-config")
            .args([arg, "libdpdk"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run pkg-config: {e}; {HINT}"));
        if !out.status.success() {
            panic!(
                "pkg-config {arg} libdpdk failed: {}; {HINT}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    pub fn build() {
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
        let shim = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"))
            .join("src/dpdk/shim.c");
        println!("cargo:rerun-if-changed={}", shim.display());
        let cflags = pkg_config("--cflags");
        // `-include rte_config.h` and the -march DPDK was built for come
        // in pairs or alone: hand every flag to clang/cc as pkg-config gives it.
        let mut cc = cc::Build::new();
        cc.file(&shim).opt_level(2).warnings(false);
        for f in &cflags {
            cc.flag(f);
        }
        cc.compile("flowtap_dpdk_shim");
        for f in pkg_config("--libs") {
            if let Some(dir) = f.strip_prefix("-L") {
                println!("cargo:rustc-link-search=native={dir}");
            } else if let Some(lib) = f.strip_prefix("-l") {
                println!("cargo:rustc-link-lib=dylib={lib}");
            } else if f.starts_with("-Wl,") {
                println!("cargo:rustc-link-arg={f}");
            }
        }
        let mut b = bindgen::Builder::default()
            .header_contents(
                "flowtap_dpdk.h",
                "#include <rte_eal.h>\n#include <rte_errno.h>\n#include <rte_ethdev.h>\n\
                 #include <rte_mbuf.h>\n#include <rte_mbuf_dyn.h>\n#include <rte_mempool.h>\n\
                 #include <rte_lcore.h>\n",
            )
            .clang_args(cflags.iter().filter(|f| !f.starts_with("-march")))
            .allowlist_function("rte_eal_init")
            .allowlist_function("rte_eal_cleanup")
            .allowlist_function("rte_strerror")
            .allowlist_function("rte_socket_id")
            .allowlist_function("rte_thread_register")
            .allowlist_function("rte_thread_unregister")
            .allowlist_function("rte_lcore_id")
            .allowlist_function("rte_eth_dev_get_port_by_name")
            .allowlist_function("rte_eth_dev_get_name_by_port")
            .allowlist_function("rte_eth_dev_count_avail")
            .allowlist_function("rte_eth_dev_info_get")
            .allowlist_function("rte_eth_dev_configure")
            .allowlist_function("rte_eth_dev_adjust_nb_rx_tx_desc")
            .allowlist_function("rte_eth_rx_queue_setup")
            .allowlist_function("rte_eth_tx_queue_setup")
            .allowlist_function("rte_eth_dev_start")
            .allowlist_function("rte_eth_dev_stop")
            .allowlist_function("rte_eth_dev_close")
            .allowlist_function("rte_eth_dev_socket_id")
            .allowlist_function("rte_eth_promiscuous_enable")
            .allowlist_function("rte_eth_stats_get")
            .allowlist_function("rte_pktmbuf_pool_create")
            .allowlist_function("rte_mempool_free")
            .allowlist_function("rte_pktmbuf_free_bulk")
            .allowlist_function("rte_mbuf_dynfield_lookup")
            .allowlist_function("rte_mbuf_dynflag_lookup")
            .allowlist_type("rte_eth_conf")
            .allowlist_type("rte_eth_stats")
            .allowlist_type("rte_eth_dev_info")
            .allowlist_type("rte_eth_rss_conf")
            .allowlist_var("RTE_ETH_MQ_RX_RSS")
            .allowlist_var("RTE_ETH_MQ_RX_NONE")
            .allowlist_var("RTE_ETH_RSS_.*")
            .allowlist_var("RTE_ETHDEV_QUEUE_STAT_CNTRS")
            .allowlist_var("RTE_MBUF_DEFAULT_BUF_SIZE")
            .allowlist_var("RTE_MBUF_DYNFIELD_TIMESTAMP_NAME")
            .allowlist_var("RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME")
            .derive_default(true)
            .layout_tests(false)
            .generate_comments(false);
        if let Ok(inc) = env::var("DPDK_EXTRA_CLANG_ARGS") {
            b = b.clang_args(inc.split_whitespace().map(str::to_string));
        }
        let bindings = b
            .generate()
            .unwrap_or_else(|e| panic!("generating the DPDK bindings failed: {e}; {HINT}"));
        let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("dpdk_bindings.rs");
        bindings
            .write_to_file(&out)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    }
}
