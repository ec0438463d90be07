//! Response tokens (MS-TDS 2.2.7) and how a handler's [`Reply`] list becomes a token stream
//! the way SQL Server orders them, for a batch and for `sp_executesql`.

use super::login::TDS_74;
use super::prelogin::SERVER_VERSION;
use super::request::days_since_year_one;
use super::wire::{put_b_varchar, put_us_varchar};
use super::{Column, ColumnType, Reply, SqlError, Value};

/// The server name in ERROR/INFO tokens.
pub(crate) const SERVER_NAME: &str = "FAKESQL";

const RETURNSTATUS: u8 = 0x79;
const COLMETADATA: u8 = 0x81;
const ERROR: u8 = 0xAA;
const INFO: u8 = 0xAB;
const LOGINACK: u8 = 0xAD;
const ROW: u8 = 0xD1;
const ENVCHANGE: u8 = 0xE3;
pub(crate) const DONE: u8 = 0xFD;
pub(crate) const DONEPROC: u8 = 0xFE;
pub(crate) const DONEINPROC: u8 = 0xFF;

/// DONE status bits.
pub(crate) mod status {
    pub(crate) const FINAL: u16 = 0x00;
    pub(crate) const MORE: u16 = 0x01;
    pub(crate) const ERROR: u16 = 0x02;
    pub(crate) const COUNT: u16 = 0x10;
    pub(crate) const ATTN: u16 = 0x20;
}

/// `CurCmd` values SQL Server puts in DONE tokens.
const CMD_SELECT: u16 = 0xC1;
const CMD_EXECUTE: u16 = 0xE0;

/// Latin1_General_CI_AS (LCID 0x0409, sort id 52), SQL Server's default US collation.
const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];
/// PLP values are sent in chunks of this size, as SQL Server does (one per 8 KB page).
const PLP_CHUNK: usize = 8000;

/// Builds a token stream.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    pub buf: Vec<u8>,
}

impl Tokens {
    pub(crate) fn new() -> Tokens {
        Tokens::default()
    }

    fn with_u16_len(&mut self, token: u8, body: &[u8]) {
        self.buf.push(token);
        self.buf.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_le_bytes());
        self.buf.extend_from_slice(body);
    }

    /// ENVCHANGE with B_VARCHAR new and old values (database, language, packet size).
    pub(crate) fn env_change(&mut self, ty: u8, new: &str, old: &str) {
        let mut body = vec![ty];
        put_b_varchar(&mut body, new);
        put_b_varchar(&mut body, old);
        self.with_u16_len(ENVCHANGE, &body);
    }

    /// ENVCHANGE with B_VARBYTE new and old values (collation, transactions).
    pub(crate) fn env_change_bytes(&mut self, ty: u8, new: &[u8], old: &[u8]) {
        let mut body = vec![ty];
        for value in [new, old] {
            body.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
            body.extend_from_slice(value);
        }
        self.with_u16_len(ENVCHANGE, &body);
    }

    pub(crate) fn collation_change(&mut self) {
        self.env_change_bytes(7, &COLLATION, &[]);
    }

    fn message(&mut self, token: u8, e: &SqlError, procedure: &str) {
        let mut body = Vec::new();
        body.extend_from_slice(&e.number.to_le_bytes());
        body.push(e.state);
        body.push(e.class);
        put_us_varchar(&mut body, &e.message);
        put_b_varchar(&mut body, SERVER_NAME);
        put_b_varchar(&mut body, procedure);
        body.extend_from_slice(&1u32.to_le_bytes()); // line number
        self.with_u16_len(token, &body);
    }

    pub(crate) fn error(&mut self, e: &SqlError) {
        self.message(ERROR, e, "");
    }

    pub(crate) fn info(&mut self, number: u32, message: &str) {
        self.message(INFO, &SqlError { number, class: 0, state: 1, message: message.to_owned() }, "");
    }

    pub(crate) fn login_ack(&mut self, tds_version: u32) {
        let mut body = vec![1u8]; // interface: SQL_TSQL
        body.extend_from_slice(&tds_version.to_be_bytes());
        put_b_varchar(&mut body, "Microsoft SQL Server");
        body.extend_from_slice(&SERVER_VERSION);
        self.with_u16_len(LOGINACK, &body);
    }

    pub(crate) fn done(&mut self, token: u8, status: u16, cur_cmd: u16, rows: u64) {
        self.buf.push(token);
        self.buf.extend_from_slice(&status.to_le_bytes());
        self.buf.extend_from_slice(&cur_cmd.to_le_bytes());
        self.buf.extend_from_slice(&rows.to_le_bytes());
    }

    fn return_status(&mut self, value: i32) {
        self.buf.push(RETURNSTATUS);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    fn col_metadata(&mut self, columns: &[Column]) -> Result<(), String> {
        self.buf.push(COLMETADATA);
        let count = u16::try_from(columns.len()).ok().filter(|&c| c < 0xFFFF).ok_or("too many columns")?;
        self.buf.extend_from_slice(&count.to_le_bytes());
        for column in columns {
            self.buf.extend_from_slice(&0u32.to_le_bytes()); // user type
            self.buf.extend_from_slice(&0x0009u16.to_le_bytes()); // nullable, updateable unknown
            match column.kind {
                ColumnType::BigInt => self.buf.extend_from_slice(&[0x26, 8]),
                ColumnType::Int => self.buf.extend_from_slice(&[0x26, 4]),
                ColumnType::Bit => self.buf.extend_from_slice(&[0x68, 1]),
                ColumnType::NVarChar => {
                    self.buf.extend_from_slice(&[0xE7, 0xFF, 0xFF]);
                    self.buf.extend_from_slice(&COLLATION);
                }
                ColumnType::VarBinaryMax => self.buf.extend_from_slice(&[0xA5, 0xFF, 0xFF]),
                ColumnType::DateTime2 => self.buf.extend_from_slice(&[0x2A, 3]),
            }
            if column.name.encode_utf16().count() > 255 {
                return Err(format!("column name {:?} is longer than 255 characters", column.name));
            }
            put_b_varchar(&mut self.buf, &column.name);
        }
        Ok(())
    }

    fn row(&mut self, columns: &[Column], values: &[Value]) -> Result<(), String> {
        if values.len() != columns.len() {
            return Err(format!("a row has {} values for {} columns", values.len(), columns.len()));
        }
        self.buf.push(ROW);
        for (column, value) in columns.iter().zip(values) {
            self.value(column, value)?;
        }
        Ok(())
    }

    fn value(&mut self, column: &Column, value: &Value) -> Result<(), String> {
        let out = &mut self.buf;
        match (column.kind, value) {
            (ColumnType::BigInt | ColumnType::Int | ColumnType::Bit | ColumnType::DateTime2, Value::Null) => {
                out.push(0)
            }
            (ColumnType::NVarChar | ColumnType::VarBinaryMax, Value::Null) => {
                out.extend_from_slice(&u64::MAX.to_le_bytes())
            }
            (ColumnType::BigInt, Value::Int(v)) => {
                out.push(8);
                out.extend_from_slice(&v.to_le_bytes());
            }
            (ColumnType::Int, Value::Int(v)) => {
                let v = i32::try_from(*v).map_err(|_| format!("{v} does not fit the int column {:?}", column.name))?;
                out.push(4);
                out.extend_from_slice(&v.to_le_bytes());
            }
            (ColumnType::Bit, Value::Bit(b)) => out.extend_from_slice(&[1, u8::from(*b)]),
            (ColumnType::NVarChar, Value::NVarChar(s)) => {
                let mut bytes = Vec::with_capacity(s.len() * 2);
                super::wire::put_utf16(&mut bytes, s);
                plp(out, &bytes);
            }
            (ColumnType::VarBinaryMax, Value::VarBinary(b)) => plp(out, b),
            (ColumnType::DateTime2, Value::DateTime2(dt)) => datetime2_scale3(out, *dt),
            (kind, value) => return Err(format!("column {:?} of type {kind:?} got {value:?}", column.name)),
        }
        Ok(())
    }
}

/// A non-NULL PLP value with its known length, in chunks, then the terminator.
fn plp(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_le_bytes());
    for chunk in bytes.chunks(PLP_CHUNK) {
        out.extend_from_slice(&u32::try_from(chunk.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&0u32.to_le_bytes());
}

/// `datetime2(3)`: length 7, milliseconds since midnight in 4 bytes, 3-byte day number.
/// Sub-millisecond parts are rounded half up, as SQL Server converts to a smaller scale.
fn datetime2_scale3(out: &mut Vec<u8>, dt: time::PrimitiveDateTime) {
    let (h, m, s, nanos) = dt.as_hms_nano();
    let mut millis =
        (u64::from(h) * 3600 + u64::from(m) * 60 + u64::from(s)) * 1000 + (u64::from(nanos) + 500_000) / 1_000_000;
    let mut date = dt.date();
    if millis >= 86_400_000 {
        millis -= 86_400_000;
        date = date.next_day().unwrap_or(date);
    }
    out.push(7);
    out.extend_from_slice(&u32::try_from(millis).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&days_since_year_one(date).to_le_bytes()[..3]);
}

/// Whether the answer goes to a batch or to `sp_executesql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answering {
    Batch,
    Rpc,
}

/// Turns replies into tokens. Each statement's DONE (DONEINPROC inside `sp_executesql`) is
/// held back until the next item shows whether MORE must be set; INFO tokens belong to the
/// statement that follows them. `Err` describes a reply that cannot be encoded (a handler
/// bug): the tokens then hold nothing useful.
pub(crate) fn render(replies: &[Reply], mode: Answering) -> Result<Vec<u8>, String> {
    let mut t = Tokens::new();
    let statement_done = if mode == Answering::Batch { DONE } else { DONEINPROC };
    let mut pending: Option<(u16, u16, u64)> = None;
    let mut failed = false;
    let flush = |t: &mut Tokens, pending: &mut Option<(u16, u16, u64)>| {
        if let Some((status, cmd, rows)) = pending.take() {
            t.done(statement_done, status | status::MORE, cmd, rows);
        }
    };
    for reply in replies {
        flush(&mut t, &mut pending);
        match reply {
            Reply::Rows(rs) => {
                t.col_metadata(&rs.columns)?;
                for row in &rs.rows {
                    t.row(&rs.columns, row)?;
                }
                pending = Some((status::COUNT, CMD_SELECT, u64::try_from(rs.rows.len()).unwrap_or(u64::MAX)));
            }
            Reply::Done { rows } => {
                pending = Some((if rows.is_some() { status::COUNT } else { 0 }, 0, rows.unwrap_or(0)));
            }
            Reply::Info(message) => t.info(0, message),
            Reply::Error(e) => {
                t.error(e);
                failed = true;
                pending = Some((status::ERROR, 0, 0));
                break;
            }
        }
    }
    match mode {
        Answering::Batch => {
            let (status, cmd, rows) = pending.unwrap_or((status::FINAL, 0, 0));
            t.done(DONE, status, cmd, rows);
        }
        Answering::Rpc => {
            flush(&mut t, &mut pending);
            if failed {
                t.done(DONEPROC, status::ERROR, CMD_EXECUTE, 0);
            } else {
                t.return_status(0);
                t.done(DONEPROC, status::FINAL, CMD_EXECUTE, 0);
            }
        }
    }
    Ok(t.buf)
}

/// The tokens of an answer that is only an error (protocol errors, handler panics).
pub(crate) fn error_answer(e: &SqlError) -> Vec<u8> {
    let mut t = Tokens::new();
    t.error(e);
    t.done(DONE, status::ERROR, 0, 0);
    t.buf
}

/// A successful login: what SQL Server 2022 sends, in its order.
pub(crate) fn login_success(database: &str, tds_version: u32, packet_size: u32) -> Vec<u8> {
    let mut t = Tokens::new();
    t.env_change(1, database, "master");
    t.info(5701, &format!("Changed database context to '{database}'."));
    t.collation_change();
    t.env_change(2, "us_english", "");
    t.info(5703, "Changed language setting to us_english.");
    t.login_ack(tds_version.min(TDS_74));
    t.env_change(4, &packet_size.to_string(), "4096");
    t.done(DONE, status::FINAL, 0, 0);
    t.buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tds::ResultSet;

    fn tokens_of(bytes: &[u8]) -> Vec<u8> {
        // Only for streams of DONE-family and RETURNSTATUS tokens.
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            out.push(bytes[i]);
            i += if bytes[i] == RETURNSTATUS { 5 } else { 13 };
        }
        out
    }

    #[test]
    fn more_bit_and_proc_tokens() {
        let replies = [Reply::Done { rows: Some(2) }, Reply::Done { rows: None }];
        let batch = render(&replies, Answering::Batch).unwrap();
        assert_eq!(tokens_of(&batch), vec![DONE, DONE]);
        assert_eq!(&batch[1..3], &(status::MORE | status::COUNT).to_le_bytes());
        assert_eq!(&batch[14..16], &0u16.to_le_bytes());
        let rpc = render(&replies, Answering::Rpc).unwrap();
        assert_eq!(tokens_of(&rpc), vec![DONEINPROC, DONEINPROC, RETURNSTATUS, DONEPROC]);
        assert_eq!(tokens_of(&render(&[], Answering::Batch).unwrap()), vec![DONE]);
    }

    #[test]
    fn type_mismatch_is_reported() {
        let rs = ResultSet { columns: vec![Column::new("a", ColumnType::Int)], rows: vec![vec![Value::Bit(true)]] };
        assert!(render(&[Reply::Rows(rs)], Answering::Batch).is_err());
    }
}
