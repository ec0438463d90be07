#!/usr/bin/env bash
# The installer lane: builds the MSI twice (two versions of the same binaries) and,
# in a fresh Wine prefix, installs it silently, checks where everything landed and
# how the service is registered, uses the installed product through its service,
# upgrades in place, and uninstalls. Run by scripts/test.sh after the Windows lane
# (whose debug binaries it packs); on its own: scripts/msi-lane.sh.
#
# What Wine cannot show, and real Windows must (docs/install.md): that the service
# starts as its virtual account NT SERVICE\SpeedifulSLAM (Wine's service manager
# cannot start a service under a virtual account, so the lane installs with
# SERVICEACCOUNT=LocalSystem and checks the default in the MSI's tables), and that
# the data directory's DACL is enforced (Wine stores but does not apply file DACLs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { printf '[msi-lane] %s\n' "$*"; }
fail() { say "FAILED: $*"; exit 1; }

scripts/build-msi.sh --debug --version 0.1.0
scripts/build-msi.sh --debug --no-build --version 0.1.1
v1=target/msi/speediful-slam-0.1.0.msi
v2=target/msi/speediful-slam-0.1.1.msi

# The MSI's own tables: the service, its default account, the deferred preparation.
if command -v msiinfo >/dev/null; then
  table() { msiinfo export "$v1" "$1" | tr -d '\r'; }
  table ServiceInstall | grep -q $'SpeedifulSLAM\tSpeediful SLAM worker\t16\t2\t1\t\t\t\\[SERVICEACCOUNT\\]' \
    || fail "ServiceInstall row (own process, automatic start, account [SERVICEACCOUNT])"
  table Property | grep -q $'^SERVICEACCOUNT\tNT SERVICE\\\\SpeedifulSLAM$' \
    || fail "the default service account is not NT SERVICE\\SpeedifulSLAM"
  table CustomAction | grep -q $'^PrepareDataDir\t3090\tslam_worker_exe\t--config' \
    || fail "the deferred, elevated PrepareDataDir action"
  table Property | grep -q $'^REBOOT\tReallySuppress$' || fail "the MSI may restart the SQL Server machine (REBOOT)"
  say "MSI tables: service, default account NT SERVICE\\SpeedifulSLAM, deferred data directory action, never a restart"
fi

wine=$(command -v wine64 || true)
[[ -z "$wine" && -x /usr/lib/wine/wine64 ]] && wine=/usr/lib/wine/wine64
[[ -z "$wine" ]] && wine=$(command -v wine)
export WINEPREFIX="$root/target/msi-prefix"
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml="
wineserver -k 2>/dev/null || true
rm -rf "$WINEPREFIX"
say "a fresh Wine prefix"
"$wine" wineboot --init >/dev/null 2>&1 || true
wineserver -w 2>/dev/null || true
# Rust programs need ProcessPrng (design.md); installed programs find the shim here.
shim=target/x86_64-pc-windows-gnu/bcryptprimitives.dll
if [[ ! -f "$shim" ]]; then
  x86_64-w64-mingw32-gcc -shared -O2 -o "$shim" scripts/windows/process_prng_shim.c -ladvapi32
fi
cp "$shim" "$WINEPREFIX/drive_c/windows/system32/"

drive=$WINEPREFIX/drive_c
program=$drive/Program\ Files/Speediful/SLAM
data=$drive/ProgramData/Speediful/SLAM
slam() { "$wine" "C:\\Program Files\\Speediful\\SLAM\\slam.exe" "$@"; }
msiexec() { "$wine" msiexec "$@"; }
# A Linux path as Wine sees it (drive Z: is /).
winpath() { printf 'Z:%s' "$(realpath -m "$1")" | tr '/' '\\'; }

say "installing $v1 silently (SQLINSTANCE=SQLEXPRESS, SERVICEACCOUNT=LocalSystem)"
started=$(date +%s)
msiexec /i "$(winpath "$v1")" /qn SQLINSTANCE=SQLEXPRESS SERVICEACCOUNT=LocalSystem \
  /l*v "$(winpath target/msi/install-1.log)" || fail "msiexec /i exited $? (target/msi/install-1.log)"
say "installed in $(($(date +%s) - started)) s"
for file in slam.exe slam-worker.exe xp_slam.dll sql/slam-master.sql sql/slam-install.sql sql/slam-uninstall.sql \
  docs/install.md docs/errors.md docs/sql-server-store.md; do
  [[ -f "$program/$file" ]] || fail "C:\\Program Files\\Speediful\\SLAM\\$file is missing"
done
[[ -d "$data/keys" ]] || fail "C:\\ProgramData\\Speediful\\SLAM\\keys was not created"
grep -qF "NT SERVICE\\MSSQL\$SQLEXPRESS" "$data/slam-worker.toml" \
  || fail "slam-worker.toml does not admit NT SERVICE\\MSSQL\$SQLEXPRESS: $(cat "$data/slam-worker.toml")"
grep -qF 'store = "sqlserver"' "$data/slam-worker.toml" \
  && grep -qE '^server = .localhost\\{1,2}SQLEXPRESS' "$data/slam-worker.toml" \
  || fail "slam-worker.toml does not keep the store in the SQLEXPRESS instance: $(cat "$data/slam-worker.toml")"
say "files in Program Files, data directory and keys\\ created, configuration admits MSSQL\$SQLEXPRESS and stores in its databases"

# --check-config connects to SQL Server as the worker will. No SQL Server runs under
# Wine, so it must fail, naming the setting and what to check.
checked=$(WINEDEBUG=-all "$wine" "C:\\Program Files\\Speediful\\SLAM\\slam-worker.exe" \
  --config 'C:\ProgramData\Speediful\SLAM\slam-worker.toml' --check-config 2>&1 | tr -d '\r' || true)
grep -q 'sqlserver.server' <<<"$checked" && grep -q 'TCP/IP' <<<"$checked" \
  || fail "--check-config did not report the unreachable SQL Server: $checked"
say "the installed worker's --check-config reports that SQL Server cannot be reached, and what to check"

service=$("$wine" reg query 'HKLM\System\CurrentControlSet\Services\SpeedifulSLAM' 2>/dev/null | tr -d '\r')
grep -q 'ObjectName.*LocalSystem' <<<"$service" || fail "service account: $service"
grep -q 'Start.*0x2' <<<"$service" || fail "not an automatic-start service: $service"
grep -qi "slam-worker.exe.*--config.*slam-worker.toml.*service run" <<<"$service" || fail "service command line: $service"
registry=$("$wine" reg query 'HKLM\SOFTWARE\Speediful\SLAM' 2>/dev/null | tr -d '\r')
grep -q 'PipeName.*speediful-slam' <<<"$registry" || fail "PipeName for xp_slam.dll: $registry"
grep -q 'WorkerAccount.*LocalSystem' <<<"$registry" || fail "WorkerAccount for xp_slam.dll: $registry"
# service prepare registers the event source (and sets the restart-after-a-crash actions,
# which Wine's service manager accepts but keeps where reg cannot show them).
"$wine" reg query 'HKLM\System\CurrentControlSet\Services\EventLog\Application\Speediful SLAM' 2>/dev/null \
  | tr -d '\r' | grep -qi 'EventMessageFile.*slam-worker.exe' || fail "the Application event log source is not registered"
say "service registered (automatic start, 'service run'), its event source too; PipeName and WorkerAccount written for the XP"

# The installed CLI checks who serves the pipe: under Wine the worker's pipe is owned
# by Wine's own account, which is not the service account the CLI expects, so the
# first call is refused without sending anything, naming the account it found.
refused=$(slam ping 2>&1 | tr -d '\r' || true)
grep -q '50414' <<<"$refused" || fail "the installed CLI did not check the server: $refused"
found=$(grep -o 'runs as S-1-[0-9-]*' <<<"$refused" | head -n1 | cut -d' ' -f3)
[[ -n "$found" ]] || fail "the refusal does not name the account found: $refused"
say "the installed slam refused an unexpected server account ($found) with 50414"
export SLAM_WORKER_ACCOUNT=$found
WINEDEBUG=-all slam ping | tr -d '\r' | grep -q worker || fail "slam ping through the installed service"
slam setup-jwt --key-name upgrade-proof >/dev/null || fail "setup-jwt through the installed service"
[[ -f "$data/keys/upgrade-proof.pem" ]] || fail "the key was not made in the data directory"
key_sum=$(sha256sum "$data/keys/upgrade-proof.pem" | cut -d' ' -f1)
say "the service answers slam ping and made a keypair in the data directory"

# No SERVICEACCOUNT this time: the upgrade must keep the installed account (LocalSystem),
# not fall back to the MSI's default, or the data directory's ACL and the SQL login
# would no longer match the service.
say "upgrading in place to $v2 (without SERVICEACCOUNT)"
msiexec /i "$(winpath "$v2")" /qn /l*v "$(winpath target/msi/install-2.log)" \
  || fail "the upgrade exited $? (target/msi/install-2.log)"
# Wine's reg has no /f: list every product's name and version, keep ours.
products=$("$wine" reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s 2>/dev/null | tr -d '\r' \
  | grep -A1 'DisplayName.*Speediful SLAM' | grep DisplayVersion || true)
[[ "$(grep -c . <<<"$products")" == 1 ]] || fail "not exactly one Speediful SLAM registered: $products"
grep -q 'DisplayVersion.*0\.1\.1' <<<"$products" || fail "0.1.1 is not the installed version: $products"
[[ "$(sha256sum "$data/keys/upgrade-proof.pem" | cut -d' ' -f1)" == "$key_sum" ]] || fail "the upgrade changed the key"
slam list-keys | tr -d '\r' | grep -q upgrade-proof || fail "the service does not list the key after the upgrade"
"$wine" reg query 'HKLM\System\CurrentControlSet\Services\SpeedifulSLAM' 2>/dev/null | tr -d '\r' \
  | grep -q 'ObjectName.*LocalSystem' || fail "the upgrade changed the service's account"
"$wine" reg query 'HKLM\SOFTWARE\Speediful\SLAM' 2>/dev/null | tr -d '\r' | grep -q 'WorkerAccount.*LocalSystem' \
  || fail "the upgrade changed WorkerAccount"
say "upgraded to 0.1.1: one product registered, the service account kept, the key kept and served"

say "uninstalling"
msiexec /x "$(winpath "$v2")" /qn /l*v "$(winpath target/msi/uninstall.log)" \
  || fail "msiexec /x exited $? (target/msi/uninstall.log)"
[[ -e "$program/slam-worker.exe" ]] && fail "the program files are still there"
"$wine" reg query 'HKLM\System\CurrentControlSet\Services\SpeedifulSLAM' >/dev/null 2>&1 && fail "the service is still registered"
[[ -f "$data/keys/upgrade-proof.pem" ]] || fail "the uninstall deleted a key"
[[ -f "$data/slam-worker.toml" ]] || fail "the uninstall deleted the configuration"
say "uninstalled: program and service gone, keys and configuration kept"
wineserver -k 2>/dev/null || true
say "the installer lane passed"
