//! Embeds the event log message table (`res/events.mc`) in `slam-worker.exe` when
//! building for Windows with the GNU toolchain (mingw's `windmc` and `windres`), so
//! Event Viewer shows the service's events as written instead of "the description
//! for Event ID … cannot be found". Without the tools the build goes on, with a
//! warning: the events are still written, only less readable.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=res/events.mc");
    println!("cargo:rerun-if-changed=build.rs");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os != "windows" {
        return;
    }
    if target_env != "gnu" {
        println!("cargo:warning=the event log message table is embedded only with the GNU toolchain");
        return;
    }
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else { return };
    let prefix = if cfg!(windows) { String::new() } else { "x86_64-w64-mingw32-".to_string() };
    let windmc = std::env::var("SLAM_WINDMC").unwrap_or_else(|_| format!("{prefix}windmc"));
    let windres = std::env::var("SLAM_WINDRES").unwrap_or_else(|_| format!("{prefix}windres"));
    let mc = Command::new(&windmc).arg("-h").arg(&out).arg("-r").arg(&out).arg("res/events.mc").status();
    if !matches!(mc, Ok(s) if s.success()) {
        println!("cargo:warning={windmc} is missing or failed: the event log message table is not embedded");
        return;
    }
    let object = out.join("events-res.o");
    let rc = Command::new(&windres)
        .arg("--input")
        .arg(out.join("events.rc"))
        .arg("--output-format=coff")
        .arg("--output")
        .arg(&object)
        .arg("--include-dir")
        .arg(&out)
        .status();
    if !matches!(rc, Ok(s) if s.success()) {
        println!("cargo:warning={windres} is missing or failed: the event log message table is not embedded");
        return;
    }
    println!("cargo:rustc-link-arg-bin=slam-worker={}", object.display());
}
