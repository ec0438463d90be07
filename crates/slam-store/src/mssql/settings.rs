//! Where the SQL Server store connects, and how: the settings a worker's
//! configuration gives, and their translation into a tiberius [`Config`].
//!
//! The translation is pure and unit-tested here; the pitfalls it exists for are
//! tiberius defaults a DBA would not expect: a missing `encrypt` means no
//! encryption, a missing application name hides the worker among other sessions,
//! and a named instance needs the SQL Browser lookup.

use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;
use std::time::Duration;
use tiberius::{AuthMethod, Config, EncryptionLevel};

/// The application name the worker's sessions carry (`program_name` in
/// `sys.dm_exec_sessions`), so a DBA can tell them apart.
pub const APPLICATION_NAME: &str = "Speediful SLAM";

/// How the worker proves who it is to SQL Server.
#[derive(Clone)]
pub enum SqlAuth {
    /// Windows authentication as the worker's own account (the service's virtual
    /// account, `NT SERVICE\SpeedifulSLAM`). Windows only.
    Integrated,
    /// A SQL Server login. The password comes from a file or the environment,
    /// never from the configuration file in clear.
    Login {
        /// The login name.
        user: String,
        /// Its password.
        password: SecretString,
    },
}

impl std::fmt::Debug for SqlAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlAuth::Integrated => f.write_str("Integrated"),
            SqlAuth::Login { user, .. } => f.debug_struct("Login").field("user", user).finish_non_exhaustive(),
        }
    }
}

/// Whether and how the connection is encrypted. There is no default: the
/// configuration must say, because tiberius' own default is "off".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encrypt {
    /// TDS 8.0: TLS before anything else, as `Encrypt=Strict` (SQL Server 2022+).
    Strict,
    /// TLS negotiated at pre-login and required for the whole session
    /// (`Encrypt=Mandatory`/`yes`).
    Mandatory,
    /// The login packet is encrypted, the session is not (`Encrypt=Optional`/`no`).
    /// For a worker on the SQL Server machine itself, talking over loopback.
    Optional,
}

impl Encrypt {
    /// Parses the configuration's word (`strict`, `mandatory` or `optional`).
    pub fn parse(word: &str) -> Option<Encrypt> {
        match word.to_ascii_lowercase().as_str() {
            "strict" => Some(Encrypt::Strict),
            "mandatory" | "yes" | "true" => Some(Encrypt::Mandatory),
            "optional" | "no" | "false" => Some(Encrypt::Optional),
            _ => None,
        }
    }

    fn level(self) -> EncryptionLevel {
        match self {
            Encrypt::Strict => EncryptionLevel::Strict,
            Encrypt::Mandatory => EncryptionLevel::Required,
            Encrypt::Optional => EncryptionLevel::Off,
        }
    }
}

/// A server as SQL Server's tools write it: `host`, `host,port`, `host\INSTANCE`,
/// with `.`, `(local)` and `localhost` for this machine and an optional `tcp:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    /// Host name or address.
    pub host: String,
    /// TCP port, when given (otherwise 1433, or the SQL Browser's answer for a
    /// named instance).
    pub port: Option<u16>,
    /// Named instance (looked up through the SQL Browser, UDP 1434).
    pub instance: Option<String>,
}

impl ServerAddress {
    /// Parses `server`; the error says what is wrong with it.
    pub fn parse(server: &str) -> Result<ServerAddress, String> {
        let text = server.trim();
        let text = text.strip_prefix("tcp:").or_else(|| text.strip_prefix("TCP:")).unwrap_or(text);
        if text.is_empty() {
            return Err("the server is empty: write `host`, `host,port` or `host\\INSTANCE`".into());
        }
        let (rest, port) = match text.split_once(',') {
            Some((rest, port)) => {
                let port = port
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("`{}` is not a TCP port (1-65535) in `{server}`", port.trim()))?;
                (rest.trim(), Some(port))
            }
            None => (text, None),
        };
        let (host, instance) = match rest.split_once('\\') {
            Some((host, instance)) if !instance.is_empty() && !instance.contains('\\') => {
                (host, Some(instance.to_string()))
            }
            Some(_) => return Err(format!("`{server}` has an empty or doubled instance name after `\\`")),
            None => (rest, None),
        };
        let host = match host {
            "." | "(local)" | "(localdb)" | "" => "localhost",
            other => other,
        };
        if host.contains(char::is_whitespace) {
            return Err(format!("the host in `{server}` contains a space"));
        }
        Ok(ServerAddress { host: host.to_string(), port, instance })
    }
}

impl std::fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.host)?;
        if let Some(instance) = &self.instance {
            write!(f, "\\{instance}")?;
        }
        if let Some(port) = self.port {
            write!(f, ",{port}")?;
        }
        Ok(())
    }
}

/// Everything the SQL Server store needs to connect.
#[derive(Debug, Clone)]
pub struct SqlServerSettings {
    /// The instance.
    pub server: ServerAddress,
    /// Who connects.
    pub auth: SqlAuth,
    /// Encryption, always explicit.
    pub encrypt: Encrypt,
    /// Accept any server certificate (a self-signed one on a test server). Off by
    /// default; the worker warns when it is on.
    pub trust_server_certificate: bool,
    /// A CA (PEM) to trust for the server's certificate, besides the system's.
    pub ca_file: Option<PathBuf>,
    /// The database for requests that do not come from one (the CLI without
    /// `--database`).
    pub default_database: Option<String>,
    /// How long a statement waits for a lock before failing with 1222
    /// (`SET LOCK_TIMEOUT`); shorter than the worker's request limit.
    pub lock_timeout: Duration,
    /// Connecting, TLS and login together.
    pub connect_timeout: Duration,
    /// One statement's answer.
    pub command_timeout: Duration,
    /// Pooled connections per database.
    pub max_connections: usize,
}

impl SqlServerSettings {
    /// Settings with the defaults for everything but where and how to connect.
    pub fn new(server: ServerAddress, auth: SqlAuth, encrypt: Encrypt) -> SqlServerSettings {
        SqlServerSettings {
            server,
            auth,
            encrypt,
            trust_server_certificate: false,
            ca_file: None,
            default_database: None,
            lock_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(15),
            command_timeout: Duration::from_secs(30),
            max_connections: 8,
        }
    }

    /// The tiberius configuration for a session in `database` (`None`: the login's
    /// default database).
    pub fn tiberius_config(&self, database: Option<&str>) -> Config {
        let mut config = Config::new();
        config.host(&self.server.host);
        match (&self.server.instance, self.server.port) {
            (_, Some(port)) => config.port(port),
            (Some(instance), None) => config.instance_name(instance),
            (None, None) => config.port(1433),
        }
        if let Some(database) = database {
            config.database(database);
        }
        config.application_name(APPLICATION_NAME);
        config.encryption(self.encrypt.level());
        if self.trust_server_certificate {
            config.trust_cert();
        } else if let Some(ca) = &self.ca_file {
            config.trust_cert_ca(ca.display());
        }
        config.authentication(match &self.auth {
            #[cfg(windows)]
            SqlAuth::Integrated => AuthMethod::Integrated,
            // Refused when the configuration is read (`integrated_is_available`);
            // an empty SQL login then fails at the server, never silently works.
            #[cfg(not(windows))]
            SqlAuth::Integrated => AuthMethod::sql_server("", ""),
            SqlAuth::Login { user, password } => AuthMethod::sql_server(user, password.expose_secret()),
        });
        config.handshake_timeout(Some(self.connect_timeout));
        config.command_timeout(Some(self.command_timeout));
        config
    }

    /// `server/database`, as messages name a store.
    pub fn store_name(&self, database: &str) -> String {
        format!("{}/{database}", self.server)
    }
}

/// Whether Windows integrated authentication exists on this platform (it needs
/// SSPI; the Linux build has only SQL Server logins).
pub const INTEGRATED_IS_AVAILABLE: bool = cfg!(windows);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_read_as_sql_server_tools_write_them() {
        let parse = |s| ServerAddress::parse(s).unwrap();
        assert_eq!(parse("sql01"), ServerAddress { host: "sql01".into(), port: None, instance: None });
        assert_eq!(parse("tcp:sql01,14330"), ServerAddress { host: "sql01".into(), port: Some(14330), instance: None });
        assert_eq!(
            parse(r".\SQLEXPRESS"),
            ServerAddress { host: "localhost".into(), port: None, instance: Some("SQLEXPRESS".into()) }
        );
        assert_eq!(parse("(local)").host, "localhost");
        assert_eq!(parse(r"sql01\PROD,1500").to_string(), r"sql01\PROD,1500");
        for bad in ["", "sql01,port", "sql01,0", "sql01,70000", r"sql01\", r"a\b\c", "my host"] {
            assert!(ServerAddress::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(ServerAddress::parse("sql01,x").unwrap_err().contains("`x` is not a TCP port"));
    }

    #[test]
    fn encryption_is_one_of_three_words_and_never_defaults_to_off() {
        assert_eq!(Encrypt::parse("Strict"), Some(Encrypt::Strict));
        assert_eq!(Encrypt::parse("mandatory"), Some(Encrypt::Mandatory));
        assert_eq!(Encrypt::parse("optional"), Some(Encrypt::Optional));
        assert_eq!(Encrypt::parse(""), None);
        assert_eq!(Encrypt::Optional.level(), EncryptionLevel::Off, "optional still encrypts the login");
    }

    #[test]
    fn the_config_names_the_application_and_the_database_and_keeps_the_password_out_of_debug() {
        let settings = SqlServerSettings::new(
            ServerAddress::parse("sql01,1500").unwrap(),
            SqlAuth::Login { user: "slam".into(), password: SecretString::from("s3cr3t-pw") },
            Encrypt::Mandatory,
        );
        let config = settings.tiberius_config(Some("Sales"));
        assert_eq!(config.get_addr(), "sql01:1500");
        assert_eq!(settings.store_name("Sales"), "sql01,1500/Sales");
        assert!(!format!("{settings:?}").contains("s3cr3t-pw"));
        assert_eq!(config.get_command_timeout(), Some(Duration::from_secs(30)));
    }
}
