//! Link settings for the shipped binary. In the release profile (what `cargo install
//! --path cli` builds) the debug sections, which hold the line tables of Eddy's own
//! crates only (dependencies are built without them, see the workspace Cargo.toml), are
//! zlib-compressed (std's backtraces read them so: every Eddy frame keeps its file and
//! line), and the local symbols that fat LTO leaves behind are dropped. Together with
//! fat LTO this takes `eddy` from 717 MB to about 94 MB. For profiling (perf, flame
//! graphs), build with `EDDY_KEEP_SYMBOLS=1` to keep every function's name.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=EDDY_KEEP_SYMBOLS");
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo:rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
        if std::env::var_os("EDDY_KEEP_SYMBOLS").is_none() {
            println!("cargo:rustc-link-arg-bins=-Wl,--discard-all");
        }
    }
}
