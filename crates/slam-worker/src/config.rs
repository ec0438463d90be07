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
    /// Where connections, settings and the log are kept: `sqlite` (DATA_DIR/slam.db,
    /// standalone use) or `sqlserver` (the tables `slam-install.sql` creates in each
    /// database that calls SLAM; see `[sqlserver]`).
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
    /// The SQL Server instance, for `store = "sqlserver"`.
    pub sqlserver: SqlServerSection,
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

/// The stores `store` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// `DATA_DIR/slam.db`.
    Sqlite,
    /// The caller's SQL Server database.
    SqlServer,
}

/// `[sqlserver]`: where the SQL Server store connects, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqlServerSection {
    /// `host`, `host,port` or `host\INSTANCE` (`.` or `localhost` for this machine).
    pub server: String,
    /// `windows`: the worker's own account (Windows only; the installer's default,
    /// `NT SERVICE\SpeedifulSLAM`), or `sql`: a SQL Server login.
    pub authentication: String,
    /// The SQL Server login (`authentication = "sql"`).
    pub user: String,
    /// A file whose first line is that login's password (readable by the worker only).
    pub password_file: String,
    /// Or an environment variable holding it. Never the password itself here.
    pub password_env: String,
    /// `strict` (TDS 8.0, SQL Server 2022+), `mandatory` or `optional` (only the
    /// login is encrypted). Required: there is no safe default to fall back on.
    pub encrypt: String,
    /// Accept any server certificate (a test server's self-signed one). Avoid.
    pub trust_server_certificate: bool,
    /// A PEM file of CA certificates to trust for the server's certificate.
    pub ca_file: String,
    /// The database for requests that name none (the CLI without `--database`).
    pub default_database: String,
    /// How long a statement waits behind another transaction before the operation
    /// fails with 50008 (SQL Server's `LOCK_TIMEOUT`); less than `request_timeout_seconds`.
    pub lock_timeout_seconds: u64,
    /// Seconds to connect and log in.
    pub connect_timeout_seconds: u64,
    /// Pooled connections per database.
    pub max_connections_per_database: usize,
}

impl Default for SqlServerSection {
    fn default() -> Self {
        Self {
            server: "localhost".into(),
            authentication: if cfg!(windows) { "windows" } else { "sql" }.into(),
            user: String::new(),
            password_file: String::new(),
            password_env: String::new(),
            encrypt: String::new(),
            trust_server_certificate: false,
            ca_file: String::new(),
            default_database: String::new(),
            lock_timeout_seconds: 10,
            connect_timeout_seconds: 15,
            max_connections_per_database: 8,
        }
    }
}

fn sql_invalid(setting: &str, problem: impl std::fmt::Display) -> SlamError {
    invalid(&format!("sqlserver.{setting}"), problem)
}

impl SqlServerSection {
    /// The store's settings; `password` is called only for SQL authentication.
    fn to_settings(
        &self,
        request_timeout: Duration,
        password: impl FnOnce(&Self) -> Result<secrecy::SecretString, SlamError>,
    ) -> Result<slam_store::SqlServerSettings, SlamError> {
        use slam_store::mssql::{Encrypt, INTEGRATED_IS_AVAILABLE, ServerAddress, SqlAuth};
        let server = ServerAddress::parse(&self.server).map_err(|e| sql_invalid("server", e))?;
        let encrypt = Encrypt::parse(&self.encrypt).ok_or_else(|| {
            sql_invalid("encrypt", format!("`{}` is not `strict`, `mandatory` or `optional`", self.encrypt)).with_hint(
                "say it explicitly: `mandatory` for a server on another machine, `optional` only over loopback",
            )
        })?;
        let auth = match self.authentication.as_str() {
            "windows" if INTEGRATED_IS_AVAILABLE => SqlAuth::Integrated,
            "windows" => {
                return Err(sql_invalid("authentication", "`windows` needs the Windows build of the worker")
                    .with_hint("use `sql` with `user` and `password_file` or `password_env`"));
            }
            "sql" => {
                if self.user.trim().is_empty() {
                    return Err(sql_invalid("user", "SQL authentication needs a login name"));
                }
                match (self.password_file.is_empty(), self.password_env.is_empty()) {
                    (true, true) => {
                        return Err(sql_invalid(
                            "password_file",
                            "SQL authentication needs `password_file` or `password_env`",
                        ));
                    }
                    (false, false) => {
                        return Err(sql_invalid("password_env", "give `password_file` or `password_env`, not both"));
                    }
                    _ => {}
                }
                SqlAuth::Login { user: self.user.clone(), password: password(self)? }
            }
            other => return Err(sql_invalid("authentication", format!("`{other}` is not `windows` or `sql`"))),
        };
        if self.trust_server_certificate && !self.ca_file.trim().is_empty() {
            return Err(sql_invalid(
                "ca_file",
                "give `ca_file` or `trust_server_certificate`, not both: trusting any certificate would ignore the CA file",
            ));
        }
        let lock_timeout = Duration::from_secs(self.lock_timeout_seconds);
        if self.lock_timeout_seconds == 0 || lock_timeout >= request_timeout {
            return Err(sql_invalid(
                "lock_timeout_seconds",
                format!(
                    "{} must be at least 1 and less than request_timeout_seconds ({})",
                    self.lock_timeout_seconds,
                    request_timeout.as_secs()
                ),
            ));
        }
        if self.connect_timeout_seconds == 0 || self.connect_timeout_seconds > 600 {
            return Err(sql_invalid(
                "connect_timeout_seconds",
                format!("{} is outside 1..=600", self.connect_timeout_seconds),
            ));
        }
        if self.max_connections_per_database == 0 || self.max_connections_per_database > 256 {
            return Err(sql_invalid(
                "max_connections_per_database",
                format!("{} is outside 1..=256", self.max_connections_per_database),
            ));
        }
        let mut settings = slam_store::SqlServerSettings::new(server, auth, encrypt);
        settings.trust_server_certificate = self.trust_server_certificate;
        settings.ca_file = (!self.ca_file.is_empty()).then(|| PathBuf::from(&self.ca_file));
        settings.default_database = (!self.default_database.is_empty()).then(|| self.default_database.clone());
        settings.lock_timeout = lock_timeout;
        settings.connect_timeout = Duration::from_secs(self.connect_timeout_seconds);
        settings.command_timeout = request_timeout;
        settings.max_connections = self.max_connections_per_database;
        Ok(settings)
    }

    /// The SQL login's password, from its file's first line or its variable.
    fn read_password(&self) -> Result<secrecy::SecretString, SlamError> {
        let password = if !self.password_file.is_empty() {
            let text = std::fs::read_to_string(&self.password_file)
                .map_err(|e| sql_invalid("password_file", format!("{} cannot be read: {e}", self.password_file)))?;
            // Windows PowerShell 5.1's `Set-Content -Encoding UTF8` writes a byte-order
            // mark, which would otherwise become the password's first character.
            text.trim_start_matches('\u{feff}').lines().next().unwrap_or("").to_string()
        } else {
            std::env::var(&self.password_env).map_err(|_| {
                sql_invalid("password_env", format!("the environment variable {} is not set", self.password_env))
            })?
        };
        if password.is_empty() {
            return Err(sql_invalid("password_file", "the SQL login's password is empty"));
        }
        Ok(secrecy::SecretString::from(password))
    }
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
            sqlserver: SqlServerSection::default(),
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
        // The SQL login's password file: whoever may replace it decides which login
        // the worker uses.
        if self.store == "sqlserver" && !self.sqlserver.password_file.is_empty() {
            paths.push(PathBuf::from(&self.sqlserver.password_file));
        }
        paths
    }

    /// The store named by `store`, for every operation the worker runs. Nothing
    /// connects yet: the SQL Server store connects at the first operation.
    pub fn store_opener(&self) -> Result<std::sync::Arc<dyn slam_store::StoreOpener>, SlamError> {
        match self.store_kind()? {
            StoreKind::Sqlite => Ok(slam_core::ops::embedded_store(&self.data_dir)),
            StoreKind::SqlServer => {
                let opener =
                    slam_store::SqlServerOpener::new(self.sqlserver_settings()?).map_err(|e| invalid("store", e))?;
                Ok(std::sync::Arc::new(opener))
            }
        }
    }

    /// Which store `store` names.
    pub fn store_kind(&self) -> Result<StoreKind, SlamError> {
        match self.store.as_str() {
            "sqlite" => Ok(StoreKind::Sqlite),
            "sqlserver" => Ok(StoreKind::SqlServer),
            other => Err(invalid("store", format!("`{other}` is not `sqlite` or `sqlserver`"))),
        }
    }

    /// `[sqlserver]` as the store's settings, the password read.
    pub fn sqlserver_settings(&self) -> Result<slam_store::SqlServerSettings, SlamError> {
        self.sqlserver.to_settings(self.request_timeout(), SqlServerSection::read_password)
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
        toml::from_str(text).map_err(|e: toml::de::Error| {
            // The parser's own text quotes the offending line, which may hold a
            // secret typed into the wrong setting (`password = "..."`): name the
            // line and the problem, never its content.
            let place = e
                .span()
                .map(|span| {
                    let start = span.start.min(text.len());
                    let number = text[..start].matches('\n').count() + 1;
                    let line = text.lines().nth(number - 1).unwrap_or("");
                    match line.split_once('=') {
                        Some((key, _)) => format!(" (line {number}, `{}`)", key.trim()),
                        None => format!(" (line {number})"),
                    }
                })
                .unwrap_or_default();
            SlamError::new(
                ErrorCode::ConfigInvalid,
                format!(
                    "{} is not a valid SLAM worker configuration{place}: {}",
                    origin.display(),
                    e.message().trim_end()
                ),
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
        if self.store_kind()? == StoreKind::SqlServer {
            // The shape only: the password file is read when the worker starts.
            self.sqlserver.to_settings(self.request_timeout(), |_| Ok(secrecy::SecretString::from("unread")))?;
        }
        for (name, value, max) in [
            // Shorter than the XP's and the CLI's wait, so the worker's own 50406 arrives.
            ("request_timeout_seconds", self.request_timeout_seconds, slam_protocol::CLIENT_ANSWER_DEADLINE_SECS - 10),
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
            ("request_timeout_seconds = 600", "request_timeout_seconds"),
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
    fn the_sql_server_store_needs_explicit_encryption_and_a_password_source_never_in_the_file() {
        let base = "store = \"sqlserver\"\n[sqlserver]\nserver = \"sql01,1500\"\nauthentication = \"sql\"\n\
                    user = \"slam\"\npassword_env = \"SLAM_TEST_NO_SUCH_VARIABLE\"\n";
        for (extra, setting, words) in [
            ("", "sqlserver.encrypt", "is not `strict`, `mandatory` or `optional`"),
            ("encrypt = \"maybe\"\n", "sqlserver.encrypt", "`maybe`"),
            ("encrypt = \"mandatory\"\nlock_timeout_seconds = 120\n", "sqlserver.lock_timeout_seconds", "less than"),
            ("encrypt = \"mandatory\"\npassword_file = \"pw.txt\"\n", "sqlserver.password_env", "not both"),
            (
                "encrypt = \"mandatory\"\ntrust_server_certificate = true\nca_file = \"ca.pem\"\n",
                "sqlserver.ca_file",
                "not both",
            ),
        ] {
            let error = parse(&format!("{base}{extra}")).unwrap().validate().unwrap_err();
            assert!(
                error.message.contains(&format!("`{setting}`")) && error.message.contains(words),
                "{extra}: {}",
                error.message
            );
        }
        let error = parse("store = \"sqlserver\"\n[sqlserver]\npassword = \"hunter2\"\n").unwrap_err();
        assert!(error.message.contains("password"), "a password in the file is an unknown setting: {}", error.message);
        assert!(!error.message.contains("hunter2"), "a secret in the wrong setting is never echoed: {}", error.message);
        let settings = parse(&format!("{base}encrypt = \"mandatory\"\n")).unwrap();
        settings.validate().unwrap();
        // The variable is read only when the worker starts, and its absence is named.
        let error = settings.store_opener().err().unwrap();
        assert!(error.message.contains("SLAM_TEST_NO_SUCH_VARIABLE"), "{}", error.message);
    }

    #[test]
    fn the_sql_login_password_comes_from_its_file_and_builds_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw.txt");
        std::fs::write(&file, "\u{feff}Sql-Login-Pw-1\r\nignored\n").unwrap();
        let text = format!(
            "store = \"sqlserver\"\n[sqlserver]\nserver = 'sql01\\PROD'\nauthentication = \"sql\"\nuser = \"slam\"\n\
             password_file = '{}'\nencrypt = \"optional\"\ndefault_database = \"Sales\"\n",
            file.display()
        );
        let settings = parse(&text).unwrap();
        settings.validate().unwrap();
        let sql = settings.sqlserver_settings().unwrap();
        assert_eq!(sql.server.instance.as_deref(), Some("PROD"));
        assert_eq!(sql.default_database.as_deref(), Some("Sales"));
        assert_eq!(sql.command_timeout, settings.request_timeout());
        match &sql.auth {
            slam_store::mssql::SqlAuth::Login { password, .. } => {
                assert_eq!(secrecy::ExposeSecret::expose_secret(password), "Sql-Login-Pw-1");
            }
            other => panic!("{other:?}"),
        }
        assert!(!settings.to_toml().contains("Sql-Login-Pw-1"));
        assert!(settings.trusted_paths().contains(&file), "the password file's owner and rights are checked");
        settings.store_opener().unwrap();
    }

    #[cfg(not(windows))]
    #[test]
    fn windows_authentication_is_refused_off_windows_with_the_alternative() {
        let settings =
            parse("store = \"sqlserver\"\n[sqlserver]\nauthentication = \"windows\"\nencrypt = \"optional\"\n")
                .unwrap();
        let error = settings.validate().unwrap_err();
        assert!(error.message.contains("sqlserver.authentication"), "{}", error.message);
        assert!(error.hint.unwrap_or_default().contains("password_file"));
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
