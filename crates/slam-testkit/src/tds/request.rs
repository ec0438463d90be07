//! Client requests after login: SQL batches, RPCs to `sp_executesql` with their parameters
//! (MS-TDS 2.2.6.6, 2.2.5.4 TYPE_INFO, 2.2.5.2.3 PLP) and transaction-manager requests.
//!
//! A malformed request becomes a [`SqlError`] shaped like SQL Server's own (8007, 8016, 8009,
//! 2812, 4002), so the client sees a server error instead of the fake falling over.

use time::{Date, Month, PrimitiveDateTime, Time};

use super::wire::{Reader, Truncated, utf16_lossy};
use super::{Param, SqlError, Value};

/// `sp_executesql`'s well-known procedure id.
const PROC_ID_EXECUTESQL: u16 = 10;
const PLP_NULL: u64 = u64::MAX;
const PLP_UNKNOWN_LEN: u64 = u64::MAX - 1;

/// A transaction-manager request (packet type 14, MS-TDS 2.2.6.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TmRequest {
    Begin { isolation: u8, name: String },
    Commit { name: String },
    Rollback { name: String },
    Save { name: String },
}

impl TmRequest {
    /// The T-SQL the request stands for, as the handler sees it.
    pub(crate) fn sql(&self) -> String {
        let named = |verb: &str, name: &str| {
            if name.is_empty() { format!("{verb} TRANSACTION") } else { format!("{verb} TRANSACTION {name}") }
        };
        match self {
            TmRequest::Begin { isolation, name } => {
                let level = match isolation {
                    1 => "READ UNCOMMITTED",
                    2 => "READ COMMITTED",
                    3 => "REPEATABLE READ",
                    4 => "SERIALIZABLE",
                    5 => "SNAPSHOT",
                    _ => return named("BEGIN", name),
                };
                format!("SET TRANSACTION ISOLATION LEVEL {level}; {}", named("BEGIN", name))
            }
            TmRequest::Commit { name } => named("COMMIT", name),
            TmRequest::Rollback { name } => named("ROLLBACK", name),
            TmRequest::Save { name } => named("SAVE", name),
        }
    }
}

/// The generic "bad TDS" error, with what the fake found wrong appended.
pub(crate) fn protocol_error(detail: &str) -> SqlError {
    SqlError::new(
        4002,
        16,
        format!("The incoming tabular data stream (TDS) protocol stream is incorrect. (fake SQL Server: {detail})"),
    )
}

fn truncated(what: &str) -> impl FnOnce(Truncated) -> SqlError + '_ {
    move |_| protocol_error(&format!("{what} is truncated"))
}

/// Skips ALL_HEADERS (mandatory since TDS 7.2) and returns the rest.
fn skip_all_headers<'a>(payload: &'a [u8], what: &str) -> Result<Reader<'a>, SqlError> {
    let mut r = Reader::new(payload);
    let total = r.u32_le().map_err(truncated(what))?;
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    if total < 4 || total > payload.len() {
        return Err(protocol_error(&format!("{what}: ALL_HEADERS length {total} is invalid")));
    }
    r.bytes(total - 4).map_err(truncated(what))?;
    Ok(r)
}

/// A SQL batch: ALL_HEADERS, then the text in UTF-16LE.
pub(crate) fn parse_batch(payload: &[u8]) -> Result<String, SqlError> {
    let mut r = skip_all_headers(payload, "SQL batch")?;
    let text = r.bytes(r.remaining()).map_err(truncated("SQL batch"))?;
    if text.len() % 2 != 0 {
        return Err(protocol_error("SQL batch text has an odd number of bytes"));
    }
    Ok(utf16_lossy(text))
}

/// An RPC: must be `sp_executesql`; returns the statement and the parameters after `@params`.
pub(crate) fn parse_rpc(payload: &[u8]) -> Result<(String, Vec<Param>), SqlError> {
    let mut r = skip_all_headers(payload, "RPC")?;
    let name_len = r.u16_le().map_err(truncated("RPC"))?;
    if name_len == 0xFFFF {
        let id = r.u16_le().map_err(truncated("RPC"))?;
        if id != PROC_ID_EXECUTESQL {
            return Err(SqlError::new(
                50000,
                16,
                format!("fake SQL Server: RPC to procedure id {id} is not supported (only sp_executesql, id 10)"),
            ));
        }
    } else {
        let name = r.utf16(usize::from(name_len)).map_err(truncated("RPC"))?;
        let normalized = name.replace(['[', ']'], "").to_ascii_lowercase();
        if normalized.rsplit('.').next() != Some("sp_executesql") {
            return Err(SqlError::new(2812, 16, format!("Could not find stored procedure '{name}'.")));
        }
    }
    let _option_flags = r.u16_le().map_err(truncated("RPC"))?;

    let mut params = Vec::new();
    let mut index = 0usize;
    while r.remaining() > 0 {
        index += 1;
        if matches!(r.peek_u8(), Some(0xFF | 0x80)) {
            return Err(SqlError::new(50000, 16, "fake SQL Server: batched RPCs are not supported"));
        }
        let name = r.b_varchar().map_err(|_| bad_length(index, "", 0))?;
        let _status = r.u8().map_err(|_| bad_length(index, &name, 0))?;
        let value = read_value(&mut r, index, &name)?;
        params.push(Param { name, value });
    }

    let mut params = params.into_iter();
    let statement = match params.next() {
        Some(Param { value: Value::NVarChar(sql), .. }) => sql,
        _ => {
            return Err(SqlError::new(
                214,
                16,
                "Procedure expects parameter '@statement' of type 'ntext/nchar/nvarchar'.",
            ));
        }
    };
    match params.next() {
        None => {}
        Some(Param { value: Value::NVarChar(_) | Value::Null, .. }) => {}
        Some(_) => {
            return Err(SqlError::new(
                214,
                16,
                "Procedure expects parameter '@params' of type 'ntext/nchar/nvarchar'.",
            ));
        }
    }
    Ok((statement, params.collect()))
}

/// A transaction-manager request: ALL_HEADERS, the request type and its payload.
pub(crate) fn parse_tm(payload: &[u8]) -> Result<TmRequest, SqlError> {
    let mut r = skip_all_headers(payload, "transaction manager request")?;
    let what = "transaction manager request";
    let ty = r.u16_le().map_err(truncated(what))?;
    Ok(match ty {
        5 => {
            let isolation = r.u8().map_err(truncated(what))?;
            TmRequest::Begin { isolation, name: r.b_varchar().map_err(truncated(what))? }
        }
        7 => TmRequest::Commit { name: r.b_varchar().map_err(truncated(what))? },
        8 => TmRequest::Rollback { name: r.b_varchar().map_err(truncated(what))? },
        9 => TmRequest::Save { name: r.b_varchar().map_err(truncated(what))? },
        other => {
            return Err(SqlError::new(
                50000,
                16,
                format!("fake SQL Server: transaction manager request type {other} is not supported"),
            ));
        }
    })
}

fn rpc_prefix(index: usize, name: &str) -> String {
    format!(
        "The incoming tabular data stream (TDS) remote procedure call (RPC) protocol stream is incorrect. \
         Parameter {index} (\"{name}\"):"
    )
}

/// 8016: a length or metadata length is wrong (or the value is cut short).
fn bad_length(index: usize, name: &str, ty: u8) -> SqlError {
    SqlError::new(
        8016,
        16,
        format!("{} Data type 0x{ty:02X} has an invalid data length or metadata length.", rpc_prefix(index, name)),
    )
}

/// 8007: a PLP value's chunks do not add up.
fn bad_chunking(index: usize, name: &str, ty: u8) -> SqlError {
    SqlError::new(
        8007,
        16,
        format!(
            "{} The chunking format is incorrect for a large object parameter of type 0x{ty:02X}.",
            rpc_prefix(index, name)
        ),
    )
}

fn read_value(r: &mut Reader<'_>, index: usize, name: &str) -> Result<Value, SqlError> {
    let ty = r.u8().map_err(|_| bad_length(index, name, 0))?;
    let len_err = |_: Truncated| bad_length(index, name, ty);
    let int = |bytes: &[u8]| -> i64 {
        match *bytes {
            [a] => i64::from(a),
            [a, b] => i64::from(i16::from_le_bytes([a, b])),
            [a, b, c, d] => i64::from(i32::from_le_bytes([a, b, c, d])),
            [a, b, c, d, e, f, g, h] => i64::from_le_bytes([a, b, c, d, e, f, g, h]),
            _ => 0,
        }
    };
    Ok(match ty {
        // NULLTYPE: what tiberius sends for `None` of most types.
        0x1F => Value::Null,
        0x30 => Value::Int(int(r.bytes(1).map_err(len_err)?)),
        0x34 => Value::Int(int(r.bytes(2).map_err(len_err)?)),
        0x38 => Value::Int(int(r.bytes(4).map_err(len_err)?)),
        0x7F => Value::Int(int(r.bytes(8).map_err(len_err)?)),
        0x32 => Value::Bit(r.u8().map_err(len_err)? != 0),
        // INTN
        0x26 => {
            let max = r.u8().map_err(len_err)?;
            let len = r.u8().map_err(len_err)?;
            if !matches!(max, 1 | 2 | 4 | 8) || (len != 0 && len != max) {
                return Err(bad_length(index, name, ty));
            }
            if len == 0 { Value::Null } else { Value::Int(int(r.bytes(usize::from(len)).map_err(len_err)?)) }
        }
        // BITN
        0x68 => {
            let max = r.u8().map_err(len_err)?;
            let len = r.u8().map_err(len_err)?;
            if max != 1 || len > 1 {
                return Err(bad_length(index, name, ty));
            }
            if len == 0 { Value::Null } else { Value::Bit(r.u8().map_err(len_err)? != 0) }
        }
        // NVARCHAR, NCHAR, BIGVARCHAR, BIGCHAR: max length, collation, then the value.
        0xE7 | 0xEF | 0xA7 | 0xAF => {
            let max = r.u16_le().map_err(len_err)?;
            r.bytes(5).map_err(len_err)?;
            let bytes = if max == 0xFFFF {
                if ty != 0xE7 && ty != 0xA7 {
                    return Err(bad_length(index, name, ty));
                }
                read_plp(r, index, name, ty)?
            } else {
                read_short(r, max, index, name, ty)?
            };
            match bytes {
                None => Value::Null,
                Some(b) if ty == 0xE7 || ty == 0xEF => {
                    if b.len() % 2 != 0 {
                        return Err(bad_length(index, name, ty));
                    }
                    Value::NVarChar(utf16_lossy(&b))
                }
                Some(b) => Value::NVarChar(b.iter().map(|&c| char::from(c)).collect()),
            }
        }
        // BIGVARBINARY, BIGBINARY
        0xA5 | 0xAD => {
            let max = r.u16_le().map_err(len_err)?;
            let bytes = if max == 0xFFFF {
                if ty != 0xA5 {
                    return Err(bad_length(index, name, ty));
                }
                read_plp(r, index, name, ty)?
            } else {
                read_short(r, max, index, name, ty)?
            };
            bytes.map_or(Value::Null, Value::VarBinary)
        }
        // DATETIME2N: scale, then length (0 = NULL), time, 3-byte date.
        0x2A => {
            let scale = r.u8().map_err(len_err)?;
            let time_len = match scale {
                0..=2 => 3,
                3..=4 => 4,
                5..=7 => 5,
                _ => return Err(bad_length(index, name, ty)),
            };
            let len = usize::from(r.u8().map_err(len_err)?);
            if len == 0 {
                Value::Null
            } else if len != time_len + 3 {
                return Err(bad_length(index, name, ty));
            } else {
                let bytes = r.bytes(len).map_err(len_err)?;
                decode_datetime2(bytes, scale).ok_or_else(|| bad_length(index, name, ty))?
            }
        }
        0x24 | 0x28 | 0x29 | 0x2B | 0x6A | 0x6C | 0x6D | 0x6E | 0x6F | 0x3A | 0x3B | 0x3C | 0x3D | 0x3E | 0x7A
        | 0x22 | 0x23 | 0x63 | 0x62 | 0xF0 | 0xF1 | 0xF3 => {
            return Err(SqlError::new(
                50000,
                16,
                format!(
                    "fake SQL Server: parameter {index} (\"{name}\") has data type 0x{ty:02X}, \
                     which the fake does not support"
                ),
            ));
        }
        _ => {
            return Err(SqlError::new(
                8009,
                16,
                format!("{} Data type 0x{ty:02X} is unknown.", rpc_prefix(index, name)),
            ));
        }
    })
}

/// A sized value: 2-byte length, 0xFFFF for NULL.
fn read_short(r: &mut Reader<'_>, max: u16, index: usize, name: &str, ty: u8) -> Result<Option<Vec<u8>>, SqlError> {
    let len = r.u16_le().map_err(|_| bad_length(index, name, ty))?;
    if len == 0xFFFF {
        return Ok(None);
    }
    if len > max {
        return Err(bad_length(index, name, ty));
    }
    Ok(Some(r.bytes(usize::from(len)).map_err(|_| bad_length(index, name, ty))?.to_vec()))
}

/// A PLP value: 8-byte total length (or NULL / unknown), chunks with 4-byte lengths, a
/// zero-length terminator chunk.
fn read_plp(r: &mut Reader<'_>, index: usize, name: &str, ty: u8) -> Result<Option<Vec<u8>>, SqlError> {
    let chunking = |_: Truncated| bad_chunking(index, name, ty);
    let total = r.u64_le().map_err(chunking)?;
    if total == PLP_NULL {
        return Ok(None);
    }
    let mut data = Vec::new();
    loop {
        let chunk = r.u32_le().map_err(chunking)?;
        if chunk == 0 {
            break;
        }
        let chunk = usize::try_from(chunk).unwrap_or(usize::MAX);
        data.extend_from_slice(r.bytes(chunk).map_err(chunking)?);
    }
    if total != PLP_UNKNOWN_LEN && u64::try_from(data.len()).ok() != Some(total) {
        return Err(bad_chunking(index, name, ty));
    }
    Ok(Some(data))
}

/// Days since 0001-01-01 of `date`.
pub(crate) fn days_since_year_one(date: Date) -> i32 {
    date.to_julian_day() - year_one().to_julian_day()
}

fn year_one() -> Date {
    Date::from_calendar_date(1, Month::January, 1).unwrap_or(Date::MIN)
}

/// Time bytes (little-endian increments of 10^-scale s) then 3 date bytes (days since year 1).
fn decode_datetime2(bytes: &[u8], scale: u8) -> Option<Value> {
    let (time_bytes, date_bytes) = bytes.split_at(bytes.len().checked_sub(3)?);
    let mut increments: u64 = 0;
    for (i, b) in time_bytes.iter().enumerate() {
        increments |= u64::from(*b) << (8 * i);
    }
    let per_second = 10u64.pow(u32::from(scale));
    let nanos = increments.checked_mul(10u64.pow(9 - u32::from(scale)))?;
    if increments >= 86_400 * per_second {
        return None;
    }
    let days = i64::from(u32::from_le_bytes([date_bytes[0], date_bytes[1], date_bytes[2], 0]));
    let date = year_one().checked_add(time::Duration::days(days))?;
    let secs = nanos / 1_000_000_000;
    let time = Time::from_hms_nano(
        u8::try_from(secs / 3600).ok()?,
        u8::try_from(secs / 60 % 60).ok()?,
        u8::try_from(secs % 60).ok()?,
        u32::try_from(nanos % 1_000_000_000).ok()?,
    )
    .ok()?;
    Some(Value::DateTime2(PrimitiveDateTime::new(date, time)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tds::wire::{put_b_varchar, put_utf16};

    fn all_headers() -> Vec<u8> {
        let mut v = 22u32.to_le_bytes().to_vec();
        v.extend_from_slice(&18u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&1u32.to_le_bytes());
        v
    }

    fn nvarchar_param(out: &mut Vec<u8>, name: &str, value: &str) {
        put_b_varchar(out, name);
        out.push(0);
        out.push(0xE7);
        out.extend_from_slice(&8000u16.to_le_bytes());
        out.extend_from_slice(&[0; 5]);
        out.extend_from_slice(&u16::try_from(value.encode_utf16().count() * 2).unwrap().to_le_bytes());
        put_utf16(out, value);
    }

    fn rpc(extra: &[u8]) -> Vec<u8> {
        let mut v = all_headers();
        v.extend_from_slice(&0xFFFFu16.to_le_bytes());
        v.extend_from_slice(&10u16.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        nvarchar_param(&mut v, "stmt", "SELECT @P1");
        nvarchar_param(&mut v, "params", "@P1 varbinary(max)");
        put_b_varchar(&mut v, "@P1");
        v.push(0);
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn batch_and_rpc() {
        let mut batch = all_headers();
        put_utf16(&mut batch, "SELECT 1");
        assert_eq!(parse_batch(&batch).unwrap(), "SELECT 1");

        let mut plp = vec![0xA5, 0xFF, 0xFF];
        plp.extend_from_slice(&PLP_UNKNOWN_LEN.to_le_bytes());
        plp.extend_from_slice(&3u32.to_le_bytes());
        plp.extend_from_slice(&[1, 2, 3]);
        plp.extend_from_slice(&0u32.to_le_bytes());
        let (sql, params) = parse_rpc(&rpc(&plp)).unwrap();
        assert_eq!(sql, "SELECT @P1");
        assert_eq!(params, vec![Param { name: "@P1".to_owned(), value: Value::VarBinary(vec![1, 2, 3]) }]);

        // A one-byte terminator is not a PLP terminator: SQL Server answers 8007.
        plp.truncate(plp.len() - 3);
        assert_eq!(parse_rpc(&rpc(&plp)).unwrap_err().number, 8007);
        assert_eq!(parse_rpc(&rpc(&[0x99])).unwrap_err().number, 8009);
        assert_eq!(parse_rpc(&rpc(&[0x26, 4, 4, 1])).unwrap_err().number, 8016);
        assert_eq!(parse_rpc(&rpc(&[0x26, 4, 0])).unwrap().1[0].value, Value::Null);
    }

    #[test]
    fn datetime2_round_trip() {
        // 2024-02-29 13:14:15.1234567 at scale 7.
        let date = Date::from_calendar_date(2024, Month::February, 29).unwrap();
        let increments: u64 = (13 * 3600 + 14 * 60 + 15) * 10_000_000 + 1_234_567;
        let mut bytes = increments.to_le_bytes()[..5].to_vec();
        bytes.extend_from_slice(&days_since_year_one(date).to_le_bytes()[..3]);
        let expected = PrimitiveDateTime::new(date, Time::from_hms_nano(13, 14, 15, 123_456_700).unwrap());
        assert_eq!(decode_datetime2(&bytes, 7), Some(Value::DateTime2(expected)));
    }
}
