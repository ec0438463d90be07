//! The one catalogue of SLAM operations: each operation's name, its T-SQL procedure,
//! its parameters (name, type, default, required or not, secret or not, one-line
//! description), whether it changes state, and which parameters name the locks it
//! must hold in the worker.
//!
//! Everything that names an operation or a parameter reads this table: the
//! worker's dispatch parses a request against it (unknown names, types, defaults),
//! the worker's locks come from it, the CLI's flags are checked against it and take
//! their help text and defaults from it, `SLAM_help`'s rows and the operation table
//! in `docs/protocol.md` are generated from it, and the T-SQL contract test compares
//! `sql/slam-install.sql` with it. A new parameter is one edit here.

/// The SQL type of a parameter, as the T-SQL procedure declares it and as it
/// travels in a request's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Text, at most `max_chars` UTF-16 code units (as NVARCHAR counts); a JSON
    /// string. The T-SQL procedure declares it wider (see [`ParamType::sql`]).
    Text {
        /// The longest value accepted, in characters.
        max_chars: u32,
    },
    /// `INT`; a JSON number.
    Int,
    /// `BIT`; JSON `true`/`false` (or `0`/`1`).
    Bit,
}

impl ParamType {
    /// The T-SQL type a procedure declares. Text is always `NVARCHAR(4000)`, wider
    /// than any limit: SQL Server silently truncates a value longer than a
    /// parameter's declared length, which would turn a 70-character key name into
    /// a different, valid 64-character one. Declared wide, the whole value reaches
    /// dispatch, which refuses it by name and limit.
    pub fn sql(self) -> String {
        match self {
            Self::Text { .. } => format!("NVARCHAR({SQL_TEXT_CHARS})"),
            Self::Int => "INT".to_string(),
            Self::Bit => "BIT".to_string(),
        }
    }
}

/// What a parameter is when the caller leaves it out (or passes NULL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamDefault {
    /// The caller must give a value; the T-SQL procedure declares no default.
    Required,
    /// NULL; the operation decides what NULL means (and the description says).
    Null,
    /// A text default, e.g. `'login'`.
    Text(&'static str),
    /// An integer default, e.g. `365`.
    Int(i64),
    /// A bit default.
    Bit(bool),
}

impl ParamDefault {
    /// The default as a T-SQL literal (`NULL`, `N'login'`, `365`, `0`); `None` when
    /// the parameter is required.
    pub fn sql(self) -> Option<String> {
        match self {
            Self::Required => None,
            Self::Null => Some("NULL".to_string()),
            Self::Text(text) => Some(format!("N'{}'", text.replace('\'', "''"))),
            Self::Int(n) => Some(n.to_string()),
            Self::Bit(b) => Some(if b { "1" } else { "0" }.to_string()),
        }
    }

    /// The default as the JSON value dispatch substitutes for an absent argument;
    /// `None` for `Required` and `Null`.
    pub fn json(self) -> Option<serde_json::Value> {
        match self {
            Self::Required | Self::Null => None,
            Self::Text(text) => Some(serde_json::Value::from(text)),
            Self::Int(n) => Some(serde_json::Value::from(n)),
            Self::Bit(b) => Some(serde_json::Value::from(b)),
        }
    }
}

/// Which lock in the worker a parameter's value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// A keypair, by `key_name`: two operations on one keypair run one at a time.
    Key,
    /// A Salesforce username: two operations on one connection run one at a time.
    User,
}

impl LockKind {
    /// The prefix of the lock's name (`key:acme-prod`, `user:etl@acme.com`).
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Key => "key:",
            Self::User => "user:",
        }
    }
}

/// One parameter of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// The T-SQL parameter name without `@`; the request's argument name.
    pub name: &'static str,
    /// Its type.
    pub ty: ParamType,
    /// Its default.
    pub default: ParamDefault,
    /// A password, token or passphrase: never logged, echoed or returned.
    pub secret: bool,
    /// The lock its value names, if any.
    pub lock: Option<LockKind>,
    /// One line for `SLAM_help` and `--help`.
    pub description: &'static str,
}

impl Param {
    /// The T-SQL name, with `@`.
    pub fn sql_name(&self) -> String {
        format!("@{}", self.name)
    }
}

/// One operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The request's `operation`, e.g. `setup_jwt`.
    pub name: &'static str,
    /// The T-SQL procedure, e.g. `SLAM_setup_jwt`; `None` for operations only the
    /// CLI offers.
    pub procedure: Option<&'static str>,
    /// Whether it writes anything (keys, the store, the log). T-SQL procedures that
    /// do refuse to run inside an open transaction; read-only ones stay usable with
    /// `INSERT ... EXEC`.
    pub changes_state: bool,
    /// One line for `SLAM_help` and `--help`.
    pub description: &'static str,
    /// Its parameters, in the T-SQL procedure's order.
    pub params: &'static [Param],
}

impl Operation {
    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&'static Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The CLI subcommand: the name with `-` for `_` (`setup-jwt`).
    pub fn cli_name(&self) -> String {
        self.name.replace('_', "-")
    }
}

/// The operation called `name`.
pub fn operation(name: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|op| op.name == name)
}

const fn text(max_chars: u32) -> ParamType {
    ParamType::Text { max_chars }
}

const fn param(name: &'static str, ty: ParamType, default: ParamDefault, description: &'static str) -> Param {
    Param { name, ty, default, secret: false, lock: None, description }
}

const fn secret(name: &'static str, description: &'static str) -> Param {
    Param { name, ty: text(256), default: ParamDefault::Null, secret: true, lock: None, description }
}

const fn locks(mut p: Param, kind: LockKind) -> Param {
    p.lock = Some(kind);
    p
}

/// The declared length of every text parameter of the T-SQL procedures.
pub const SQL_TEXT_CHARS: u32 = 4000;

/// The longest keypair name (it becomes a file name).
pub const KEY_NAME_CHARS: u32 = 64;
/// The longest Salesforce username SLAM accepts (Salesforce's own limit is 80).
pub const USERNAME_CHARS: u32 = 255;

const KEY_NAME: Param = locks(
    param(
        "key_name",
        text(KEY_NAME_CHARS),
        ParamDefault::Null,
        "Name of the keypair, e.g. 'acme-prod' (files {key_name}.pem and {key_name}.crt); left out, this machine's host name",
    ),
    LockKind::Key,
);

const USERNAME: Param = locks(
    param("username", text(USERNAME_CHARS), ParamDefault::Required, "Salesforce username of a stored connection"),
    LockKind::User,
);

/// The parameters of a connection, shared by `test_login` and `add_connection`.
const CONNECTION: [Param; 9] = [
    locks(param("username", text(USERNAME_CHARS), ParamDefault::Required, "Salesforce username"), LockKind::User),
    param(
        "auth_method",
        text(32),
        ParamDefault::Text("security_token"),
        "'jwt_bearer' (recommended) or 'security_token' (SOAP login(), retired in Summer '27)",
    ),
    param(
        "consumer_key",
        text(256),
        ParamDefault::Null,
        "Consumer Key (Client ID) of the External Client App; required for jwt_bearer",
    ),
    locks(
        param(
            "key_name",
            text(KEY_NAME_CHARS),
            ParamDefault::Null,
            "Keypair made by SLAM_setup_jwt; required for jwt_bearer",
        ),
        LockKind::Key,
    ),
    secret("key_password", "Passphrase of the keypair; required when it was made with @password"),
    secret("password", "Salesforce password; required for security_token"),
    secret("token", "Salesforce security token; required for security_token"),
    param(
        "domain",
        text(255),
        ParamDefault::Text("login"),
        "'login', 'test' (sandboxes) or a My Domain such as 'acme.my' or 'acme--partial.sandbox.my'",
    ),
    param("api_version", ParamType::Int, ParamDefault::Int(60), "Salesforce API version used for this connection"),
];

const ADD_CONNECTION: [Param; 11] = [
    CONNECTION[0],
    CONNECTION[1],
    CONNECTION[2],
    CONNECTION[3],
    CONNECTION[4],
    CONNECTION[5],
    CONNECTION[6],
    CONNECTION[7],
    param("environment_name", text(128), ParamDefault::Null, "Optional alias for this environment, e.g. 'Acme prod'"),
    CONNECTION[8],
    param("skip_test", ParamType::Bit, ParamDefault::Bit(false), "Store the connection without testing it"),
];

/// Every operation, in the order `SLAM_help` lists them.
pub static OPERATIONS: &[Operation] = &[
    Operation {
        name: "setup_jwt",
        procedure: Some("SLAM_setup_jwt"),
        changes_state: true,
        description: "Generates a JWT keypair: a private key (.pem) and a self-signed certificate (.crt) to upload to the External Client App",
        params: &[
            KEY_NAME,
            secret(
                "password",
                "Passphrase that encrypts the private key (strongly recommended; not your Salesforce password)",
            ),
            param("cert_days", ParamType::Int, ParamDefault::Int(365), "Days until the certificate expires"),
            param(
                "force",
                ParamType::Bit,
                ParamDefault::Bit(false),
                "Replace a keypair whose certificate is still valid",
            ),
        ],
    },
    Operation {
        name: "remove_jwt",
        procedure: Some("SLAM_remove_jwt"),
        changes_state: true,
        description: "Deletes a keypair's files from this machine (does not revoke access in Salesforce)",
        params: &[locks(
            param("key_name", text(KEY_NAME_CHARS), ParamDefault::Required, "Name of the keypair to remove"),
            LockKind::Key,
        )],
    },
    Operation {
        name: "list_keys",
        procedure: Some("SLAM_list_keys"),
        changes_state: false,
        description: "Lists the keypairs on this machine with their certificates' expiry and fingerprints",
        params: &[],
    },
    Operation {
        name: "add_connection",
        procedure: Some("SLAM_add_connection"),
        changes_state: true,
        description: "Validates, tests, stores (secrets sealed) and activates a Salesforce connection",
        params: &ADD_CONNECTION,
    },
    Operation {
        name: "list_connections",
        procedure: Some("SLAM_list_connections"),
        changes_state: false,
        description: "Lists the stored connections (never their secrets)",
        params: &[],
    },
    Operation {
        name: "use_connection_username",
        procedure: Some("SLAM_use_connection_username"),
        changes_state: true,
        description: "Makes a stored connection the active one (SLAM_Settings.Username)",
        params: &[USERNAME],
    },
    Operation {
        name: "test_connection",
        procedure: Some("SLAM_test_connection"),
        changes_state: true,
        description: "Logs in with a stored connection to confirm it still works, and records the result",
        params: &[USERNAME],
    },
    Operation {
        name: "remove_connection",
        procedure: Some("SLAM_remove_connection"),
        changes_state: true,
        description: "Deletes a stored connection",
        params: &[USERNAME],
    },
    Operation {
        name: "ping",
        procedure: Some("SLAM_ping"),
        changes_state: false,
        description: "Checks that the SLAM worker answers: its version, uptime and cached sessions",
        params: &[],
    },
    Operation {
        name: "test_login",
        procedure: None,
        changes_state: false,
        description: "Logs in with connection parameters and runs the connection test; stores nothing",
        params: &CONNECTION,
    },
    Operation {
        name: "settings",
        procedure: None,
        changes_state: false,
        description: "Shows SLAM_Settings: the active connection",
        params: &[],
    },
];

/// The catalogue as the Markdown table `docs/protocol.md` shows between its
/// `catalogue` markers (a test keeps the file equal to this).
pub fn markdown() -> String {
    let mut out = String::from(
        "| operation | T-SQL procedure | parameter | type | default | notes |\n|---|---|---|---|---|---|\n",
    );
    for op in OPERATIONS {
        let procedure = op.procedure.map_or("(CLI only)".to_string(), |p| format!("`{p}`"));
        let state = if op.changes_state { "changes state" } else { "read-only" };
        out.push_str(&format!("| `{}` | {procedure} | | | | {}; {state} |\n", op.name, op.description));
        for p in op.params {
            let ty = match p.ty {
                ParamType::Text { max_chars } => format!("text ≤ {max_chars}"),
                ParamType::Int => "int".to_string(),
                ParamType::Bit => "bit".to_string(),
            };
            let default = p.default.sql().map_or("required".to_string(), |d| format!("`{d}`"));
            let secret = if p.secret { "**secret**; " } else { "" };
            out.push_str(&format!("| | | `@{}` | {ty} | {default} | {secret}{} |\n", p.name, p.description));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_shaped_for_tsql() {
        let mut seen = std::collections::BTreeSet::new();
        for op in OPERATIONS {
            assert!(seen.insert(op.name), "{} twice", op.name);
            if let Some(procedure) = op.procedure {
                assert_eq!(procedure, format!("SLAM_{}", op.name), "procedure names follow the operation's");
            }
            let mut params = std::collections::BTreeSet::new();
            for p in op.params {
                assert!(params.insert(p.name), "{}: @{} twice", op.name, p.name);
                assert!(p.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", p.name);
                assert!(!p.description.is_empty() && !p.description.ends_with('.'), "{}", p.name);
                if let ParamType::Text { max_chars } = p.ty {
                    assert!(max_chars <= SQL_TEXT_CHARS, "{}: T-SQL would truncate before SLAM could refuse", p.name);
                }
                if p.secret {
                    assert_eq!(p.default, ParamDefault::Null, "a secret has no default");
                    assert!(p.lock.is_none(), "a secret never names a lock (lock names are logged)");
                }
            }
        }
    }

    #[test]
    fn defaults_are_the_specs() {
        let add = operation("add_connection").unwrap();
        assert_eq!(add.param("auth_method").unwrap().default, ParamDefault::Text("security_token"));
        assert_eq!(add.param("domain").unwrap().default.sql().unwrap(), "N'login'");
        assert_eq!(add.param("api_version").unwrap().default.json().unwrap(), serde_json::json!(60));
        assert_eq!(add.param("skip_test").unwrap().default.sql().unwrap(), "0");
        assert_eq!(add.param("username").unwrap().default.sql(), None);
        let setup = operation("setup_jwt").unwrap();
        assert_eq!(setup.param("cert_days").unwrap().default, ParamDefault::Int(365));
        assert_eq!(setup.param("key_name").unwrap().ty, ParamType::Text { max_chars: 64 });
        assert_eq!(setup.param("key_name").unwrap().ty.sql(), "NVARCHAR(4000)");
        assert!(setup.param("password").unwrap().secret);
        assert!(operation("drop_database").is_none());
        assert_eq!(ParamDefault::Text("it's").sql().unwrap(), "N'it''s'");
    }

    /// `docs/protocol.md` shows the catalogue as generated; `SLAM_BLESS=1 cargo test`
    /// rewrites it after a change.
    #[test]
    fn the_protocol_docs_show_the_catalogue() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (begin, end) = ("<!-- catalogue: begin (generated) -->\n", "<!-- catalogue: end -->");
        let start = doc.find(begin).expect("begin marker") + begin.len();
        let stop = doc.find(end).expect("end marker");
        if doc[start..stop] != markdown() {
            if std::env::var_os("SLAM_BLESS").is_some() {
                std::fs::write(&path, format!("{}{}{}", &doc[..start], markdown(), &doc[stop..])).unwrap();
            } else {
                panic!("docs/protocol.md's catalogue table is stale: run `SLAM_BLESS=1 cargo test -p slam-protocol`");
            }
        }
    }

    #[test]
    fn test_login_takes_add_connections_connection_parameters() {
        let add = operation("add_connection").unwrap();
        for p in operation("test_login").unwrap().params {
            assert_eq!(add.param(p.name), Some(p), "@{} differs", p.name);
        }
    }
}
