//! TDS packet framing: messages split into packets of at most the negotiated size, each with
//! the 8-byte header, the last one carrying the end-of-message (EOM) status bit; plus the
//! adapter that carries the TLS handshake inside PRELOGIN packets.
//!
//! Why the adapter: before TDS 8.0, SQL Server negotiates TLS *inside* the TDS stream. The
//! TLS handshake records travel as the payload of PRELOGIN (0x12) packets; once the handshake
//! is done, TLS records flow directly on the TCP connection and the TDS packets travel inside
//! TLS. A stock TLS library only sees a byte stream, so [`PreloginFraming`] strips and adds
//! the packet headers while the handshake lasts, then becomes a pass-through.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Size of a packet header.
pub(crate) const HEADER_LEN: usize = 8;
/// Packet size before LOGIN7 negotiates another (MS-TDS: 4096).
pub(crate) const DEFAULT_PACKET_SIZE: usize = 4096;
/// Largest message the fake accepts (a few 10 MB values are plenty for tests).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Packet types the fake knows (MS-TDS 2.2.3.1.1).
pub(crate) mod kind {
    pub(crate) const SQL_BATCH: u8 = 0x01;
    pub(crate) const RPC: u8 = 0x03;
    pub(crate) const TABULAR_RESULT: u8 = 0x04;
    pub(crate) const ATTENTION: u8 = 0x06;
    pub(crate) const TRANSACTION_MANAGER: u8 = 0x0E;
    pub(crate) const LOGIN7: u8 = 0x10;
    pub(crate) const PRELOGIN: u8 = 0x12;
}

/// Status bits (MS-TDS 2.2.3.1.2).
const STATUS_EOM: u8 = 0x01;
const STATUS_IGNORE: u8 = 0x02;

/// Any byte stream a session runs on: plain TCP or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One complete client message (all its packets' payloads joined).
#[derive(Debug)]
pub(crate) struct Message {
    pub kind: u8,
    pub payload: Vec<u8>,
    /// The client set the IGNORE bit: the message must be discarded.
    pub ignore: bool,
}

/// Reads one message. `Ok(None)` is a clean end of stream between messages. Packets longer
/// than `max_packet` or a message mixing packet types are protocol errors (`InvalidData`).
pub(crate) async fn read_message(io: &mut (impl AsyncRead + Unpin), max_packet: usize) -> io::Result<Option<Message>> {
    let mut payload = Vec::new();
    let mut first_kind = None;
    loop {
        let mut header = [0u8; HEADER_LEN];
        if let Err(e) = io.read_exact(&mut header).await {
            if e.kind() == io::ErrorKind::UnexpectedEof && first_kind.is_none() {
                return Ok(None);
            }
            return Err(e);
        }
        let kind = header[0];
        let status = header[1];
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if len < HEADER_LEN || len > max_packet {
            return Err(invalid(format!("packet length {len} outside 8..={max_packet}")));
        }
        match first_kind {
            None => first_kind = Some(kind),
            Some(k) if k != kind => {
                return Err(invalid(format!("packet type 0x{kind:02X} inside a 0x{k:02X} message")));
            }
            Some(_) => {}
        }
        let start = payload.len();
        if start + len - HEADER_LEN > MAX_MESSAGE {
            return Err(invalid(format!("message longer than {MAX_MESSAGE} bytes")));
        }
        payload.resize(start + len - HEADER_LEN, 0);
        io.read_exact(&mut payload[start..]).await?;
        if status & STATUS_EOM != 0 {
            return Ok(Some(Message { kind, payload, ignore: status & STATUS_IGNORE != 0 }));
        }
    }
}

/// Writes `payload` as one message of packets of at most `packet_size` bytes, then flushes.
pub(crate) async fn write_message(
    io: &mut (impl AsyncWrite + Unpin),
    kind: u8,
    payload: &[u8],
    packet_size: usize,
    spid: u16,
) -> io::Result<()> {
    let bytes = frame(kind, payload, packet_size, spid);
    io.write_all(&bytes).await?;
    io.flush().await
}

/// Frames `payload` into packets (an empty payload is one header-only packet).
pub(crate) fn frame(kind: u8, payload: &[u8], packet_size: usize, spid: u16) -> Vec<u8> {
    let room = packet_size.saturating_sub(HEADER_LEN).max(1);
    let count = payload.len().div_ceil(room).max(1);
    let mut out = Vec::with_capacity(payload.len() + count * HEADER_LEN);
    let mut chunks = payload.chunks(room).peekable();
    let mut id: u8 = 1;
    if chunks.peek().is_none() {
        push_header(&mut out, kind, STATUS_EOM, HEADER_LEN, spid, id);
        return out;
    }
    while let Some(chunk) = chunks.next() {
        let status = if chunks.peek().is_none() { STATUS_EOM } else { 0 };
        push_header(&mut out, kind, status, HEADER_LEN + chunk.len(), spid, id);
        out.extend_from_slice(chunk);
        id = id.wrapping_add(1);
    }
    out
}

fn push_header(out: &mut Vec<u8>, kind: u8, status: u8, len: usize, spid: u16, id: u8) {
    // `len` never exceeds the packet size, which is at most 32767.
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    out.push(kind);
    out.push(status);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&spid.to_be_bytes());
    out.push(id);
    out.push(0);
}

pub(crate) fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Carries TLS records inside PRELOGIN packets while `framing` is on, and passes bytes
/// through unchanged once it is turned off (after the handshake).
pub(crate) struct PreloginFraming<S> {
    inner: S,
    framing: bool,
    header: [u8; HEADER_LEN],
    header_len: usize,
    /// Payload bytes of the current incoming PRELOGIN packet not yet handed to TLS.
    remaining: usize,
    /// TLS bytes written but not yet framed (framed on flush, like SQL Server does per flight).
    pending: Vec<u8>,
    /// Framed bytes being written to `inner`.
    out: Vec<u8>,
    out_pos: usize,
}

impl<S> PreloginFraming<S> {
    pub(crate) fn new(inner: S) -> Self {
        PreloginFraming {
            inner,
            framing: true,
            header: [0; HEADER_LEN],
            header_len: 0,
            remaining: 0,
            pending: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
        }
    }

    /// The handshake is complete: from now on bytes pass through.
    pub(crate) fn handshake_done(&mut self) {
        self.framing = false;
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> PreloginFraming<S> {
    fn poll_drain_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PreloginFraming<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.framing {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        while this.remaining == 0 {
            while this.header_len < HEADER_LEN {
                let mut rb = ReadBuf::new(&mut this.header[this.header_len..]);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
                let n = rb.filled().len();
                if n == 0 {
                    return Poll::Ready(Ok(()));
                }
                this.header_len += n;
            }
            this.header_len = 0;
            if this.header[0] != kind::PRELOGIN {
                return Poll::Ready(Err(invalid(format!(
                    "packet type 0x{:02X} during the TLS handshake (expected PRELOGIN)",
                    this.header[0]
                ))));
            }
            let len = usize::from(u16::from_be_bytes([this.header[2], this.header[3]]));
            this.remaining = len
                .checked_sub(HEADER_LEN)
                .ok_or_else(|| invalid(format!("PRELOGIN packet length {len} shorter than its header")))?;
        }
        let max = this.remaining.min(buf.remaining());
        let dst = buf.initialize_unfilled_to(max);
        let mut rb = ReadBuf::new(dst);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        buf.advance(n);
        this.remaining -= n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PreloginFraming<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if !this.framing {
            ready!(this.poll_drain_out(cx))?;
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        this.pending.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.pending.is_empty() {
            let framed = frame(kind::PRELOGIN, &this.pending, DEFAULT_PACKET_SIZE, 0);
            this.out.extend_from_slice(&framed);
            this.pending.clear();
        }
        ready!(this.poll_drain_out(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_at_packet_size_with_eom_on_last() {
        let payload = vec![7u8; 10];
        let out = frame(kind::TABULAR_RESULT, &payload, 12, 51);
        // 4 payload bytes per packet: 3 packets.
        assert_eq!(out.len(), 10 + 3 * HEADER_LEN);
        assert_eq!(&out[..8], &[0x04, 0x00, 0x00, 12, 0x00, 51, 1, 0]);
        assert_eq!(out[12 + 1], 0x00);
        assert_eq!(&out[24..32], &[0x04, 0x01, 0x00, 10, 0x00, 51, 3, 0]);
        assert_eq!(frame(kind::TABULAR_RESULT, &[], 4096, 0), vec![0x04, 0x01, 0, 8, 0, 0, 1, 0]);
    }

    #[tokio::test]
    async fn reads_multi_packet_message() {
        let mut bytes = frame(kind::SQL_BATCH, &[1, 2, 3, 4, 5], 10, 0);
        bytes.extend(frame(kind::ATTENTION, &[], 10, 0));
        let mut reader = &bytes[..];
        let m = read_message(&mut reader, 10).await.unwrap().unwrap();
        assert_eq!((m.kind, m.payload, m.ignore), (kind::SQL_BATCH, vec![1, 2, 3, 4, 5], false));
        let m = read_message(&mut reader, 10).await.unwrap().unwrap();
        assert_eq!((m.kind, m.payload.len()), (kind::ATTENTION, 0));
        assert!(read_message(&mut reader, 10).await.unwrap().is_none());
        let big = frame(kind::SQL_BATCH, &[0; 20], 30, 0);
        assert!(read_message(&mut &big[..], 16).await.is_err());
    }
}
