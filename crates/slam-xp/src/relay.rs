//! What `xp_slam` does, apart from the Win32 and ODS plumbing: read `@request`,
//! send it to the worker as one frame, turn each answer frame into SQL Server
//! output as it arrives, and put the final error into `@error_number` and
//! `@error_message`.
//!
//! It holds no business logic: the worker validates the request, runs the
//! operation and words every message. What the relay decides is only how SQL Server
//! sees the answer:
//! - messages: informational (`srv_wsendmsg`, UTF-16), warnings prefixed
//!   `Warning: `, long texts split into pieces SQL Server accepts;
//! - result sets: `text` → `NVARCHAR` (at most 4000 characters; ODS cannot send an
//!   empty string, so `''` arrives as NULL), `int` → `BIGINT`, `bool` → `BIT`,
//!   `date_time` → `NVARCHAR` holding ISO 8601 UTC text (ODS's type table has no
//!   `DATETIME2`, and the text converts with `CONVERT(DATETIME2, x, 127)`); each
//!   result set ends with `srv_senddone(DONE_MORE | DONE_COUNT)`;
//! - errors: never as a severity-16 message (the T-SQL wrapper `THROW`s them from the
//!   OUTPUT parameters); the return code is 0 on success and 1 on any failure.

use crate::ods::{DONE_COUNT, DONE_MORE, Ods, PARAM_RETURN, types};
use slam_protocol::frame::{self, DEFAULT_MAX_FRAME, MAX_RESPONSE_FRAME};
use slam_protocol::{Column, ColumnType, ErrorCode, Request, Response, Severity, SlamError, Value};

/// The longest `@request` read from SQL Server, in bytes as ODS counts them (UTF-16
/// doubles the frame limit); checked before anything is allocated.
pub const MAX_REQUEST_PARAM_BYTES: u32 = DEFAULT_MAX_FRAME * 2;

/// The most UTF-16 units in one message sent to SQL Server.
pub const MESSAGE_CHUNK: usize = 4000;

/// The most characters of a text cell (`NVARCHAR(4000)`, 8000 bytes).
pub const CELL_CHARS: usize = 4000;

/// Why talking to the worker failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipeError {
    /// Nothing listens at the pipe.
    NotListening {
        /// The pipe.
        pipe: String,
    },
    /// The pipe refused this account.
    AccessDenied {
        /// The pipe.
        pipe: String,
    },
    /// Every instance stayed busy until the connect deadline.
    Busy {
        /// The pipe.
        pipe: String,
    },
    /// Whatever serves the pipe runs as an account that is not trusted; nothing
    /// was sent to it.
    Untrusted {
        /// The pipe, and the server's process id.
        pipe: String,
        /// The account found.
        found: String,
        /// The accounts trusted.
        expected: String,
    },
    /// The query was cancelled while waiting.
    Cancelled,
    /// No answer before the deadline.
    Timeout {
        /// The deadline, in seconds.
        seconds: u64,
    },
    /// Anything else the system reported.
    Io {
        /// What failed, with the system's words.
        detail: String,
    },
}

/// The client end of the worker's pipe, waiting in slices so that a cancel is seen.
pub trait Pipe {
    /// Writes all of `bytes`.
    fn write_all(&mut self, bytes: &[u8], cancelled: &mut dyn FnMut() -> bool) -> Result<(), PipeError>;
    /// Reads what has arrived (0 when the worker closed the pipe).
    fn read(&mut self, buf: &mut [u8], cancelled: &mut dyn FnMut() -> bool) -> Result<usize, PipeError>;
}

/// Opens the pipe to the worker; gets the ODS to watch for a cancel while it waits.
pub type Connect<'a> = dyn FnMut(&mut dyn Ods) -> Result<Box<dyn Pipe>, PipeError> + 'a;

/// One call of `xp_slam`: returns its return code.
pub fn run(ods: &mut dyn Ods, connect: &mut Connect<'_>) -> i32 {
    let outputs = match Outputs::find(ods) {
        Ok(outputs) => outputs,
        Err(text) => {
            // Without the OUTPUT parameters the caller can only see a message.
            send_text(ods, Severity::Warning, &text);
            return 1;
        }
    };
    match relay(ods, connect) {
        Ok(()) => {
            outputs.success(ods);
            0
        }
        Err(error) => {
            outputs.failure(ods, &error);
            1
        }
    }
}

fn relay(ods: &mut dyn Ods, connect: &mut Connect<'_>) -> Result<(), SlamError> {
    let request = read_request(ods)?;
    let frame = frame::encode(&request, DEFAULT_MAX_FRAME).map_err(|e| invalid(format!("`@request` {e}")))?;
    let mut pipe = connect(ods).map_err(pipe_error)?;
    pipe.write_all(&frame, &mut || ods.got_attention()).map_err(pipe_error)?;

    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some((response, used)) =
            frame::decode::<Response>(&pending, MAX_RESPONSE_FRAME).map_err(|e| bad_answer(&e.to_string()))?
        {
            pending.drain(..used);
            match response {
                Response::Message { severity, text, .. } => send_text(ods, severity, &text),
                Response::ResultSet { columns, rows, .. } => send_result_set(ods, &columns, &rows)?,
                Response::Done { error: None, .. } => return Ok(()),
                Response::Done { error: Some(error), .. } => {
                    let code = ErrorCode::from_number(error.number).unwrap_or(ErrorCode::Internal);
                    let mut failure = SlamError::new(code, error.message);
                    failure.hint = error.hint;
                    return Err(failure);
                }
            }
        }
        let n = pipe.read(&mut chunk, &mut || ods.got_attention()).map_err(pipe_error)?;
        if n == 0 {
            return Err(SlamError::new(
                ErrorCode::WorkerConnectionLost,
                "the SLAM worker closed the pipe before the operation's end",
            )
            .with_hint("look in the worker's log; the operation may or may not have completed, so check its effect"));
        }
        pending.extend_from_slice(&chunk[..n]);
    }
}

fn invalid(message: String) -> SlamError {
    SlamError::new(ErrorCode::XpRequestInvalid, message)
        .with_hint("call the SLAM procedures (EXEC dbo.SLAM_help lists them); they build the request")
}

fn bad_answer(detail: &str) -> SlamError {
    SlamError::new(ErrorCode::XpBadAnswer, format!("the SLAM worker's answer is not valid: {detail}"))
        .with_hint("install the same SLAM version for the worker and xp_slam.dll, and check what serves the pipe")
}

fn pipe_error(error: PipeError) -> SlamError {
    match error {
        PipeError::NotListening { pipe } => {
            SlamError::new(ErrorCode::WorkerUnavailable, format!("no SLAM worker listens on {pipe}")).with_hint(
                "start the SpeedifulSLAM service (services.msc, or `slam-worker service start`); its log says why \
                 it stopped",
            )
        }
        PipeError::AccessDenied { pipe } => SlamError::new(
            ErrorCode::PeerNotAllowed,
            format!("the SLAM worker on {pipe} does not admit this SQL Server's service account"),
        )
        .with_hint(
            "add the account (NT SERVICE\\MSSQLSERVER, or NT SERVICE\\MSSQL$<instance>) to allowed_clients in \
             slam-worker.toml and restart the service",
        ),
        PipeError::Busy { pipe } => {
            SlamError::new(ErrorCode::WorkerUnavailable, format!("the SLAM worker on {pipe} stayed busy"))
                .with_hint("too many calls at once; try again, or raise max_connections in slam-worker.toml")
        }
        PipeError::Untrusted { pipe, found, expected } => SlamError::new(
            ErrorCode::WorkerNotTrusted,
            format!(
                "the process serving {pipe} runs as {found}, not as the SLAM worker's account ({expected}); nothing \
                 was sent to it"
            ),
        )
        .with_hint(
            "if the worker really runs under that account, name it in the registry value WorkerAccount under \
             HKLM\\SOFTWARE\\Speediful\\SLAM; otherwise another program holds the pipe name: find and stop it",
        ),
        PipeError::Cancelled => {
            SlamError::new(ErrorCode::XpCancelled, "the query was cancelled while xp_slam waited for the SLAM worker")
                .with_hint("the operation may still complete in the worker: check its effect before retrying")
        }
        PipeError::Timeout { seconds } => {
            SlamError::new(ErrorCode::XpTimeout, format!("the SLAM worker did not answer within {seconds} seconds"))
                .with_hint("look in the worker's log; check that the SpeedifulSLAM service is healthy")
        }
        PipeError::Io { detail } => {
            SlamError::new(ErrorCode::WorkerConnectionLost, format!("talking to the SLAM worker failed: {detail}"))
                .with_hint("look in the worker's log; the operation may or may not have completed, so check its effect")
        }
    }
}

/// Reads and checks `@request`: text (UTF-16 or UTF-8), at most 1 MiB, a SLAM
/// request. Nothing of its value is ever quoted back: it carries secrets.
fn read_request(ods: &mut dyn Ods) -> Result<Request, SlamError> {
    if ods.param_count() < 1 {
        return Err(invalid(
            "xp_slam takes @request, @error_number OUTPUT, @error_message OUTPUT; no @request was given".to_string(),
        ));
    }
    let info = ods.param_info(1).ok_or_else(|| invalid("`@request` cannot be read".to_string()))?;
    if info.is_null {
        return Err(invalid("`@request` is NULL".to_string()));
    }
    if info.len == 0 {
        return Err(invalid("`@request` is empty".to_string()));
    }
    if info.len > MAX_REQUEST_PARAM_BYTES {
        return Err(invalid(format!("`@request` is {} bytes; the limit is {MAX_REQUEST_PARAM_BYTES}", info.len)));
    }
    let data = ods.param_data(1, info.len).ok_or_else(|| invalid("`@request` cannot be read".to_string()))?;
    let text = match info.ty {
        types::NVARCHAR | types::NCHAR | types::NTEXT => {
            if data.len() % 2 != 0 {
                return Err(invalid("`@request` is not valid UTF-16 (odd length)".to_string()));
            }
            let units = data.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(|_| invalid("`@request` is not valid UTF-16 (an unpaired surrogate)".to_string()))?
        }
        types::BIGVARCHAR | types::VARCHAR | types::BIGCHAR | types::CHAR | types::TEXT => String::from_utf8(data)
            .map_err(|_| invalid("`@request` as VARCHAR must be ASCII or UTF-8; pass it as NVARCHAR".to_string()))?,
        other => return Err(invalid(format!("`@request` must be NVARCHAR, not ODS type 0x{other:02X}"))),
    };
    if text.len() > DEFAULT_MAX_FRAME as usize {
        return Err(invalid(format!("`@request` is {} bytes of UTF-8; the limit is {DEFAULT_MAX_FRAME}", text.len())));
    }
    serde_json::from_str::<Request>(&text).map_err(|e| {
        // serde's message can quote a value; only its position is reported.
        invalid(format!("`@request` is not a SLAM request (JSON error at line {}, column {})", e.line(), e.column()))
    })
}

/// `@error_number INT OUTPUT` (parameter 2) and `@error_message NVARCHAR OUTPUT` (3).
struct Outputs {
    message_max_bytes: u32,
}

impl Outputs {
    fn find(ods: &mut dyn Ods) -> Result<Self, String> {
        let usage = "xp_slam takes @request, @error_number INT OUTPUT, @error_message NVARCHAR(4000) OUTPUT";
        if ods.param_count() < 3 {
            return Err(format!("{usage}: the OUTPUT parameters are missing."));
        }
        let number = ods.param_info(2).ok_or_else(|| format!("{usage}: @error_number cannot be read."))?;
        let message = ods.param_info(3).ok_or_else(|| format!("{usage}: @error_message cannot be read."))?;
        let outputs = ods.param_status(2) & PARAM_RETURN != 0 && ods.param_status(3) & PARAM_RETURN != 0;
        let number_ok = matches!(number.ty, types::INTN | types::INT4) && number.max_len >= 4;
        let message_ok = matches!(message.ty, types::NVARCHAR | types::NCHAR) && message.max_len >= 2;
        if !(outputs && number_ok && message_ok) {
            return Err(format!("{usage}: pass both as OUTPUT, with those types."));
        }
        Ok(Self { message_max_bytes: message.max_len })
    }

    fn success(&self, ods: &mut dyn Ods) {
        ods.set_output(2, Some(&0i32.to_le_bytes()));
        ods.set_output(3, None);
    }

    fn failure(&self, ods: &mut dyn Ods, error: &SlamError) {
        let number = i32::try_from(error.code.number()).unwrap_or(i32::MAX);
        ods.set_output(2, Some(&number.to_le_bytes()));
        let text = match &error.hint {
            Some(hint) => format!("{}\nhint: {hint}", error.message),
            None => error.message.clone(),
        };
        let max_units = (self.message_max_bytes / 2) as usize;
        ods.set_output(3, Some(&utf16_bytes(&text, max_units)));
    }
}

/// UTF-16LE bytes of `text`, cut to `max_units` without splitting a surrogate pair.
fn utf16_bytes(text: &str, max_units: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut units = 0;
    for c in text.chars() {
        let mut buf = [0u16; 2];
        let encoded = c.encode_utf16(&mut buf);
        if units + encoded.len() > max_units {
            break;
        }
        units += encoded.len();
        for unit in encoded.iter() {
            out.extend_from_slice(&unit.to_le_bytes());
        }
    }
    out
}

/// Sends a message in pieces SQL Server accepts, never splitting a character.
fn send_text(ods: &mut dyn Ods, severity: Severity, text: &str) {
    let text = match severity {
        Severity::Info => text.to_string(),
        Severity::Warning => format!("Warning: {text}"),
    };
    let mut piece: Vec<u16> = Vec::new();
    for c in text.chars() {
        let mut buf = [0u16; 2];
        let encoded = c.encode_utf16(&mut buf);
        if piece.len() + encoded.len() > MESSAGE_CHUNK {
            ods.send_message(&piece);
            piece.clear();
        }
        piece.extend_from_slice(encoded);
    }
    if !piece.is_empty() {
        ods.send_message(&piece);
    }
}

fn send_result_set(ods: &mut dyn Ods, columns: &[Column], rows: &[Vec<Value>]) -> Result<(), SlamError> {
    if columns.is_empty() {
        return Err(bad_answer("a result set without columns"));
    }
    for (i, column) in columns.iter().enumerate() {
        let (ty, max_len) = match column.ty {
            ColumnType::Text | ColumnType::DateTime => {
                let longest = rows
                    .iter()
                    .filter_map(|row| match row.get(i) {
                        Some(Value::Text(s)) => Some(s.encode_utf16().count().min(CELL_CHARS)),
                        _ => None,
                    })
                    .max()
                    .unwrap_or(1);
                (types::NVARCHAR, (longest.max(1) * 2) as u32)
            }
            ColumnType::Int => (types::INTN, 8),
            ColumnType::Bool => (types::BITN, 1),
        };
        let position = i32::try_from(i + 1).unwrap_or(i32::MAX);
        if !ods.describe(position, &column.name, ty, max_len) {
            return Err(bad_answer(&format!("SQL Server refused the column `{}`", column.name)));
        }
    }
    for row in rows {
        if row.len() != columns.len() {
            return Err(bad_answer("a row with the wrong number of cells"));
        }
        let mut cells = Vec::with_capacity(row.len());
        for (column, value) in columns.iter().zip(row) {
            let cell = match (column.ty, value) {
                (_, Value::Null) => None,
                // ODS cannot send zero-length data: an empty text arrives as NULL.
                (ColumnType::Text | ColumnType::DateTime, Value::Text(s)) if s.is_empty() => None,
                (ColumnType::Text | ColumnType::DateTime, Value::Text(s)) => Some(utf16_bytes(s, CELL_CHARS)),
                (ColumnType::Int, Value::Int(n)) => Some(n.to_le_bytes().to_vec()),
                (ColumnType::Bool, Value::Bool(b)) => Some(vec![u8::from(*b)]),
                _ => return Err(bad_answer(&format!("a value of the wrong type in column `{}`", column.name))),
            };
            cells.push(cell);
        }
        if !ods.send_row(&cells) {
            return Err(bad_answer("SQL Server refused a row"));
        }
    }
    ods.send_done(DONE_MORE | DONE_COUNT, i32::try_from(rows.len()).unwrap_or(i32::MAX));
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ods::ParamInfo;
    use slam_protocol::{PROTOCOL_VERSION, WireError};
    use std::collections::VecDeque;

    /// One ODS call, as the recorder saw it.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) enum Call {
        Message(String),
        Describe(i32, String, u8, u32),
        Row(Vec<Option<Vec<u8>>>),
        Done(u16, i32),
        Output(i32, Option<Vec<u8>>),
    }

    /// A parameter as SQL Server would pass it.
    #[derive(Clone)]
    pub(crate) struct Param {
        pub(crate) ty: u8,
        pub(crate) max_len: u32,
        pub(crate) data: Option<Vec<u8>>,
        pub(crate) output: bool,
    }

    pub(crate) fn nvarchar(text: &str) -> Param {
        let data: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        Param { ty: types::NVARCHAR, max_len: u32::MAX, data: Some(data), output: false }
    }

    pub(crate) fn outputs() -> [Param; 2] {
        [
            Param { ty: types::INTN, max_len: 4, data: None, output: true },
            Param { ty: types::NVARCHAR, max_len: 8000, data: None, output: true },
        ]
    }

    #[derive(Default)]
    pub(crate) struct Recorder {
        pub(crate) params: Vec<Param>,
        pub(crate) calls: Vec<Call>,
        /// `got_attention` answers true from this poll on.
        pub(crate) attention_after: Option<usize>,
        polls: usize,
    }

    impl Recorder {
        pub(crate) fn with(params: Vec<Param>) -> Self {
            Self { params, ..Self::default() }
        }

        pub(crate) fn messages(&self) -> Vec<String> {
            self.calls.iter().filter_map(|c| if let Call::Message(m) = c { Some(m.clone()) } else { None }).collect()
        }

        /// `(@error_number, @error_message)` as last set.
        pub(crate) fn outputs(&self) -> (Option<i32>, Option<String>) {
            let mut number = None;
            let mut message = None;
            for call in &self.calls {
                match call {
                    Call::Output(2, Some(b)) => number = Some(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    Call::Output(3, value) => {
                        message = value.as_ref().map(|b| {
                            let units: Vec<u16> = b.chunks_exact(2).map(|p| u16::from_le_bytes([p[0], p[1]])).collect();
                            String::from_utf16_lossy(&units)
                        })
                    }
                    _ => {}
                }
            }
            (number, message)
        }
    }

    impl Ods for Recorder {
        fn param_count(&mut self) -> i32 {
            self.params.len() as i32
        }
        fn param_info(&mut self, n: i32) -> Option<ParamInfo> {
            let p = self.params.get(usize::try_from(n - 1).ok()?)?;
            Some(ParamInfo {
                ty: p.ty,
                max_len: p.max_len,
                len: p.data.as_ref().map_or(0, |d| d.len() as u32),
                is_null: p.data.is_none(),
            })
        }
        fn param_data(&mut self, n: i32, len: u32) -> Option<Vec<u8>> {
            let data = self.params.get(usize::try_from(n - 1).ok()?)?.data.clone()?;
            (data.len() == len as usize).then_some(data)
        }
        fn param_status(&mut self, n: i32) -> i32 {
            self.params.get((n - 1) as usize).map_or(0, |p| i32::from(p.output))
        }
        fn set_output(&mut self, n: i32, data: Option<&[u8]>) -> bool {
            self.calls.push(Call::Output(n, data.map(<[u8]>::to_vec)));
            true
        }
        fn send_message(&mut self, text: &[u16]) -> bool {
            self.calls.push(Call::Message(String::from_utf16_lossy(text)));
            true
        }
        fn describe(&mut self, column: i32, name: &str, ty: u8, max_len: u32) -> bool {
            self.calls.push(Call::Describe(column, name.to_string(), ty, max_len));
            true
        }
        fn send_row(&mut self, cells: &[Option<Vec<u8>>]) -> bool {
            self.calls.push(Call::Row(cells.to_vec()));
            true
        }
        fn send_done(&mut self, status: u16, count: i32) -> bool {
            self.calls.push(Call::Done(status, count));
            true
        }
        fn got_attention(&mut self) -> bool {
            self.polls += 1;
            self.attention_after.is_some_and(|n| self.polls > n)
        }
    }

    /// A worker that answers from a script, and records what it was sent.
    pub(crate) struct ScriptedPipe {
        pub(crate) answer: VecDeque<Vec<u8>>,
        /// After the scripted answer: wait for the cancel instead of closing.
        pub(crate) stall: bool,
        pub(crate) sent: std::rc::Rc<std::cell::RefCell<Vec<u8>>>,
    }

    impl Pipe for ScriptedPipe {
        fn write_all(&mut self, bytes: &[u8], _: &mut dyn FnMut() -> bool) -> Result<(), PipeError> {
            self.sent.borrow_mut().extend_from_slice(bytes);
            Ok(())
        }
        fn read(&mut self, buf: &mut [u8], cancelled: &mut dyn FnMut() -> bool) -> Result<usize, PipeError> {
            match self.answer.pop_front() {
                Some(mut bytes) => {
                    let n = bytes.len().min(buf.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    if n < bytes.len() {
                        self.answer.push_front(bytes.split_off(n));
                    }
                    Ok(n)
                }
                None if self.stall => loop {
                    if cancelled() {
                        return Err(PipeError::Cancelled);
                    }
                },
                None => Ok(0),
            }
        }
    }

    fn frames(responses: &[Response]) -> Vec<u8> {
        responses.iter().flat_map(|r| frame::encode(r, MAX_RESPONSE_FRAME).unwrap()).collect()
    }

    fn request_json(operation: &str) -> String {
        format!(
            r#"{{"version":{PROTOCOL_VERSION},"id":"x1","operation":"{operation}","args":{{"password":"s3cret"}}}}"#
        )
    }

    fn call(recorder: &mut Recorder, answer: Vec<u8>, stall: bool) -> (i32, Vec<u8>) {
        let sent = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let pipe_sent = sent.clone();
        let mut answer = Some(answer);
        let rc = run(recorder, &mut |_| {
            let answer = answer.take().unwrap_or_default();
            // Arrives in small pieces, as a pipe may deliver it.
            let pieces = answer.chunks(7).map(<[u8]>::to_vec).collect();
            Ok(Box::new(ScriptedPipe { answer: pieces, stall, sent: pipe_sent.clone() }))
        });
        let sent = sent.borrow().clone();
        (rc, sent)
    }

    fn params(request: Param) -> Vec<Param> {
        let mut params = vec![request];
        params.extend(outputs());
        params
    }

    fn done(error: Option<WireError>) -> Response {
        Response::Done { version: PROTOCOL_VERSION, id: "x1".into(), error }
    }

    #[test]
    fn a_request_goes_out_as_one_frame_and_the_answer_comes_back_typed() {
        let mut recorder = Recorder::with(params(nvarchar(&request_json("list_keys"))));
        let answer = frames(&[
            Response::Message {
                version: PROTOCOL_VERSION,
                id: "x1".into(),
                severity: Severity::Warning,
                text: "Zertifikat läuft ab — 🔑".into(),
            },
            Response::ResultSet {
                version: PROTOCOL_VERSION,
                id: "x1".into(),
                columns: vec![
                    Column { name: "key_name".into(), ty: ColumnType::Text },
                    Column { name: "days_left".into(), ty: ColumnType::Int },
                    Column { name: "has_passphrase".into(), ty: ColumnType::Bool },
                    Column { name: "expires_at".into(), ty: ColumnType::DateTime },
                ],
                rows: vec![
                    vec!["acme".into(), Value::Int(-3), Value::Bool(true), "2027-01-01T00:00:00Z".into()],
                    vec![Value::Text(String::new()), Value::Null, Value::Null, Value::Null],
                ],
            },
            done(None),
        ]);
        let (rc, sent) = call(&mut recorder, answer, false);
        assert_eq!(rc, 0);
        let (request, used) = frame::decode::<Request>(&sent, DEFAULT_MAX_FRAME).unwrap().unwrap();
        assert_eq!(used, sent.len(), "exactly one frame");
        assert_eq!(request.operation, "list_keys");
        assert_eq!(recorder.messages(), ["Warning: Zertifikat läuft ab — 🔑"]);
        let calls = &recorder.calls;
        assert_eq!(calls[1], Call::Describe(1, "key_name".into(), types::NVARCHAR, 8));
        assert_eq!(calls[2], Call::Describe(2, "days_left".into(), types::INTN, 8));
        assert_eq!(calls[3], Call::Describe(3, "has_passphrase".into(), types::BITN, 1));
        assert_eq!(calls[4], Call::Describe(4, "expires_at".into(), types::NVARCHAR, 40));
        let Call::Row(first) = &calls[5] else { panic!("{calls:?}") };
        assert_eq!(first[0], Some(b"a\0c\0m\0e\0".to_vec()));
        assert_eq!(first[1], Some((-3i64).to_le_bytes().to_vec()));
        assert_eq!(first[2], Some(vec![1]));
        assert_eq!(calls[6], Call::Row(vec![None, None, None, None]), "'' and NULL both arrive as NULL");
        assert_eq!(calls[7], Call::Done(DONE_MORE | DONE_COUNT, 2));
        assert_eq!(recorder.outputs(), (Some(0), None));
    }

    #[test]
    fn the_workers_error_goes_into_the_output_parameters_and_the_return_code() {
        let mut recorder = Recorder::with(params(nvarchar(&request_json("setup_jwt"))));
        let error = WireError {
            number: 50110,
            code: "SLAM_KEY_PASSWORD_WRONG".into(),
            message: "the passphrase does not open `acme`".into(),
            hint: Some("give the @password of SLAM_setup_jwt".into()),
        };
        let (rc, _) = call(&mut recorder, frames(&[done(Some(error))]), false);
        assert_eq!(rc, 1);
        let (number, message) = recorder.outputs();
        assert_eq!(number, Some(50110));
        assert_eq!(message.unwrap(), "the passphrase does not open `acme`\nhint: give the @password of SLAM_setup_jwt");
        assert!(recorder.messages().is_empty(), "the error is not also sent as a message");
    }

    #[test]
    fn long_messages_are_split_without_breaking_a_character() {
        let mut recorder = Recorder::with(params(nvarchar(&request_json("ping"))));
        let long = format!("{}🔑{}", "a".repeat(MESSAGE_CHUNK - 1), "b".repeat(10));
        let message = Response::Message {
            version: PROTOCOL_VERSION,
            id: "x1".into(),
            severity: Severity::Info,
            text: long.clone(),
        };
        let (rc, _) = call(&mut recorder, frames(&[message, done(None)]), false);
        assert_eq!(rc, 0);
        let messages = recorder.messages();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages.concat(), long);
        assert!(messages.iter().all(|m| m.encode_utf16().count() <= MESSAGE_CHUNK));
    }

    #[test]
    fn bad_requests_are_refused_with_a_clear_error_and_never_sent() {
        let utf16 = |units: &[u16]| Param {
            ty: types::NVARCHAR,
            max_len: u32::MAX,
            data: Some(units.iter().flat_map(|u| u.to_le_bytes()).collect()),
            output: false,
        };
        let cases: Vec<(Param, &str)> = vec![
            (Param { ty: types::NVARCHAR, max_len: 8000, data: None, output: false }, "is NULL"),
            (nvarchar(""), "is empty"),
            (Param { ty: types::INT4, max_len: 4, data: Some(vec![1, 0, 0, 0]), output: false }, "must be NVARCHAR"),
            (utf16(&[0xD800, 0x41]), "unpaired surrogate"),
            (
                Param { ty: types::BIGVARCHAR, max_len: 8000, data: Some(vec![0xFF, 0xFE]), output: false },
                "ASCII or UTF-8",
            ),
            (nvarchar(&"x".repeat(DEFAULT_MAX_FRAME as usize + 1)), "the limit is"),
            (nvarchar("{\"version\": \"s3cret-value\"}"), "not a SLAM request"),
        ];
        for (param, expected) in cases {
            let mut recorder = Recorder::with(params(param));
            let (rc, sent) = call(&mut recorder, Vec::new(), false);
            assert_eq!(rc, 1, "{expected}");
            assert!(sent.is_empty(), "{expected}: nothing is sent");
            let (number, message) = recorder.outputs();
            assert_eq!(number, Some(50410), "{expected}");
            let message = message.unwrap();
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains("s3cret"), "{message}");
        }
        // A VARCHAR request in ASCII is fine.
        let ascii = request_json("ping").into_bytes();
        let mut recorder =
            Recorder::with(params(Param { ty: types::BIGVARCHAR, max_len: 8000, data: Some(ascii), output: false }));
        assert_eq!(call(&mut recorder, frames(&[done(None)]), false).0, 0);
    }

    #[test]
    fn missing_output_parameters_are_said_in_a_message() {
        let mut recorder = Recorder::with(vec![nvarchar(&request_json("ping"))]);
        let (rc, sent) = call(&mut recorder, Vec::new(), false);
        assert_eq!(rc, 1);
        assert!(sent.is_empty());
        assert!(recorder.messages()[0].contains("@error_number INT OUTPUT"), "{:?}", recorder.messages());
        let mut not_output = params(nvarchar(&request_json("ping")));
        not_output[1].output = false;
        let mut recorder = Recorder::with(not_output);
        assert_eq!(call(&mut recorder, Vec::new(), false).0, 1);
    }

    #[test]
    fn garbage_truncated_and_silent_workers_become_errors() {
        let mut garbage = 5u32.to_le_bytes().to_vec();
        garbage.extend_from_slice(b"{{{{{");
        let huge = (MAX_RESPONSE_FRAME + 1).to_le_bytes().to_vec();
        let truncated = frames(&[done(None)])[..6].to_vec();
        let wrong_cell = frames(&[Response::ResultSet {
            version: PROTOCOL_VERSION,
            id: "x1".into(),
            columns: vec![Column { name: "n".into(), ty: ColumnType::Int }],
            rows: vec![vec!["text".into()]],
        }]);
        for (answer, number) in
            [(garbage, 50413), (huge, 50413), (truncated, 50408), (Vec::new(), 50408), (wrong_cell, 50413)]
        {
            let mut recorder = Recorder::with(params(nvarchar(&request_json("ping"))));
            let (rc, _) = call(&mut recorder, answer, false);
            assert_eq!(rc, 1);
            assert_eq!(recorder.outputs().0, Some(number));
        }
    }

    #[test]
    fn a_cancel_ends_the_wait() {
        let mut recorder = Recorder::with(params(nvarchar(&request_json("test_connection"))));
        recorder.attention_after = Some(3);
        let (rc, _) = call(&mut recorder, Vec::new(), true);
        assert_eq!(rc, 1);
        let (number, message) = recorder.outputs();
        assert_eq!(number, Some(50411));
        assert!(message.unwrap().contains("cancelled"));
    }

    #[test]
    fn connect_failures_name_the_pipe_and_what_to_do() {
        let cases = [
            (PipeError::NotListening { pipe: r"\\.\pipe\speediful-slam".into() }, 50407, "SpeedifulSLAM service"),
            (PipeError::AccessDenied { pipe: "p".into() }, 50404, "allowed_clients"),
            (PipeError::Timeout { seconds: 150 }, 50412, "150 seconds"),
            (
                PipeError::Untrusted {
                    pipe: "p (pid 7)".into(),
                    found: "S-1-5-21-9".into(),
                    expected: "S-1-5-18".into(),
                },
                50414,
                "runs as S-1-5-21-9, not as the SLAM worker's account (S-1-5-18); nothing was sent",
            ),
        ];
        for (error, number, expected) in cases {
            let mut recorder = Recorder::with(params(nvarchar(&request_json("ping"))));
            let rc = run(&mut recorder, &mut |_| Err(error.clone()));
            assert_eq!(rc, 1);
            let (got, message) = recorder.outputs();
            assert_eq!(got, Some(number));
            assert!(message.unwrap().contains(expected));
        }
    }

    #[test]
    fn the_error_message_fits_the_output_parameter() {
        let mut short = params(nvarchar(&request_json("ping")));
        short[2].max_len = 20;
        let mut recorder = Recorder::with(short);
        run(&mut recorder, &mut |_| Err(PipeError::NotListening { pipe: "p".into() }));
        assert_eq!(recorder.outputs().1.unwrap().encode_utf16().count(), 10);
    }
}
