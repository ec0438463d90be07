#!/usr/bin/env bash
# Builds the Windows installer, target/msi/speediful-slam-VERSION.msi, on Linux with
# wixl (Debian package `wixl`, from msitools) from installer/slam.wxs.
#
#   scripts/build-msi.sh [--debug] [--version X.Y.Z] [--no-build]
#
# --debug packs the debug binaries (what the test lane installs; faster to build);
# the default is release. --version overrides the workspace's version (the test lane
# builds two versions to prove an upgrade). --no-build packs binaries already built.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=x86_64-pc-windows-gnu
profile=release
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
build=true
while (($#)); do
  case "$1" in
    --debug) profile=debug ;;
    --version) version=$2; shift ;;
    --no-build) build=false ;;
    *) echo "usage: $0 [--debug] [--version X.Y.Z] [--no-build]" >&2; exit 2 ;;
  esac
  shift
done
if ! command -v wixl >/dev/null; then
  echo "build-msi: wixl is missing; install it with: sudo apt-get install wixl" >&2
  exit 1
fi
if $build; then
  flags=(--locked --target "$target" -p slam-cli -p slam-worker -p slam-xp)
  [[ $profile == release ]] && flags+=(--release)
  cargo build "${flags[@]}"
fi
bin=target/$target/$profile
stage=target/msi/stage-$version
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/sql" "$stage/docs"
for file in slam.exe slam-worker.exe xp_slam.dll; do
  cp "$bin/$file" "$stage/bin/"
done
cp sql/*.sql sql/README.md "$stage/sql/"
cp docs/*.md "$stage/docs/"
cp installer/slam.wxs "$stage/"
msi=target/msi/speediful-slam-$version.msi
# wixl resolves File/@Source relative to the working directory.
(cd "$stage" && wixl -a x64 -D Version="$version" -o "../$(basename "$msi")" slam.wxs)
echo "build-msi: $msi ($(du -h "$msi" | cut -f1), $profile binaries, version $version)"
