//! The worker's configuration: a TOML file in which every setting has a default,
//! so an empty (or absent) file is a working configuration.
//!
//! Parsing and checking are pure, apart from `--check-config` (`check::environment`), which looks at
//! the files and directories named. Unknown settings are refused by name: a typo
//! such as `request_timout_seconds` must not silently fall back to a default.
//! Command-line flags and `SLAM_DATA_DIR` / `SLAM_PIPE` override the file.

use serde::{Deserialize, Serialize};
use slam_core::salesforce::{HttpSettings, ResolveOverride};
use slam_protocol::{ErrorCode, SlamError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// The SLAM data directory (keys, store, master key).
    pub data_dir: PathBuf,
    /// Windows: the pipe name (`speediful-slam` or `\\.\pipe\speediful-slam`).
    /// Unix: the socket path.
    pub pipe: String,
    /// Who may connect besides the worker's own account. Windows: account names
    /// (`NT SERVICE\MSSQLSERVER`, `DOMAIN\svc-sql`) or SIDs; LocalSystem and
    /// Administrators always may. Unix: numeric uids.
    pub allowed_clients: Vec<String>,
    /// Where connections are stored: `sqlite` (DATA_DIR/slam.db).
    pub store: String,
    /// How long one operation may run before the client gets error 50406.
    pub request_timeout_seconds: u64,
    /// How long the worker waits on a client: for its request, and for each frame
    /// of the answer to be taken off the pipe. A client that stops reading loses
    /// its connection after this long.
    pub idle_timeout_seconds: u64,
    /// Allowed clients connected at once; more wait in the pipe's backlog. Refused
    /// peers do not count. Connections are cheap; the work is bounded by
    /// `max_operations`.
    pub max_connections: usize,
    /// Operations running at once (`ping` excepted), including those whose caller
    /// stopped waiting after `request_timeout_seconds`: this bounds the Salesforce
    /// and key work in flight. More wait, within their time limit.
    pub max_operations: usize,
    /// Keep Salesforce access tokens between operations (off only to measure).
    pub cache_tokens: bool,
    /// How to reach Salesforce.
    pub salesforce: SalesforceSettings,
    /// Logging.
    pub log: LogSettings,
    /// The file these settings were read from (none: the defaults). Not a setting:
    /// the worker checks that nobody else could have written it.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// `[salesforce]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SalesforceSettings {
    /// Seconds one Salesforce request may take, answer included.
    pub timeout_seconds: u64,
    /// Seconds to establish a connection (TCP and TLS).
    pub connect_timeout_seconds: u64,
    /// Proxy URL; empty means the environment's HTTPS_PROXY / NO_PROXY apply.
    pub proxy: String,
    /// A PEM file of extra CA certificates to trust (e.g. a TLS-inspecting proxy's).
    pub ca_file: String,
    /// Host-suffix DNS overrides, `SUFFIX=IP:PORT` (tests and unusual networks).
    pub resolve: Vec<String>,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `error`, `warn`, `info`, `debug` or `trace` (or a tracing filter such as
    /// `info,slam_core=debug`). `SLAM_LOG` overrides it.
    pub level: String,
    /// A log file, rotated daily (`slam-worker.log.2026-11-23`). Empty: standard
    /// error in the foreground, DATA_DIR/logs/slam-worker.log for the service.
    pub file: String,
    /// Rotated files kept.
    pub max_files: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            data_dir: slam_core::data_dir::DataDir::default_path(),
            pipe: slam_protocol::DEFAULT_PIPE.to_string(),
            allowed_clients: default_allowed_clients(),
            store: "sqlite".into(),
            request_timeout_seconds: 120,
            idle_timeout_seconds: 10,
            max_connections: 128,
            max_operations: 16,
            cache_tokens: true,
            salesforce: SalesforceSettings::default(),
            log: LogSettings::default(),
            source: None,
        }
    }
}

impl Default for SalesforceSettings {
    fn default() -> Self {
        let http = HttpSettings::default();
        Self {
            timeout_seconds: http.request_timeout.as_secs(),
            connect_timeout_seconds: http.connect_timeout.as_secs(),
            proxy: String::new(),
            ca_file: String::new(),
            resolve: Vec::new(),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { level: "info".into(), file: String::new(), max_files: 14 }
    }
}

/// The default instance's service account: what a stock SQL Server runs as.
#[cfg(windows)]
fn default_allowed_clients() -> Vec<String> {
    vec![r"NT SERVICE\MSSQLSERVER".into()]
}

#[cfg(not(windows))]
fn default_allowed_clients() -> Vec<String> {
    Vec::new()
}

/// Where the configuration file is looked for when `--config` is not given.
pub fn default_config_path() -> PathBuf {
    #[cfg(windows)]
    {
        slam_core::data_dir::DataDir::default_path().join("slam-worker.toml")
    }
    #[cfg(not(windows))]
    {
        PathBuf::from("/etc/speediful/slam-worker.toml")
    }
}

fn invalid(setting: &str, problem: impl std::fmt::Display) -> SlamError {
    SlamError::new(ErrorCode::ConfigInvalid, format!("`{setting}`: {problem}"))
}

impl WorkerSettings {
    /// The files whose owner and permissions decide whether the worker may start
    /// (see `slam_core::trust`): the data directory's, and the configuration file.
    pub fn trusted_paths(&self) -> Vec<PathBuf> {
        let mut paths = slam_core::trust::data_dir_paths(&self.data_dir);
        paths.extend(self.source.clone());
        paths
    }

    /// The store named by `store`, for every operation the worker runs. Only the
    /// embedded SQLite store exists so far; the check in [`WorkerSettings::validate`]
    /// names the setting for anything else.
    pub fn store_opener(&self) -> Result<std::sync::Arc<dyn slam_store::StoreOpener>, SlamError> {
        match self.store.as_str() {
            "sqlite" => Ok(slam_core::ops::embedded_store(&self.data_dir)),
            other => Err(invalid("store", format!("`{other}` is not available; the only store is `sqlite`"))
                .with_hint("the SQL Server store arrives with the T-SQL install script")),
        }
    }

    /// Every file the worker relies on that another account could have planted or
    /// changed, as one error naming each; `None` when all may be trusted.
    pub fn untrusted_files(&self) -> Option<SlamError> {
        let problems = slam_core::trust::check(&self.trusted_paths());
        if problems.is_empty() {
            return None;
        }
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        Some(
            SlamError::new(
                ErrorCode::DataDirInsecure,
                format!("the worker will not start: another account could change its files: {}", list.join("; ")),
            )
            .with_hint(
                "give each to the worker's account and remove the extra write permission; a file you did not put \
                 there may have been planted: check it before you trust it",
            ),
        )
    }

    /// Parses a configuration file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, SlamError> {
        toml::from_str(text).map_err(|e| {
            SlamError::new(
                ErrorCode::ConfigInvalid,
                format!("{} is not a valid SLAM worker configuration: {}", origin.display(), e.to_string().trim_end()),
            )
            .with_hint("see docs/worker.md for every setting; `slam-worker --print-default-config` writes a template")
        })
    }

    /// Reads `path`. A missing file is an error only when `required` (given
    /// explicitly); otherwise the defaults apply.
    pub fn load(path: &Path, required: bool) -> Result<Self, SlamError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path).map(|settings| Self { source: Some(path.to_path_buf()), ..settings }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(Self::default()),
            Err(e) => Err(SlamError::new(
                ErrorCode::ConfigInvalid,
                format!("the configuration file {} cannot be read: {e}", path.display()),
            )),
        }
    }

    /// The settings as TOML (what `--check-config` prints), with any password in
    /// the proxy URL masked: the output may end up in a ticket or a CI log.
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        if !shown.salesforce.proxy.is_empty() {
            shown.salesforce.proxy = slam_core::salesforce::redact_url(&shown.salesforce.proxy);
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
    }

    /// Values that cannot work, whatever the machine: caught before anything starts.
    pub fn validate(&self) -> Result<(), SlamError> {
        if self.pipe.trim().is_empty() {
            return Err(invalid("pipe", "must not be empty"));
        }
        self.store_opener()?;
        for (name, value, max) in [
            ("request_timeout_seconds", self.request_timeout_seconds, 3_600),
            ("idle_timeout_seconds", self.idle_timeout_seconds, 3_600),
            ("salesforce.timeout_seconds", self.salesforce.timeout_seconds, 3_600),
            ("salesforce.connect_timeout_seconds", self.salesforce.connect_timeout_seconds, 600),
        ] {
            if value == 0 || value > max {
                return Err(invalid(name, format!("{value} is outside 1..={max}")));
            }
        }
        for (name, value, max) in
            [("max_connections", self.max_connections, 1_000), ("max_operations", self.max_operations, 256)]
        {
            if value == 0 || value > max {
                return Err(invalid(name, format!("{value} is outside 1..={max}")));
            }
        }
        if self.log.max_files == 0 {
            return Err(invalid("log.max_files", "must be at least 1"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", format!("`{}` is not a log level or filter: {e}", self.log.level)))?;
        self.http_settings()?;
        #[cfg(unix)]
        self.allowed_uids()?;
        Ok(())
    }

    /// The request time limit.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }

    /// The idle limit.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_seconds)
    }

    /// The `[salesforce]` section as the HTTPS client's settings.
    pub fn http_settings(&self) -> Result<HttpSettings, SlamError> {
        let s = &self.salesforce;
        let resolve = s
            .resolve
            .iter()
            .map(|spec| ResolveOverride::parse(spec))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("salesforce.resolve", e))?;
        let proxy = (!s.proxy.trim().is_empty()).then(|| s.proxy.trim().to_string());
        if let Some(proxy) = &proxy
            && !(proxy.starts_with("http://") || proxy.starts_with("https://") || proxy.starts_with("socks5://"))
        {
            return Err(invalid(
                "salesforce.proxy",
                format!("`{}` is not a proxy URL", slam_core::salesforce::redact_url(proxy)),
            )
            .with_hint("write it as http://host:port"));
        }
        Ok(HttpSettings {
            connect_timeout: Duration::from_secs(s.connect_timeout_seconds),
            request_timeout: Duration::from_secs(s.timeout_seconds),
            extra_ca_file: (!s.ca_file.trim().is_empty()).then(|| PathBuf::from(s.ca_file.trim())),
            proxy,
            resolve,
            ..HttpSettings::default()
        })
    }

    /// `allowed_clients` as uids.
    #[cfg(unix)]
    pub fn allowed_uids(&self) -> Result<Vec<u32>, SlamError> {
        self.allowed_clients
            .iter()
            .map(|c| {
                c.trim().parse::<u32>().map_err(|_| {
                    invalid("allowed_clients", format!("`{c}` is not a uid")).with_hint("on Unix list numeric uids")
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WorkerSettings, SlamError> {
        WorkerSettings::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn an_empty_file_is_the_defaults_and_they_validate() {
        let settings = parse("").unwrap();
        assert_eq!(settings, WorkerSettings::default());
        settings.validate().unwrap();
        assert_eq!(settings.request_timeout(), Duration::from_secs(120));
        assert!(settings.cache_tokens);
    }

    #[test]
    fn the_printed_configuration_reads_back_identically() {
        let mut settings = WorkerSettings::default();
        settings.salesforce.proxy = "http://proxy.example:3128".into(); // no credentials: printed as is
        settings.allowed_clients = vec!["1001".into()];
        assert_eq!(parse(&settings.to_toml()).unwrap(), settings);
    }

    #[test]
    fn the_printed_configuration_hides_proxy_credentials() {
        let settings = parse("[salesforce]\nproxy = \"http://svc:Pr0xy-Secret@proxy.example:3128\"\n").unwrap();
        let printed = settings.to_toml();
        assert!(!printed.contains("Pr0xy-Secret"), "{printed}");
        assert!(printed.contains("proxy.example:3128"), "{printed}");
    }

    #[test]
    fn a_misspelt_setting_is_refused_by_name() {
        let error = parse("request_timout_seconds = 5\n").unwrap_err();
        assert_eq!(error.code, ErrorCode::ConfigInvalid);
        assert!(error.message.contains("request_timout_seconds"), "{}", error.message);
        let error = parse("[salesforce]\nproxi = \"http://x:1\"\n").unwrap_err();
        assert!(error.message.contains("proxi"), "{}", error.message);
    }

    #[test]
    fn a_wrong_type_names_the_line() {
        let error = parse("max_connections = \"many\"\n").unwrap_err();
        assert!(error.message.contains("max_connections") && error.message.contains("line 1"), "{}", error.message);
    }

    #[test]
    fn out_of_range_values_name_the_setting() {
        for (text, setting) in [
            ("request_timeout_seconds = 0", "request_timeout_seconds"),
            ("max_connections = 0", "max_connections"),
            ("store = \"oracle\"", "store"),
            ("[salesforce]\ntimeout_seconds = 99999", "salesforce.timeout_seconds"),
            ("[salesforce]\nresolve = [\"nonsense\"]", "salesforce.resolve"),
            ("[salesforce]\nproxy = \"user:secret@proxy:8080\"", "salesforce.proxy"),
            ("[log]\nlevel = \"slam=loudest\"", "log.level"),
        ] {
            let error = parse(text).unwrap().validate().err().unwrap_or_else(|| panic!("{text} was accepted"));
            assert_eq!(error.code, ErrorCode::ConfigInvalid);
            assert!(error.message.contains(&format!("`{setting}`")), "{text}: {}", error.message);
            assert!(!error.message.contains("secret"), "a proxy password must not be echoed: {}", error.message);
        }
    }

    #[test]
    fn a_missing_file_is_fine_unless_it_was_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.toml");
        assert_eq!(WorkerSettings::load(&path, false).unwrap(), WorkerSettings::default());
        let error = WorkerSettings::load(&path, true).unwrap_err();
        assert!(error.message.contains("absent.toml"), "{}", error.message);
    }

    #[cfg(unix)]
    #[test]
    fn unix_clients_are_uids() {
        let settings = parse("allowed_clients = [\"1001\", \" 0 \"]").unwrap();
        assert_eq!(settings.allowed_uids().unwrap(), vec![1001, 0]);
        let error = parse("allowed_clients = [\"postgres\"]").unwrap().validate().unwrap_err();
        assert!(error.message.contains("postgres"), "{}", error.message);
    }
}
