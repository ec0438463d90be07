#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a fresh Debian/Ubuntu machine with rustup:
#   1. installs what it needs (apt: mingw-w64, wine64, openssl; rustup: the Windows target),
#   2. cargo fmt --check, clippy -D warnings for Linux and for x86_64-pc-windows-gnu,
#      cargo doc -D warnings,
#   3. cargo test --workspace --locked (Linux),
#   4. the Windows lane: the same tests cross-built and run under Wine.
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

say "clippy (Linux)"
cargo clippy --workspace --all-targets --locked -- -D warnings

if $have_windows; then
  say "clippy (x86_64-pc-windows-gnu)"
  cargo clippy --workspace --all-targets --locked --target x86_64-pc-windows-gnu -- -D warnings
fi

say "docs: cargo doc with warnings as errors"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

say "tests (Linux): cargo test --workspace --locked"
cargo test --workspace --locked

if $have_windows; then
  say "tests (Windows, under Wine)"
  scripts/windows-lane.sh
  say "the installer: build the MSI, install, use, upgrade and remove it under Wine"
  scripts/msi-lane.sh
else
  loud "the Windows lane did NOT run (see above); only the Linux lane was tested"
fi
say "all checks passed"
