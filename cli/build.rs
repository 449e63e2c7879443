//! Link settings for the shipped binary. In the release profile (what `cargo install
//! --path cli` builds) the debug sections, which hold the line tables of Eddy's own
//! crates only (dependencies are built without them, see the workspace Cargo.toml), are
//! zlib-compressed (std's backtraces read them so), and the local symbols that fat LTO
//! leaves behind are dropped: a backtrace still names Eddy's functions, files and lines.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo:rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
        println!("cargo:rustc-link-arg-bins=-Wl,--discard-all");
    }
}
