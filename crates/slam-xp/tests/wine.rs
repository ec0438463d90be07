//! The built `xp_slam.dll` on the Windows ABI (under Wine in the Windows lane),
//! driven the way SQL Server drives it.
//!
//! This test is its own host: it loads the fake `opends60.dll`
//! (`crates/slam-xp-fake-ods`, which records every ODS call), then `xp_slam.dll`,
//! and calls `xp_slam` with fake `SRV_PROC`s holding the parameters SQL Server would
//! pass. Behind the DLL run the real worker (`slam-worker.exe`, its own process, on a
//! real named pipe) and the fake Salesforce. What it cannot prove: that real
//! `sqlservr.exe` and `opends60.dll` behave as the fake does (which types
//! `NVARCHAR(MAX)` arrives as, how messages and rows are shown), and Wine does not
//! enforce pipe DACLs.
//!
//! The XP checks who serves the pipe before it sends a request. Under Wine every
//! process runs as the same user (and Wine keeps no owner for a pipe, so the XP
//! reads the server process's user instead): the tests name that user in
//! `SLAM_XP_WORKER_ACCOUNT` where a call must succeed, and leave it unset (the
//! service's virtual account) where the XP must refuse.

#![cfg(windows)]
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_json::{Value, json};
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use windows_sys::Win32::Foundation::{CloseHandle, FreeLibrary, HMODULE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress, LoadLibraryW};

const NVARCHAR: u8 = 0xE7;
const INTN: u8 = 0x26;
const INT4: u8 = 0x38;
const BIGVARCHAR: u8 = 0xA7;

type XpFn = unsafe extern "C" fn(*mut c_void) -> i32;
type VersionFn = unsafe extern "C" fn() -> u32;
type NewFn = unsafe extern "C" fn() -> *mut c_void;
type AddParamFn = unsafe extern "C" fn(*mut c_void, u8, u32, *const u8, u32, i32, i32);
type AttentionFn = unsafe extern "C" fn(*mut c_void, i32);
type LogFn = unsafe extern "C" fn(*mut c_void, *mut u8, u32) -> u32;
type FreeFn = unsafe extern "C" fn(*mut c_void);

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

/// `target/<triple>/debug`, where cargo puts the DLLs and executables.
fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn load(path: &Path) -> HMODULE {
    // SAFETY: a Win32 or test-DLL call with arguments made just here, valid for the call.
    let module = unsafe { LoadLibraryW(wide(&path.to_string_lossy()).as_ptr()) };
    assert!(!module.is_null(), "cannot load {} (scripts/windows-lane.sh builds it)", path.display());
    module
}

fn symbol<T>(module: HMODULE, name: &str) -> T {
    let name = format!("{name}\0");
    // SAFETY: a Win32 or test-DLL call with arguments made just here, valid for the call.
    let f = unsafe { GetProcAddress(module, name.as_ptr()) }.unwrap_or_else(|| panic!("{name} is not exported"));
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of_val(&f));
    // SAFETY: a Win32 or test-DLL call with arguments made just here, valid for the call.
    unsafe { std::mem::transmute_copy(&f) }
}

fn thread_count() -> usize {
    // SAFETY: a Win32 or test-DLL call with arguments made just here, valid for the call.
    unsafe {
        let snapshot = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
        assert_ne!(snapshot, INVALID_HANDLE_VALUE);
        let mut entry: THREADENTRY32 = std::mem::zeroed();
        entry.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
        let mut count = 0;
        let mut ok = Thread32First(snapshot, &mut entry);
        while ok != 0 {
            if entry.th32OwnerProcessID == std::process::id() {
                count += 1;
            }
            ok = Thread32Next(snapshot, &mut entry);
        }
        CloseHandle(snapshot);
        count
    }
}

/// A parameter as SQL Server passes it.
struct P {
    ty: u8,
    max_len: u32,
    data: Option<Vec<u8>>,
    output: bool,
}

fn nvarchar(text: &str) -> P {
    P {
        ty: NVARCHAR,
        max_len: u32::MAX,
        data: Some(text.encode_utf16().flat_map(u16::to_le_bytes).collect()),
        output: false,
    }
}

fn outputs() -> [P; 2] {
    [P { ty: INTN, max_len: 4, data: None, output: true }, P { ty: NVARCHAR, max_len: 8000, data: None, output: true }]
}

fn request(operation: &str, args: Value) -> String {
    json!({"version": slam_protocol::PROTOCOL_VERSION, "id": format!("wine-{operation}"), "operation": operation,
           "args": args, "caller": {"login": "CORP\\dba", "database": "Sales", "server": "SQL01", "spid": 57,
           "application": "wine test host"}})
    .to_string()
}

/// What one call of `xp_slam` did.
struct Call {
    rc: i32,
    log: Vec<Value>,
}

impl Call {
    fn of(&self, kind: &str) -> Vec<&Value> {
        self.log.iter().filter(|c| c["call"] == kind).collect()
    }
    fn messages(&self) -> Vec<String> {
        self.of("message").iter().map(|m| m["text"].as_str().unwrap().to_string()).collect()
    }
    fn output(&self, n: i64) -> Option<Vec<u8>> {
        let last = self.log.iter().rev().find(|c| c["call"] == "output" && c["n"] == n)?;
        last["data"].as_str().map(unhex)
    }
    fn error(&self) -> (i32, Option<String>) {
        let number = self.output(2).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(-1);
        (number, self.output(3).map(|b| utf16(&b)))
    }
    /// The rows of the first result set, each cell decoded as its column's type.
    fn rows(&self) -> Vec<serde_json::Map<String, Value>> {
        let columns: Vec<(String, i64)> = self
            .of("describe")
            .iter()
            .map(|d| (d["name"].as_str().unwrap().to_string(), d["type"].as_i64().unwrap()))
            .collect();
        self.of("row")
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .zip(row["cells"].as_array().unwrap())
                    .map(|((name, ty), cell)| {
                        let value = match (cell.as_str().map(unhex), *ty as u8) {
                            (None, _) => Value::Null,
                            (Some(b), NVARCHAR) => Value::String(utf16(&b)),
                            (Some(b), INTN) => json!(i64::from_le_bytes(b.try_into().unwrap())),
                            (Some(b), _) => json!(b[0] != 0),
                        };
                        (name.clone(), value)
                    })
                    .collect()
            })
            .collect()
    }
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

fn utf16(bytes: &[u8]) -> String {
    String::from_utf16(&bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect::<Vec<_>>()).unwrap()
}

/// The fake opends60.dll and xp_slam.dll, loaded.
struct Host {
    xp_module: HMODULE,
    xp: XpFn,
    new: NewFn,
    add: AddParamFn,
    attention: AttentionFn,
    log: LogFn,
    free: FreeFn,
}

impl Host {
    fn load() -> Self {
        let dir = build_dir();
        let ods = load(&dir.join("opends60.dll"));
        let xp_module = load(&dir.join("xp_slam.dll"));
        let version: VersionFn = symbol(xp_module, "__GetXpVersion");
        // SAFETY: a Win32 or test-DLL call with arguments made just here, valid for the call.
        assert_eq!(unsafe { version() }, 0x0700_0000, "ODS_VERSION");
        Host {
            xp_module,
            xp: symbol(xp_module, "xp_slam"),
            new: symbol(ods, "fake_proc_new"),
            add: symbol(ods, "fake_proc_add_param"),
            attention: symbol(ods, "fake_proc_set_attention"),
            log: symbol(ods, "fake_proc_log"),
            free: symbol(ods, "fake_proc_free"),
        }
    }

    /// Calls xp_slam with `params`; `cancel_after` sets the query's cancel flag from
    /// another thread after that long.
    fn call_with(&self, params: &[P], cancel_after: Option<Duration>) -> Call {
        // SAFETY: a Win32 or test-DLL call with arguments made just here, valid for the call.
        unsafe {
            let proc = (self.new)();
            for p in params {
                let (ptr, len) = p.data.as_ref().map_or((std::ptr::null(), 0), |d| (d.as_ptr(), d.len() as u32));
                (self.add)(proc, p.ty, p.max_len, ptr, len, i32::from(p.data.is_none()), i32::from(p.output));
            }
            let canceller = cancel_after.map(|after| {
                let (attention, address) = (self.attention, proc as usize);
                std::thread::spawn(move || {
                    std::thread::sleep(after);
                    attention(address as *mut c_void, 1);
                })
            });
            let rc = (self.xp)(proc);
            if let Some(thread) = canceller {
                thread.join().unwrap();
            }
            let len = (self.log)(proc, std::ptr::null_mut(), 0);
            let mut buf = vec![0u8; len as usize];
            (self.log)(proc, buf.as_mut_ptr(), len);
            (self.free)(proc);
            Call { rc, log: serde_json::from_slice(&buf).unwrap() }
        }
    }

    fn call(&self, request: &str) -> Call {
        let mut params = vec![nvarchar(request)];
        params.extend(outputs());
        self.call_with(&params, None)
    }
}

/// `slam-worker.exe` in its own process, on its own pipe, against the fake Salesforce.
struct Worker {
    child: std::process::Child,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_worker(dir: &Path, pipe: &str, fake: &slam_testkit::FakeSalesforce) -> Worker {
    let ca = fake.write_ca_file(dir);
    let config = dir.join("slam-worker.toml");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let toml = format!(
        "data_dir = {data:?}\npipe = {pipe:?}\nallowed_clients = []\n\n[salesforce]\nca_file = {ca:?}\nresolve = [{resolve:?}]\n\n[log]\nlevel = \"warn\"\n",
        data = data.to_string_lossy(),
        ca = ca.to_string_lossy(),
        resolve = fake.resolve_spec(),
    );
    std::fs::write(&config, toml).unwrap();
    let child = std::process::Command::new(build_dir().join("slam-worker.exe"))
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("slam-worker.exe (scripts/windows-lane.sh builds it)");
    Worker { child }
}

/// One instance of the pipe `pipe` (default security, one client), as a handle
/// number a test thread can take.
fn one_client_pipe(pipe: &str) -> usize {
    use windows_sys::Win32::Storage::FileSystem::PIPE_ACCESS_DUPLEX;
    use windows_sys::Win32::System::Pipes::{CreateNamedPipeW, PIPE_TYPE_BYTE, PIPE_WAIT};
    let path = wide(&slam_protocol::windows_pipe_path(pipe));
    // SAFETY: a Win32 or test-DLL call with arguments made just here, valid for the call.
    let handle = unsafe {
        CreateNamedPipeW(
            path.as_ptr(),
            PIPE_ACCESS_DUPLEX,
            PIPE_TYPE_BYTE | PIPE_WAIT,
            1,
            65536,
            65536,
            0,
            std::ptr::null(),
        )
    };
    assert_ne!(handle, INVALID_HANDLE_VALUE);
    handle as usize
}

/// A named pipe server that accepts one client, reads its request, then either
/// never answers (`answer` None) or answers `answer` and closes.
fn fake_worker(pipe: &str, answer: Option<Vec<u8>>) -> std::thread::JoinHandle<()> {
    use windows_sys::Win32::Storage::FileSystem::{ReadFile, WriteFile};
    use windows_sys::Win32::System::Pipes::ConnectNamedPipe;
    let handle = one_client_pipe(pipe);
    // SAFETY: a Win32 or test-DLL call with arguments made just here, valid for the call.
    std::thread::spawn(move || unsafe {
        let handle = handle as windows_sys::Win32::Foundation::HANDLE;
        ConnectNamedPipe(handle, std::ptr::null_mut());
        let mut buf = vec![0u8; 65536];
        let mut n = 0u32;
        ReadFile(handle, buf.as_mut_ptr(), buf.len() as u32, &mut n, std::ptr::null_mut());
        match answer {
            Some(bytes) => {
                WriteFile(handle, bytes.as_ptr(), bytes.len() as u32, &mut n, std::ptr::null_mut());
            }
            // Stalls until the client goes away: the read fails when it closes.
            None => {
                ReadFile(handle, buf.as_mut_ptr(), buf.len() as u32, &mut n, std::ptr::null_mut());
            }
        }
        CloseHandle(handle);
    })
}

/// A named pipe server that accepts one client and counts the bytes it receives
/// until the client goes away.
fn recording_server(pipe: &str) -> std::thread::JoinHandle<usize> {
    use windows_sys::Win32::Storage::FileSystem::ReadFile;
    use windows_sys::Win32::System::Pipes::ConnectNamedPipe;
    let handle = one_client_pipe(pipe);
    // SAFETY: a Win32 or test-DLL call with arguments made just here, valid for the call.
    std::thread::spawn(move || unsafe {
        let handle = handle as windows_sys::Win32::Foundation::HANDLE;
        ConnectNamedPipe(handle, std::ptr::null_mut());
        let mut buf = vec![0u8; 65536];
        let mut received = 0usize;
        loop {
            let mut n = 0u32;
            if ReadFile(handle, buf.as_mut_ptr(), buf.len() as u32, &mut n, std::ptr::null_mut()) == 0 || n == 0 {
                break;
            }
            received += n as usize;
        }
        CloseHandle(handle);
        received
    })
}

/// The tests share the environment and the loaded DLL: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn set_pipe(pipe: &str) {
    // SAFETY: only this test thread reads or writes the environment while it runs.
    unsafe { std::env::set_var("SLAM_XP_PIPE", pipe) };
}

/// The account the XP must find serving the pipe; `None` is its default, the
/// service's virtual account.
fn set_worker_account(account: Option<&str>) {
    // SAFETY: only this test thread reads or writes the environment while it runs.
    unsafe {
        match account {
            Some(account) => std::env::set_var("SLAM_XP_WORKER_ACCOUNT", account),
            None => std::env::remove_var("SLAM_XP_WORKER_ACCOUNT"),
        }
    }
}

#[test]
fn xp_slam_relays_every_operation_and_every_failure_and_unloads_cleanly() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let fake = slam_testkit::FakeSalesforce::start();
    let org = slam_testkit::Org::production("acme");
    fake.add_org(org.clone());
    fake.add_user(
        slam_testkit::User::new("etl@acme.com", &org).with_password("Pässwörd&<1>").with_security_token("TOK"),
    );
    let pipe = format!("speediful-slam-xp-test-{}", std::process::id());
    let _worker = start_worker(dir.path(), &pipe, &fake);
    set_pipe(&pipe);
    // The worker, and the fake workers below, run as this test does.
    set_worker_account(Some(&slam_windows::current_user_sid().unwrap()));

    let threads_before = thread_count();
    let host = Host::load();

    // The worker takes a moment to start under Wine: wait for its first answer.
    let started = Instant::now();
    let ping = loop {
        let call = host.call(&request("ping", json!({})));
        if call.rc == 0 || call.error().0 != 50407 || started.elapsed() > Duration::from_secs(60) {
            break call;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(ping.rc, 0, "{:?}", ping.log);
    assert_eq!(ping.error(), (0, None), "success: @error_number 0, @error_message NULL");
    assert!(ping.messages()[0].contains("SLAM worker"), "{:?}", ping.messages());
    assert_eq!(ping.rows()[0]["mode"], "worker");
    assert!(ping.of("done").iter().all(|d| d["status"] == 0x11), "result sets end DONE_MORE|DONE_COUNT");

    // Keys.
    let setup = host.call(&request("setup_jwt", json!({"key_name": "acme-prod", "cert_days": 30})));
    assert_eq!(setup.rc, 0, "{:?}", setup.log);
    assert!(setup.messages().iter().any(|m| m.starts_with("Warning: ")), "warnings are marked");
    let row = &setup.rows()[0];
    assert_eq!(row["status"], "created");
    assert!(row["certificate_pem"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(row["has_passphrase"], false);
    let keys = host.call(&request("list_keys", json!({})));
    assert_eq!(keys.rows().len(), 1);

    // Connections, with text beyond ASCII going both ways.
    let environment = "Zürich Ω 🔑 — prod";
    let add = host.call(&request(
        "add_connection",
        json!({"username": "etl@acme.com", "password": "Pässwörd&<1>", "token": "TOK", "domain": "acme.my",
               "environment_name": environment}),
    ));
    assert_eq!(add.rc, 0, "{:?}", add.log);
    assert!(add.messages().iter().any(|m| m.contains("Summer '27")), "{:?}", add.messages());
    let listed = host.call(&request("list_connections", json!({})));
    assert_eq!(listed.rows()[0]["environment_name"], environment);
    assert_eq!(listed.rows()[0]["api_version"], 60);
    assert_eq!(listed.rows()[0]["active"], true);
    assert!(!serde_json::to_string(&listed.log).unwrap().contains("Pässwörd"), "no secret comes back");
    assert_eq!(host.call(&request("use_connection_username", json!({"username": "etl@acme.com"}))).rc, 0);
    let tested = host.call(&request("test_connection", json!({"username": "etl@acme.com"})));
    assert_eq!(tested.rc, 0, "{:?}", tested.log);
    assert_eq!(host.call(&request("remove_connection", json!({"username": "etl@acme.com"}))).rc, 0);
    let removed = host.call(&request("remove_jwt", json!({"key_name": "acme-prod"})));
    assert!(removed.messages().iter().any(|m| m.contains("revoke")), "{:?}", removed.messages());

    // An operation's error lands in the OUTPUT parameters and the return code, not in a message.
    let missing = host.call(&request("test_connection", json!({"username": "nobody@acme.com"})));
    assert_eq!(missing.rc, 1);
    let (number, message) = missing.error();
    assert_eq!(number, 50206);
    assert!(message.unwrap().contains("hint: "));
    assert!(missing.messages().is_empty());

    // Bad @request values.
    let with_outputs = |request: P| {
        let mut params = vec![request];
        params.extend(outputs());
        host.call_with(&params, None)
    };
    for (param, expected) in [
        (P { ty: NVARCHAR, max_len: 8000, data: None, output: false }, "NULL"),
        (nvarchar(""), "empty"),
        (P { ty: INT4, max_len: 4, data: Some(vec![1, 0, 0, 0]), output: false }, "must be NVARCHAR"),
        (nvarchar(&"x".repeat(1024 * 1024 + 1)), "limit"),
    ] {
        let call = with_outputs(param);
        assert_eq!(call.rc, 1, "{expected}");
        let (number, message) = call.error();
        assert_eq!(number, 50410, "{expected}");
        assert!(message.unwrap().contains(expected), "{expected}");
    }
    let ascii = with_outputs(P {
        ty: BIGVARCHAR,
        max_len: 8000,
        data: Some(request("ping", json!({})).into_bytes()),
        output: false,
    });
    assert_eq!(ascii.rc, 0, "VARCHAR in ASCII is accepted");
    // A request of almost 1 MiB goes through whole (and is refused by the worker by name).
    let big = host.call(&request("ping", json!({"padding": "p".repeat(1000 * 1000)})));
    assert_eq!(big.error().0, 50403, "{:?}", big.error());
    // Without the OUTPUT parameters the caller is told so in a message.
    let bare = host.call_with(&[nvarchar(&request("ping", json!({})))], None);
    assert_eq!(bare.rc, 1);
    assert!(bare.messages()[0].contains("@error_number INT OUTPUT"));

    // Ten calls in a row in one process.
    for _ in 0..10 {
        assert_eq!(host.call(&request("ping", json!({}))).rc, 0);
    }

    // No worker at all.
    set_pipe(&format!("{pipe}-nobody"));
    let nobody = host.call(&request("ping", json!({})));
    assert_eq!(nobody.error().0, 50407);
    assert!(nobody.error().1.unwrap().contains("SpeedifulSLAM"));

    // A worker that stalls: the query is cancelled after 300 ms and the call ends promptly.
    let stalled_pipe = format!("{pipe}-stall");
    let stalled = fake_worker(&stalled_pipe, None);
    set_pipe(&stalled_pipe);
    let mut params = vec![nvarchar(&request("ping", json!({})))];
    params.extend(outputs());
    let started = Instant::now();
    let cancelled = host.call_with(&params, Some(Duration::from_millis(300)));
    let waited = started.elapsed();
    assert_eq!(cancelled.error().0, 50411, "{:?}", cancelled.log);
    assert!(waited < Duration::from_secs(2), "the cancel ended the wait in {waited:?}");
    stalled.join().unwrap();

    // A worker that answers garbage.
    let garbage_pipe = format!("{pipe}-garbage");
    let mut garbage = 12u32.to_le_bytes().to_vec();
    garbage.extend_from_slice(b"not json at all");
    let server = fake_worker(&garbage_pipe, Some(garbage));
    set_pipe(&garbage_pipe);
    let bad = host.call(&request("ping", json!({})));
    assert_eq!(bad.error().0, 50413, "{:?}", bad.log);
    server.join().unwrap();

    // Unloading leaves nothing behind: no thread of the DLL's outlives its calls.
    set_pipe(&pipe);
    // SAFETY: a Win32 or test-DLL call with arguments made just here, valid for the call.
    assert!(unsafe { FreeLibrary(host.xp_module) } != 0);
    // SAFETY: a Win32 or test-DLL call with arguments made just here, valid for the call.
    assert!(unsafe { GetModuleHandleW(wide("xp_slam.dll").as_ptr()) }.is_null(), "xp_slam.dll is unloaded");
    assert_eq!(thread_count(), threads_before, "threads before loading xp_slam.dll and after unloading it");
}

/// With its default worker account (the service's virtual account), the XP refuses
/// a pipe served by anyone else (here: this test process) before it writes a byte
/// of the request, which may carry a password, and says which account it found.
#[test]
fn xp_slam_sends_nothing_to_a_pipe_served_by_another_account() {
    let _serial = one_at_a_time();
    let own = slam_windows::current_user_sid().unwrap();
    let pipe = format!("speediful-slam-xp-squat-{}", std::process::id());
    let squatter = recording_server(&pipe);
    set_pipe(&pipe);
    set_worker_account(None);
    let host = Host::load();
    let request = request(
        "add_connection",
        json!({"username": "etl@acme.com", "password": "Pässwörd&<1>", "token": "TOK", "domain": "acme.my"}),
    );
    let refused = host.call(&request);
    // SAFETY: a Win32 or test-DLL call with arguments made just here, valid for the call.
    assert!(unsafe { FreeLibrary(host.xp_module) } != 0);
    let received = squatter.join().unwrap();
    let (number, message) = refused.error();
    let message = message.unwrap_or_default();
    println!("refused: {number}: {message}");
    assert_eq!(refused.rc, 1, "{:?}", refused.log);
    assert_eq!(number, 50414, "{message}");
    assert!(message.contains("nothing was sent"), "{message}");
    assert!(message.contains(&format!("runs as {own}")), "names the account found: {message}");
    assert!(message.contains(&format!("pid {}", std::process::id())), "names the server process: {message}");
    assert!(message.contains(slam_protocol::DEFAULT_WORKER_SID), "names the account expected: {message}");
    assert!(refused.messages().is_empty(), "{:?}", refused.messages());
    assert_eq!(received, 0, "not a byte may reach an untrusted server");
}

/// Benchmark, not a check: `scripts/bench-xp.sh` runs it under Wine and prints the
/// figures. `ping` through xp_slam.dll (fake ODS, real pipe, real worker) against the
/// same `ping` sent by slam-client, the transport `slam ping` uses, to the same
/// worker: the difference is the XP's own overhead.
#[test]
#[ignore = "a benchmark: scripts/bench-xp.sh"]
fn bench_ping_through_the_xp_against_the_client() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let fake = slam_testkit::FakeSalesforce::start();
    let pipe = format!("speediful-slam-xp-bench-{}", std::process::id());
    let _worker = start_worker(dir.path(), &pipe, &fake);
    set_pipe(&pipe);
    let own = slam_windows::current_user_sid().unwrap();
    set_worker_account(Some(&own));
    let host = Host::load();
    let ping = request("ping", json!({}));
    let started = Instant::now();
    while host.call(&ping).rc != 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "the worker did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    let rounds: usize = std::env::var("SLAM_BENCH_PINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let percentile = |times: &mut Vec<Duration>, p: f64| {
        times.sort();
        times[((times.len() - 1) as f64 * p).round() as usize]
    };
    let request: slam_protocol::Request = serde_json::from_str(&ping).unwrap();
    let options =
        slam_client::CallOptions { worker_account: slam_client::WorkerAccount::Named(own), ..Default::default() };
    let mut via_client = Vec::with_capacity(rounds);
    let mut via_xp = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let done = slam_client::call(&pipe, &request, &options, |_| {}).unwrap();
        via_client.push(t.elapsed());
        assert!(done.is_none());
        let t = Instant::now();
        let call = host.call(&ping);
        via_xp.push(t.elapsed());
        assert_eq!(call.rc, 0);
    }
    let (client50, xp50) = (percentile(&mut via_client, 0.5), percentile(&mut via_xp, 0.5));
    println!(
        "ping over {rounds} calls: slam-client p50 {:.0} µs p99 {:.0} µs; xp_slam p50 {:.0} µs p99 {:.0} µs; \
         the XP's own overhead at p50: {:.0} µs (target: under 1000)",
        client50.as_secs_f64() * 1e6,
        percentile(&mut via_client, 0.99).as_secs_f64() * 1e6,
        xp50.as_secs_f64() * 1e6,
        percentile(&mut via_xp, 0.99).as_secs_f64() * 1e6,
        (xp50.as_secs_f64() - client50.as_secs_f64()) * 1e6,
    );
}
