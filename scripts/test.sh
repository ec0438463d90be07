#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a fresh Debian/Ubuntu machine with rustup:
#   1. installs what it needs (apt: mingw-w64, wine64, openssl; rustup: the Windows target),
#   2. cargo fmt --check; every target built with clippy's lints as errors, for Linux
#      and for x86_64-pc-windows-gnu (see "clippy while building" below);
#      cargo doc -D warnings,
#   3. cargo test --workspace --locked (Linux),
#   4. the Windows lane: the same tests cross-built and run under Wine,
#   5. the installer lane: the MSI built, installed, upgraded and removed under Wine.
# If the Windows toolchain cannot be installed (no network to the registries), it says
# so loudly and runs the Linux lane alone; it never skips silently.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
loud() { printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n!!! %s\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' "$*"; }

sudo_if_needed() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

have_windows=true
packages=(gcc-mingw-w64-x86-64 wine64 openssl libssl-dev pkg-config python3 wixl msitools)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  if ! { sudo_if_needed apt-get update -qq && DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
    loud "apt-get could not install ${missing[*]}: the Windows lane cannot run on this machine"
    have_windows=false
  fi
fi
command -v openssl >/dev/null || { echo "openssl is required for the interop tests" >&2; exit 1; }

if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-pc-windows-gnu; then
  say "adding rustup target x86_64-pc-windows-gnu"
  if ! rustup target add x86_64-pc-windows-gnu; then
    loud "rustup could not install x86_64-pc-windows-gnu: NO WINDOWS LANE in this run (Linux lane only)"
    have_windows=false
  fi
fi

say "cargo fmt --check"
cargo fmt --all -- --check

# Clippy while building. `cargo clippy` is `cargo check` with clippy-driver in place
# of rustc for the workspace's crates: it type-checks all ~300 dependencies once more
# for each target, which cost this script 2.5 minutes per target. Here the test build
# itself runs clippy-driver on the workspace's crates (RUSTC_WORKSPACE_WRAPPER,
# exactly how cargo-clippy starts it, with the same `-D warnings` in CLIPPY_ARGS), so
# the dependencies are compiled once per target and every workspace target (lib,
# bins, tests, examples, benches) is linted as it is built. Dependencies are never
# wrapped, so their build is the same as a plain `cargo test`'s.
# `cargo clippy --workspace --all-targets -- -D warnings` remains the command to run
# by hand; it checks the same code with the same lints.
clippy_driver="$(dirname "$(rustup which cargo)")/clippy-driver"
if [[ ! -x "$clippy_driver" ]]; then
  say "adding the rustup component clippy"
  rustup component add clippy
fi
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# The canary: if clippy-driver ever stopped reading CLIPPY_ARGS or linting in this
# mode, the builds below would pass without linting anything. A two-line crate with a
# clippy warning must fail to build.
canary=$(mktemp -d)
trap 'rm -rf "$canary"' EXIT
mkdir -p "$canary/src"
printf '[package]\nname = "clippy-canary"\nversion = "0.0.0"\nedition = "2021"\n[workspace]\n' > "$canary/Cargo.toml"
printf 'pub fn canary(flag: bool) -> bool { flag == true }\n' > "$canary/src/lib.rs"
if canary_out=$(cargo build -q --manifest-path "$canary/Cargo.toml" --target-dir "$canary/target" 2>&1) \
  || ! grep -q 'clippy::bool_comparison' <<<"$canary_out"; then
  printf '%s\n' "$canary_out" >&2
  echo "clippy-driver did not reject a clippy warning: the lint step would lint nothing" >&2
  exit 1
fi

say "build and clippy (Linux): every target of the workspace"
cargo test --workspace --all-targets --locked --no-run

say "docs: cargo doc with warnings as errors"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

say "tests (Linux): cargo test --workspace --locked"
cargo test --workspace --locked

if $have_windows; then
  say "build and clippy (x86_64-pc-windows-gnu), then the tests under Wine"
  scripts/windows-lane.sh
  say "the installer: build the MSI, install, use, upgrade and remove it under Wine"
  scripts/msi-lane.sh
else
  loud "the Windows lane did NOT run (see above); only the Linux lane was tested"
fi
say "all checks passed"
