#!/usr/bin/env bash
# The Windows lane: cross-compile the workspace's tests for x86_64-pc-windows-gnu and
# run every test binary under Wine.
#
#   scripts/windows-lane.sh            build and run all Windows test binaries
#   scripts/windows-lane.sh --build    only build (what clippy can't catch: linking)
#
# Needs: rustup target x86_64-pc-windows-gnu, gcc-mingw-w64-x86-64, wine64
# (.ci/run installs them). Wine state lives in target/wine-prefix, so the lane never
# touches ~/.wine.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=x86_64-pc-windows-gnu
build_only=false
[[ "${1:-}" == "--build" ]] && build_only=true

say() { printf '[windows-lane] %s\n' "$*"; }

# 1. Build the test binaries, and learn their paths from cargo.
say "building test binaries for $target"
# --all-targets: benches and examples too, so that scripts/test.sh's clippy-while-
# building covers every target. Benches and examples are built, never run, here (as on
# Linux, where `cargo test` runs neither; an example's folder also lacks the
# ProcessPrng shim below).
cargo test --workspace --all-targets --locked --target "$target" --no-run --message-format=json-render-diagnostics \
  > target/windows-lane-build.json
mapfile -t tests < <(python3 - target/windows-lane-build.json <<'PY'
import json, sys
seen = []
for line in open(sys.argv[1]):
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if (msg.get("reason") == "compiler-artifact" and msg.get("profile", {}).get("test")
            and msg.get("executable") and msg["target"]["kind"] not in (["bench"], ["example"])):
        if msg["executable"] not in seen:
            seen.append(msg["executable"])
print("\n".join(seen))
PY
)
say "${#tests[@]} test binaries"
# What the tests load or start beside themselves: xp_slam.dll, the fake opends60.dll
# (test only) and slam-worker.exe.
say "building xp_slam.dll, the fake opends60.dll and slam-worker.exe"
cargo build --locked --target "$target" -p slam-xp -p slam-xp-fake-ods -p slam-worker
$build_only && exit 0

# 2. The ProcessPrng shim beside every .exe we run (tests, and the binaries they spawn).
shim_src=scripts/windows/process_prng_shim.c
shim=target/$target/bcryptprimitives.dll
if [[ ! -f "$shim" || "$shim_src" -nt "$shim" ]]; then
  x86_64-w64-mingw32-gcc -shared -O2 -o "$shim" "$shim_src" -ladvapi32
fi
for dir in target/$target/debug target/$target/debug/deps; do
  cp "$shim" "$dir/"
done

# 3. Run each under Wine, in its own prefix, quietly.
wine=$(command -v wine64 || true)
[[ -z "$wine" && -x /usr/lib/wine/wine64 ]] && wine=/usr/lib/wine/wine64
[[ -z "$wine" ]] && wine=$(command -v wine)
export WINEPREFIX="$root/target/wine-prefix"
export WINEDEBUG=-all
export SLAM_EXPECT_WINE=1         # tests that must know they are under Wine
export WINEDLLOVERRIDES="mscoree,mshtml="   # no Mono/Gecko install prompts
if [[ ! -f "$WINEPREFIX/system.reg" ]]; then
  say "creating the Wine prefix (first run only)"
  "$wine" wineboot --init >/dev/null 2>&1 || true
  wineserver -w 2>/dev/null || true
fi

failed=0
for exe in "${tests[@]}"; do
  say "running $(basename "$exe") under Wine"
  if ! "$wine" "$exe" --test-threads=2; then
    say "FAILED: $exe"
    failed=1
  fi
done
wineserver -k 2>/dev/null || true
if [[ $failed -ne 0 ]]; then
  say "some Windows test binaries failed"
  exit 1
fi
say "all Windows test binaries passed"
say "NOTE: Wine accepts but does not apply file DACLs. Under Wine the ACL tests check the"
say "      descriptor SLAM builds (through Win32's SDDL parser), not the ACL on disk; the"
say "      on-disk check runs only on real Windows (docs/windows-lane.md)."
