//! Frames on the local pipe: a 4-byte little-endian length, then that many bytes of
//! UTF-8 JSON. The length is checked against a maximum before anything is
//! allocated, so a hostile or broken peer cannot make the worker (or the XP inside
//! sqlservr.exe) allocate gigabytes.
//!
//! [`decode`] works on a byte buffer (it never blocks and can be fed partial data,
//! as the XP's overlapped reader receives it); [`read_frame`] / [`write_frame`] are
//! the blocking reader and writer over `std::io` (the CLI's client), and
//! `read_frame_async` / `write_frame_async` (feature `tokio`) the async ones (the
//! worker). The limits are [`DEFAULT_MAX_FRAME`] for requests and
//! [`MAX_RESPONSE_FRAME`] for answers, here and nowhere else.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{self, Read, Write};

/// Default largest frame accepted: 1 MiB (requests are small; result sets of
/// connections and keys are far below this).
pub const DEFAULT_MAX_FRAME: u32 = 1024 * 1024;

/// Largest response frame a client accepts: result sets may be bigger than any
/// request, so the worker allows itself four times the request limit.
pub const MAX_RESPONSE_FRAME: u32 = DEFAULT_MAX_FRAME * 4;

/// Framing failures.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The announced length exceeds the maximum.
    #[error("frame of {length} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Announced length.
        length: u32,
        /// Limit in force.
        max: u32,
    },
    /// The peer closed the stream before a whole frame arrived.
    #[error("the connection closed in the middle of a frame")]
    Truncated,
    /// The payload is not valid JSON for the expected type.
    #[error("the frame is not a valid message")]
    Json(#[source] serde_json::Error),
    /// Reading or writing failed.
    #[error("pipe I/O failed")]
    Io(#[source] io::Error),
}

/// Serialises `value` as one frame.
pub fn encode<T: Serialize>(value: &T, max: u32) -> Result<Vec<u8>, FrameError> {
    let payload = serde_json::to_vec(value).map_err(FrameError::Json)?;
    let length = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge { length: u32::MAX, max })?;
    if length > max {
        return Err(FrameError::TooLarge { length, max });
    }
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&length.to_le_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Decodes one frame from the start of `buf`: `Ok(None)` when more bytes are
/// needed, `Ok(Some((value, consumed)))` when a whole frame was there.
pub fn decode<T: DeserializeOwned>(buf: &[u8], max: u32) -> Result<Option<(T, usize)>, FrameError> {
    let Some(header) = buf.get(..4) else { return Ok(None) };
    let length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if length > max {
        return Err(FrameError::TooLarge { length, max });
    }
    let end = 4 + length as usize;
    let Some(payload) = buf.get(4..end) else { return Ok(None) };
    let value = serde_json::from_slice(payload).map_err(FrameError::Json)?;
    Ok(Some((value, end)))
}

/// Writes one frame and flushes.
pub fn write_frame<T: Serialize>(w: &mut impl Write, value: &T, max: u32) -> Result<(), FrameError> {
    let frame = encode(value, max)?;
    w.write_all(&frame).map_err(FrameError::Io)?;
    w.flush().map_err(FrameError::Io)
}

/// Reads one frame. `Ok(None)` means the peer closed cleanly between frames.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read, max: u32) -> Result<Option<T>, FrameError> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < 4 {
        match r.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let length = u32::from_le_bytes(header);
    if length > max {
        return Err(FrameError::TooLarge { length, max });
    }
    // Only now, with the length known to be acceptable, is memory allocated.
    let mut payload = vec![0u8; length as usize];
    r.read_exact(&mut payload).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    serde_json::from_slice(&payload).map(Some).map_err(FrameError::Json)
}

/// Reads one frame from an async stream. `Ok(None)` means the peer closed cleanly
/// between frames. The length is checked against `max` before anything is allocated.
#[cfg(feature = "tokio")]
pub async fn read_frame_async<T: DeserializeOwned>(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
    max: u32,
) -> Result<Option<T>, FrameError> {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < 4 {
        match r.read(&mut header[filled..]).await {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe && filled == 0 => return Ok(None),
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let length = u32::from_le_bytes(header);
    if length > max {
        return Err(FrameError::TooLarge { length, max });
    }
    // Only now, with the length known to be acceptable, is memory allocated.
    let mut payload = vec![0u8; length as usize];
    r.read_exact(&mut payload).await.map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    serde_json::from_slice(&payload).map(Some).map_err(FrameError::Json)
}

/// Writes one frame to an async stream and flushes.
#[cfg(feature = "tokio")]
pub async fn write_frame_async<T: Serialize>(
    w: &mut (impl tokio::io::AsyncWrite + Unpin),
    value: &T,
    max: u32,
) -> Result<(), FrameError> {
    use tokio::io::AsyncWriteExt;
    let frame = encode(value, max)?;
    w.write_all(&frame).await.map_err(FrameError::Io)?;
    w.flush().await.map_err(FrameError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn round_trips_and_reports_partial_input() {
        let frame = encode(&json!({"a": 1, "text": "ünï & <x>"}), DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize, frame.len() - 4);
        for cut in 0..frame.len() {
            assert!(decode::<Value>(&frame[..cut], DEFAULT_MAX_FRAME).unwrap().is_none(), "cut at {cut}");
        }
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        let (value, used) = decode::<Value>(&two, DEFAULT_MAX_FRAME).unwrap().unwrap();
        assert_eq!(value["text"], "ünï & <x>");
        assert_eq!(used, frame.len());
    }

    #[test]
    fn oversized_frames_are_refused_before_allocation() {
        // A header announcing 4 GiB with no payload: refused from the header alone.
        let header = u32::MAX.to_le_bytes();
        assert!(matches!(decode::<Value>(&header, DEFAULT_MAX_FRAME), Err(FrameError::TooLarge { .. })));
        let mut reader: &[u8] = &header;
        assert!(matches!(read_frame::<Value>(&mut reader, DEFAULT_MAX_FRAME), Err(FrameError::TooLarge { .. })));
        let big = json!({"x": "y".repeat(100)});
        assert!(matches!(encode(&big, 50), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn truncated_and_malformed_frames_are_errors_not_hangs() {
        let frame = encode(&json!({"a": 1}), DEFAULT_MAX_FRAME).unwrap();
        let mut short: &[u8] = &frame[..frame.len() - 1];
        assert!(matches!(read_frame::<Value>(&mut short, DEFAULT_MAX_FRAME), Err(FrameError::Truncated)));
        let mut empty: &[u8] = &[];
        assert!(read_frame::<Value>(&mut empty, DEFAULT_MAX_FRAME).unwrap().is_none(), "clean close");
        let mut garbage = 3u32.to_le_bytes().to_vec();
        garbage.extend_from_slice(b"{{{");
        assert!(matches!(decode::<Value>(&garbage, DEFAULT_MAX_FRAME), Err(FrameError::Json(_))));
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn the_async_reader_takes_frames_in_pieces_and_refuses_what_the_blocking_one_refuses() {
        let frame = encode(&json!({"a": 1, "text": "ünï"}), DEFAULT_MAX_FRAME).unwrap();
        // Delivered a byte at a time, as a slow pipe may.
        let (mut client, mut server) = tokio::io::duplex(1);
        let sender = tokio::spawn({
            let frame = frame.clone();
            async move {
                write_frame_async(&mut client, &json!({"a": 1, "text": "ünï"}), DEFAULT_MAX_FRAME).await.map(|_| frame)
            }
        });
        let value: Value = read_frame_async(&mut server, DEFAULT_MAX_FRAME).await.unwrap().unwrap();
        assert_eq!(value["text"], "ünï");
        sender.await.unwrap().unwrap();
        assert!(read_frame_async::<Value>(&mut server, DEFAULT_MAX_FRAME).await.unwrap().is_none(), "clean close");

        let mut huge: &[u8] = &u32::MAX.to_le_bytes();
        assert!(matches!(
            read_frame_async::<Value>(&mut huge, DEFAULT_MAX_FRAME).await,
            Err(FrameError::TooLarge { .. })
        ));
        let mut short: &[u8] = &frame[..frame.len() - 1];
        assert!(matches!(read_frame_async::<Value>(&mut short, DEFAULT_MAX_FRAME).await, Err(FrameError::Truncated)));
        let mut half_header: &[u8] = &frame[..2];
        assert!(matches!(
            read_frame_async::<Value>(&mut half_header, DEFAULT_MAX_FRAME).await,
            Err(FrameError::Truncated)
        ));
    }
}
