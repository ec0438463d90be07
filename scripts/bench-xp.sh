#!/usr/bin/env bash
# Benchmark of xp_slam.dll under Wine: `ping` through the XP (the test host of
# crates/slam-xp/tests/wine.rs, fake opends60.dll, real named pipe, real worker) against
# the same ping sent by slam-client to the same worker. Prints p50/p99 of both and the
# XP's own overhead. Needs what scripts/windows-lane.sh needs (it builds the same things).
#   SLAM_BENCH_PINGS=2000 scripts/bench-xp.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=x86_64-pc-windows-gnu
cargo build --locked --target "$target" -p slam-xp -p slam-xp-fake-ods -p slam-worker
exe=$(cargo test --locked --target "$target" -p slam-xp --test wine --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"): print(m["executable"])' | tail -1)
shim=target/$target/bcryptprimitives.dll
[[ -f "$shim" ]] || x86_64-w64-mingw32-gcc -shared -O2 -o "$shim" scripts/windows/process_prng_shim.c -ladvapi32
cp "$shim" "target/$target/debug/"; cp "$shim" "target/$target/debug/deps/"
wine=$(command -v wine64 || echo /usr/lib/wine/wine64)
WINEPREFIX="$root/target/wine-prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" \
  "$wine" "$exe" --ignored --nocapture bench_ping
