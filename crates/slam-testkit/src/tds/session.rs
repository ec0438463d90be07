//! The accept loop and one connection's life: PRELOGIN, optional TLS, LOGIN7, then requests
//! until the client leaves. Handler calls run on tokio's blocking pool, so a slow handler
//! does not stall other connections and a panic is caught as a `JoinError`.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use super::packet::{self, DEFAULT_PACKET_SIZE, Io, Message, PreloginFraming, kind};
use super::prelogin::{self, encrypt};
use super::request::{self, TmRequest};
use super::tokens::{self, Answering, Tokens, status};
use super::{Handler, Login, Reply, Shared, SqlError, login};

/// Everything a connection needs.
pub(crate) struct ServerCtx {
    pub handler: Arc<dyn Handler>,
    pub acceptor: Option<TlsAcceptor>,
    pub shared: Arc<Shared>,
}

/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the accept loop until `shutdown` fires.
pub(crate) async fn serve(listener: std::net::TcpListener, ctx: Arc<ServerCtx>, mut shutdown: oneshot::Receiver<()>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            ctx.shared.record_problem(format!("could not start listening: {e}"));
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((tcp, _peer)) = accepted else { continue };
                tokio::spawn(connection(tcp, ctx.clone()));
            }
        }
    }
}

/// One connection, from accept to close.
async fn connection(tcp: TcpStream, ctx: Arc<ServerCtx>) {
    let open = ctx.shared.open_connection();
    let session = ctx.shared.next_session();
    let mut conn = Connection { ctx: ctx.clone(), session, packet_size: DEFAULT_PACKET_SIZE, logged_in: false };
    if let Err(e) = conn.run(tcp).await
        && !matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
        )
    {
        eprintln!("fake SQL Server: session {session}: {e}");
    }
    if conn.logged_in {
        let handler = ctx.handler.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || handler.disconnect(session)).await {
            ctx.shared.record_problem(format!("handler panicked in disconnect({session}): {}", panic_message(e)));
        }
    }
    // Only now: once the count drops, the handler has seen the disconnect.
    drop(open);
}

struct Connection {
    ctx: Arc<ServerCtx>,
    session: u32,
    packet_size: usize,
    /// The handler saw this session's LOGIN7 (so it gets `disconnect`).
    logged_in: bool,
}

impl Connection {
    fn spid(&self) -> u16 {
        u16::try_from(self.session).unwrap_or(u16::MAX)
    }

    async fn send(&self, io: &mut Box<dyn Io>, kind: u8, payload: &[u8]) -> io::Result<()> {
        packet::write_message(io, kind, payload, self.packet_size, self.spid()).await
    }

    async fn run(&mut self, tcp: TcpStream) -> io::Result<()> {
        let _ = tcp.set_nodelay(true);
        let mut tcp = tcp;
        // PRELOGIN, read straight off the socket so no TLS byte is consumed early.
        let Some(first) = packet::read_message(&mut tcp, DEFAULT_PACKET_SIZE).await? else { return Ok(()) };
        if first.kind != kind::PRELOGIN {
            return Err(packet::invalid(format!("first message has type 0x{:02X}, not PRELOGIN", first.kind)));
        }
        let client = prelogin::parse(&first.payload).map_err(packet::invalid)?;
        let (answer, use_tls) = match (&self.ctx.acceptor, client.encryption) {
            (None, _) => (encrypt::NOT_SUP, false),
            (Some(_), encrypt::OFF) => (encrypt::REQ, true),
            (Some(_), encrypt::NOT_SUP) => (encrypt::REQ, false),
            (Some(_), _) => (encrypt::ON, true),
        };
        packet::write_message(&mut tcp, kind::TABULAR_RESULT, &prelogin::response(answer), DEFAULT_PACKET_SIZE, 0)
            .await?;
        if answer == encrypt::REQ && !use_tls {
            // SQL Server terminates a client that cannot encrypt when encryption is required.
            return Ok(());
        }

        let mut io: Box<dyn Io> = match (&self.ctx.acceptor, use_tls) {
            (Some(acceptor), true) => {
                let handshake = acceptor.accept(PreloginFraming::new(tcp));
                let mut tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
                tls.get_mut().0.handshake_done();
                Box::new(tls)
            }
            _ => Box::new(tcp),
        };

        // LOGIN7.
        let Some(message) = packet::read_message(&mut io, DEFAULT_PACKET_SIZE).await? else { return Ok(()) };
        if message.kind != kind::LOGIN7 {
            // E.g. a client starting TLS that the fake did not offer: SQL Server hangs up.
            return Err(packet::invalid(format!("expected LOGIN7, got a 0x{:02X} message", message.kind)));
        }
        let parsed = match login::parse(&message.payload) {
            Ok(p) => p,
            Err(e) => {
                let answer = tokens::error_answer(&request::protocol_error(&e));
                return self.send(&mut io, kind::TABULAR_RESULT, &answer).await;
            }
        };
        let record = Login {
            session: self.session,
            user: Some(parsed.user.clone()).filter(|u| !u.is_empty()),
            password_given: parsed.password_given,
            integrated: parsed.integrated,
            database: parsed.database.clone(),
            app_name: parsed.app_name.clone(),
            host_name: parsed.host_name.clone(),
            encrypted: use_tls,
        };
        self.ctx.shared.record_login(record.clone());
        self.logged_in = true;
        if parsed.integrated {
            let e = SqlError::new(
                18452,
                14,
                "Login failed. The login is from an untrusted domain and cannot be used with Integrated \
                 authentication.",
            );
            return self.send(&mut io, kind::TABULAR_RESULT, &tokens::error_answer(&e)).await;
        }
        let handler = self.ctx.handler.clone();
        let decision = match tokio::task::spawn_blocking(move || handler.login(&record)).await {
            Ok(decision) => decision,
            Err(e) => {
                self.ctx.shared.record_problem(format!("handler panicked in login: {}", panic_message(e)));
                Err(handler_panicked())
            }
        };
        if let Err(e) = decision {
            return self.send(&mut io, kind::TABULAR_RESULT, &tokens::error_answer(&e)).await;
        }
        let packet_size = match parsed.packet_size {
            0 => 4096,
            n => n.clamp(512, 32767),
        };
        let database = if parsed.database.is_empty() { "master" } else { parsed.database.as_str() };
        let answer = tokens::login_success(database, parsed.tds_version, packet_size);
        self.send(&mut io, kind::TABULAR_RESULT, &answer).await?;
        self.packet_size = usize::try_from(packet_size).unwrap_or(DEFAULT_PACKET_SIZE);

        let mut transaction: u64 = 0;
        loop {
            let Some(message) = packet::read_message(&mut io, self.packet_size).await? else { return Ok(()) };
            if message.ignore {
                continue;
            }
            let answer = self.answer(message, &mut transaction).await;
            self.send(&mut io, kind::TABULAR_RESULT, &answer).await?;
        }
    }

    /// The tokens answering one request.
    async fn answer(&self, message: Message, transaction: &mut u64) -> Vec<u8> {
        let session = self.session;
        let handler = self.ctx.handler.clone();
        match message.kind {
            kind::SQL_BATCH => match request::parse_batch(&message.payload) {
                Ok(sql) => self.call("batch", Answering::Batch, move || handler.batch(session, &sql)).await,
                Err(e) => self.refuse(e),
            },
            kind::RPC => match request::parse_rpc(&message.payload) {
                Ok((sql, params)) => {
                    self.call("execute", Answering::Rpc, move || handler.execute(session, &sql, &params)).await
                }
                Err(e) => self.refuse(e),
            },
            kind::ATTENTION => {
                // Requests are answered in full before the next is read, so there is nothing
                // left to cancel: acknowledge.
                let mut t = Tokens::new();
                t.done(tokens::DONE, status::ATTN, 0, 0);
                t.buf
            }
            kind::TRANSACTION_MANAGER => match request::parse_tm(&message.payload) {
                Ok(tm) => self.transaction(tm, transaction).await,
                Err(e) => self.refuse(e),
            },
            other => self.refuse(request::protocol_error(&format!("unexpected message type 0x{other:02X}"))),
        }
    }

    fn refuse(&self, e: SqlError) -> Vec<u8> {
        eprintln!("fake SQL Server: session {}: answering {e}", self.session);
        tokens::error_answer(&e)
    }

    /// Runs a handler call off the runtime and renders its replies.
    async fn call(&self, what: &str, mode: Answering, f: impl FnOnce() -> Vec<Reply> + Send + 'static) -> Vec<u8> {
        let replies = match tokio::task::spawn_blocking(f).await {
            Ok(replies) => replies,
            Err(e) => {
                self.ctx.shared.record_problem(format!("handler panicked in {what}: {}", panic_message(e)));
                return tokens::error_answer(&handler_panicked());
            }
        };
        match tokens::render(&replies, mode) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.ctx.shared.record_problem(format!("handler answered {what} with an unencodable reply: {e}"));
                tokens::error_answer(&SqlError::new(50000, 16, format!("fake handler answered badly: {e}")))
            }
        }
    }

    /// A transaction-manager request: the handler sees it as T-SQL; unless it answers an
    /// error, the ENVCHANGE SQL Server sends for the transaction goes first.
    async fn transaction(&self, tm: TmRequest, transaction: &mut u64) -> Vec<u8> {
        let sql = tm.sql();
        let session = self.session;
        let handler = self.ctx.handler.clone();
        let replies = match tokio::task::spawn_blocking(move || handler.batch(session, &sql)).await {
            Ok(replies) => replies,
            Err(e) => {
                self.ctx.shared.record_problem(format!("handler panicked in batch: {}", panic_message(e)));
                return tokens::error_answer(&handler_panicked());
            }
        };
        let failed = replies.iter().any(|r| matches!(r, Reply::Error(_)));
        let mut t = Tokens::new();
        if !failed {
            let current = transaction.to_le_bytes();
            match tm {
                TmRequest::Begin { .. } => {
                    // A fresh descriptor: session id and a counter, never zero.
                    let next = (u64::from(session) << 32) | ((*transaction & 0xFFFF_FFFF) + 1);
                    *transaction = next;
                    t.env_change_bytes(8, &next.to_le_bytes(), &[]);
                }
                TmRequest::Commit { .. } if *transaction != 0 => {
                    t.env_change_bytes(9, &[], &current);
                    *transaction = 0;
                }
                TmRequest::Rollback { .. } if *transaction != 0 => {
                    t.env_change_bytes(10, &[], &current);
                    *transaction = 0;
                }
                _ => {}
            }
        }
        match tokens::render(&replies, Answering::Batch) {
            Ok(bytes) => {
                t.buf.extend(bytes);
                t.buf
            }
            Err(e) => {
                self.ctx.shared.record_problem(format!("handler answered a transaction request badly: {e}"));
                tokens::error_answer(&SqlError::new(50000, 16, format!("fake handler answered badly: {e}")))
            }
        }
    }
}

fn handler_panicked() -> SqlError {
    SqlError::new(50000, 16, "fake handler panicked")
}

fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return "the handler call was cancelled".to_owned();
    }
    let payload = e.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
