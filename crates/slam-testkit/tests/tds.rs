//! The fake SQL Server against the real tiberius client, plain and over TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slam_testkit::tds::{
    Column, ColumnType, FakeSqlServer, Handler, Login, Param, Reply, ResultSet, SqlError, Tls, Value,
};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use time::macros::datetime;
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

/// Logs in `slam` (with a password) to any database but `Missing`; answers a few canned
/// batches and echoes `sp_executesql` parameters back as one row.
#[derive(Default)]
struct Echo {
    executed: Mutex<Vec<(u32, String, Vec<Param>)>>,
    disconnected: Mutex<Vec<u32>>,
}

fn column_for(value: &Value) -> ColumnType {
    match value {
        Value::Null | Value::NVarChar(_) => ColumnType::NVarChar,
        Value::Int(_) => ColumnType::BigInt,
        Value::Bit(_) => ColumnType::Bit,
        Value::VarBinary(_) => ColumnType::VarBinaryMax,
        Value::DateTime2(_) => ColumnType::DateTime2,
    }
}

impl Handler for Echo {
    fn login(&self, login: &Login) -> Result<(), SqlError> {
        let user = login.user.as_deref().unwrap_or("");
        if user != "slam" || !login.password_given {
            return Err(SqlError::login_failed(user));
        }
        if login.database == "Missing" {
            return Err(SqlError::cannot_open_database(&login.database));
        }
        Ok(())
    }

    fn batch(&self, _session: u32, sql: &str) -> Vec<Reply> {
        match sql {
            "PRINT 'hello'; SELECT id, name FROM t" => vec![
                Reply::Info("hello".to_owned()),
                Reply::Rows(ResultSet {
                    columns: vec![Column::new("id", ColumnType::Int), Column::new("name", ColumnType::NVarChar)],
                    rows: vec![
                        vec![Value::Int(1), Value::NVarChar("één".to_owned())],
                        vec![Value::Int(2), Value::Null],
                    ],
                }),
            ],
            "UPDATE t SET x = 1" => vec![Reply::Done { rows: Some(3) }],
            "LONG" => vec![Reply::Rows(ResultSet {
                columns: vec![Column::new("s", ColumnType::NVarChar), Column::new("b", ColumnType::VarBinaryMax)],
                rows: vec![vec![Value::NVarChar(long_string()), Value::VarBinary(long_binary())]],
            })],
            "UPDATE locked SET x = 1" => vec![Reply::Info("before".to_owned()), Reply::Error(SqlError::lock_timeout())],
            "PANIC" => panic!("test handler panic"),
            _ => vec![Reply::Done { rows: None }],
        }
    }

    fn execute(&self, session: u32, sql: &str, params: &[Param]) -> Vec<Reply> {
        self.executed.lock().unwrap().push((session, sql.to_owned(), params.to_vec()));
        if sql.starts_with("UPDATE") {
            return self.batch(session, sql);
        }
        let columns =
            params.iter().map(|p| Column::new(p.name.trim_start_matches('@'), column_for(&p.value))).collect();
        let row = params.iter().map(|p| p.value.clone()).collect();
        vec![Reply::Rows(ResultSet { columns, rows: vec![row] })]
    }

    fn disconnect(&self, session: u32) {
        self.disconnected.lock().unwrap().push(session);
    }
}

fn long_string() -> String {
    "ab€d".chars().cycle().take(10_000).collect()
}

fn long_binary() -> Vec<u8> {
    (0..20_000u32).map(|i| (i % 251) as u8).collect()
}

type TestClient = Client<Compat<TcpStream>>;

async fn connect_as(
    fake: &FakeSqlServer,
    user: &str,
    database: &str,
    encryption: EncryptionLevel,
    ca_file: Option<&Path>,
) -> tiberius::Result<TestClient> {
    let mut config = Config::new();
    config.host("localhost");
    config.port(fake.addr().port());
    config.authentication(AuthMethod::sql_server(user, "secret"));
    config.database(database);
    config.application_name("slam-test");
    config.encryption(encryption);
    if let Some(ca) = ca_file {
        // SChannel (Windows, and Wine's) wants revocation data for a CA given as a
        // file, which the test CA has none of: the Windows build trusts the
        // certificate outright instead.
        if cfg!(windows) {
            config.trust_cert();
        } else {
            config.trust_cert_ca(ca.display());
        }
    }
    let tcp = TcpStream::connect(fake.addr()).await?;
    tcp.set_nodelay(true)?;
    Client::connect(config, tcp.compat_write()).await
}

async fn connect(fake: &FakeSqlServer) -> TestClient {
    connect_as(fake, "slam", "slam_db", EncryptionLevel::NotSupported, None).await.unwrap()
}

fn server_error_number(e: &tiberius::error::Error) -> Option<u32> {
    match e {
        tiberius::error::Error::Server(token) => Some(token.code()),
        _ => None,
    }
}

#[tokio::test]
async fn plain_login_is_recorded_and_batch_reads_rows() {
    let handler = Arc::new(Echo::default());
    let fake = FakeSqlServer::start(handler.clone(), Tls::None).unwrap();
    assert!(fake.ca_pem().is_none());
    let mut client = connect(&fake).await;

    let logins = fake.logins();
    assert_eq!(logins.len(), 1);
    let login = &logins[0];
    assert_eq!(login.user.as_deref(), Some("slam"));
    assert!(login.password_given && !login.integrated && !login.encrypted);
    assert_eq!((login.database.as_str(), login.app_name.as_str()), ("slam_db", "slam-test"));
    assert!(!format!("{login:?}").contains("secret"));

    let rows =
        client.simple_query("PRINT 'hello'; SELECT id, name FROM t").await.unwrap().into_first_result().await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<i32, _>("id"), Some(1));
    assert_eq!(rows[0].get::<&str, _>("name"), Some("één"));
    assert_eq!(rows[1].get::<&str, _>(1), None);

    let done = client.execute("UPDATE t SET x = 1", &[]).await.unwrap();
    assert_eq!(done.rows_affected(), &[3]);

    let session = login.session;
    drop(client);
    assert!(fake.wait_for_connections_open(0, Duration::from_secs(2)));
    assert_eq!(*handler.disconnected.lock().unwrap(), vec![session]);
}

#[tokio::test]
async fn tls_login_with_trusted_ca_and_refusal_without_it() {
    let fake = FakeSqlServer::start(Arc::new(Echo::default()), Tls::Required).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = fake.write_ca_file(dir.path()).unwrap();
    assert!(fake.ca_pem().unwrap().contains("BEGIN CERTIFICATE"));

    for level in [EncryptionLevel::Required, EncryptionLevel::On, EncryptionLevel::Off] {
        let mut client = connect_as(&fake, "slam", "slam_db", level, Some(&ca_file)).await.unwrap();
        let rows = client.query("SELECT @P1", &[&"over tls"]).await.unwrap().into_first_result().await.unwrap();
        assert_eq!(rows[0].get::<&str, _>(0), Some("over tls"));
    }
    assert!(fake.logins().iter().all(|l| l.encrypted));

    // Not trusting the test CA: the TLS handshake fails.
    let untrusted = connect_as(&fake, "slam", "slam_db", EncryptionLevel::Required, None).await;
    let err = untrusted.expect_err("connected without trusting the test CA");
    assert!(matches!(err, tiberius::error::Error::Tls(_)), "{err:?}");
    // A client that cannot encrypt is turned away.
    assert!(connect_as(&fake, "slam", "slam_db", EncryptionLevel::NotSupported, None).await.is_err());
    // And a plain server refuses a client that requires TLS.
    let plain = FakeSqlServer::start(Arc::new(Echo::default()), Tls::None).unwrap();
    assert!(connect_as(&plain, "slam", "slam_db", EncryptionLevel::Required, Some(&ca_file)).await.is_err());
}

#[tokio::test]
async fn refused_logins_surface_server_errors() {
    let fake = FakeSqlServer::start(Arc::new(Echo::default()), Tls::None).unwrap();
    let err = connect_as(&fake, "mallory", "slam_db", EncryptionLevel::NotSupported, None).await.unwrap_err();
    assert_eq!(server_error_number(&err), Some(18456), "{err:?}");
    assert!(err.to_string().contains("Login failed for user 'mallory'."), "{err}");
    let err = connect_as(&fake, "slam", "Missing", EncryptionLevel::NotSupported, None).await.unwrap_err();
    assert_eq!(server_error_number(&err), Some(4060), "{err:?}");
    assert_eq!(fake.logins().len(), 2);
    assert!(fake.wait_for_connections_open(0, Duration::from_secs(2)));
}

#[tokio::test]
async fn sp_executesql_parameters_round_trip() {
    let handler = Arc::new(Echo::default());
    let fake = FakeSqlServer::start(handler.clone(), Tls::None).unwrap();
    let mut client = connect(&fake).await;
    let when = datetime!(2025-03-04 05:06:07.089);
    let none: Option<String> = None;
    let bytes = vec![1u8, 2, 3];
    let rows = client
        .query("SELECT @P1, @P2, @P3, @P4, @P5, @P6, @P7", &[&"x", &5i64, &true, &none, &bytes, &when, &7i32])
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let row = &rows[0];
    assert_eq!(row.get::<&str, _>(0), Some("x"));
    assert_eq!(row.get::<i64, _>(1), Some(5));
    assert_eq!(row.get::<bool, _>(2), Some(true));
    assert_eq!(row.get::<&str, _>(3), None);
    assert_eq!(row.get::<&[u8], _>(4), Some(&[1u8, 2, 3][..]));
    assert_eq!(row.get::<time::PrimitiveDateTime, _>(5), Some(when));
    assert_eq!(row.get::<i64, _>(6), Some(7));

    let executed = handler.executed.lock().unwrap().clone();
    let (_, sql, params) = &executed[0];
    assert_eq!(sql, "SELECT @P1, @P2, @P3, @P4, @P5, @P6, @P7");
    let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["@P1", "@P2", "@P3", "@P4", "@P5", "@P6", "@P7"]);
    assert_eq!(params[3].value, Value::Null);
    assert_eq!(params[5].value, Value::DateTime2(when));
    assert_eq!(params[6].value, Value::Int(7));

    // execute() counts the DONEINPROC.
    let result = client.execute("UPDATE t SET x = 1", &[&1i32]).await.unwrap();
    assert_eq!(result.rows_affected(), &[3]);
}

#[tokio::test]
async fn long_values_both_ways() {
    let fake = FakeSqlServer::start(Arc::new(Echo::default()), Tls::None).unwrap();
    let mut client = connect(&fake).await;

    // Server to client: PLP values spanning several packets.
    let row = client.simple_query("LONG").await.unwrap().into_row().await.unwrap().unwrap();
    assert_eq!(row.get::<&str, _>(0), Some(long_string().as_str()));
    assert_eq!(row.get::<&[u8], _>(1), Some(long_binary().as_slice()));

    // Client to server: a 10 000-character nvarchar(max) parameter, in several packets.
    let text = long_string();
    let row = client.query("SELECT @P1", &[&text.as_str()]).await.unwrap().into_row().await.unwrap().unwrap();
    assert_eq!(row.get::<&str, _>(0), Some(text.as_str()));

    // Binary parameters: sized up to 8000 bytes, varbinary(max) PLP beyond.
    for len in [8000, 20_000] {
        let bytes: Vec<u8> = long_binary()[..len].to_vec();
        let row = client.query("SELECT @P1", &[&bytes]).await.unwrap().into_row().await.unwrap().unwrap();
        assert_eq!(row.get::<&[u8], _>(0), Some(bytes.as_slice()));
    }
}

#[tokio::test]
async fn statement_error_surfaces_with_its_number() {
    let fake = FakeSqlServer::start(Arc::new(Echo::default()), Tls::None).unwrap();
    let mut client = connect(&fake).await;
    let err = client.execute("UPDATE locked SET x = 1", &[]).await.unwrap_err();
    assert_eq!(server_error_number(&err), Some(1222), "{err:?}");
    let err = match client.simple_query("UPDATE locked SET x = 1").await {
        Ok(stream) => stream.into_results().await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(server_error_number(&err), Some(1222), "{err:?}");
    // Still usable.
    assert_eq!(client.execute("UPDATE t SET x = 1", &[]).await.unwrap().rows_affected(), &[3]);
}

#[tokio::test]
async fn transactions_and_cancel() {
    let fake = FakeSqlServer::start(Arc::new(Echo::default()), Tls::None).unwrap();
    let mut client = connect(&fake).await;
    client.begin_transaction().await.unwrap();
    client.execute("UPDATE t SET x = 1", &[]).await.unwrap();
    client.commit_transaction().await.unwrap();
    client.begin_transaction().await.unwrap();
    client.rollback_transaction().await.unwrap();
    client.cancel_query().await.unwrap();
    assert_eq!(client.execute("UPDATE t SET x = 1", &[]).await.unwrap().rows_affected(), &[3]);
}

#[tokio::test]
async fn pooled_connections_are_counted() {
    let fake = FakeSqlServer::start(Arc::new(Echo::default()), Tls::None).unwrap();
    let a = connect(&fake).await;
    let b = connect(&fake).await;
    assert_eq!(fake.connections_open(), 2);
    drop(a);
    assert!(fake.wait_for_connections_open(1, Duration::from_secs(2)));
    b.close().await.unwrap();
    assert!(fake.wait_for_connections_open(0, Duration::from_secs(2)));
    let sessions: Vec<u32> = fake.logins().iter().map(|l| l.session).collect();
    assert_eq!(sessions.len(), 2);
    assert_ne!(sessions[0], sessions[1]);
}

#[tokio::test]
async fn handler_panic_is_answered_and_reported_on_drop() {
    let fake = FakeSqlServer::start(Arc::new(Echo::default()), Tls::None).unwrap();
    let mut client = connect(&fake).await;
    let err = match client.simple_query("PANIC").await {
        Ok(stream) => stream.into_results().await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(server_error_number(&err), Some(50000), "{err:?}");
    assert!(err.to_string().contains("fake handler panicked"), "{err}");
    drop(client);
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(fake)));
    let message = dropped.unwrap_err();
    let message = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("test handler panic"), "{message}");
}

#[tokio::test]
async fn garbage_is_refused_without_harming_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let fake = FakeSqlServer::start(Arc::new(Echo::default()), Tls::None).unwrap();
    // A SQL batch before PRELOGIN: the fake hangs up, like SQL Server.
    let mut raw = TcpStream::connect(fake.addr()).await.unwrap();
    raw.write_all(&[0x01, 0x01, 0x00, 0x0A, 0x00, 0x00, 0x01, 0x00, b'h', 0]).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), raw.read_to_end(&mut buf)).await.unwrap();
    assert!(read.is_err() || buf.is_empty(), "{buf:?}");
    drop(raw);
    // A well-behaved client is still served.
    let mut client = connect(&fake).await;
    let row = client.query("SELECT @P1", &[&"fine"]).await.unwrap().into_row().await.unwrap().unwrap();
    assert_eq!(row.get::<&str, _>(0), Some("fine"));
    assert!(fake.wait_for_connections_open(1, Duration::from_secs(2)));
}
