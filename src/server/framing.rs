//! [`GuardedStream`]: the byte stream of one PostgreSQL connection, read through the protocol's own
//! framing so that a message's declared length is judged before any of its body is buffered.
//!
//! ```text
//! before the startup message:  { length: u32 (includes itself) | code: u32 | rest }
//! after it:                    { type: u8 | length: u32 (includes itself) | body }
//! ```
//!
//! Before authentication every message may be at most `max_startup_message` bytes (as
//! PostgreSQL's 10,000), after it `max_message`. A larger simple query (`Q`) is replaced by a
//! short one naming its size ([`too_large_query`]), its body read and dropped as it arrives,
//! so the session answers 54000 and goes on; any other oversized message ends the connection
//! with [`TooLarge`] before its body is read.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// SSLRequest and GSSENCRequest: another startup-style message follows them.
const SSL_REQUEST_CODE: u32 = 80877103;
const GSSENC_REQUEST_CODE: u32 = 80877104;

/// The text that replaces a simple query larger than the limit (its size follows).
pub const TOO_LARGE_MARKER: &str = "/*fleetdb: message too large: ";

/// The replacement for a `Q` message of `len` bytes.
fn too_large_query(len: usize) -> Vec<u8> {
    let text = format!("{TOO_LARGE_MARKER}{len} bytes*/");
    let mut m = Vec::with_capacity(text.len() + 6);
    m.push(b'Q');
    m.extend_from_slice(&((text.len() + 5) as u32).to_be_bytes());
    m.extend_from_slice(text.as_bytes());
    m.push(0);
    m
}

/// A message whose declared length is over its limit (or under the protocol's minimum).
#[derive(Debug)]
pub struct TooLarge {
    pub kind: u8,
    pub length: usize,
    pub limit: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.length < 4 {
            write!(f, "invalid message length {}", self.length)
        } else {
            write!(f, "message of {} bytes is larger than the limit of {} bytes", self.length, self.limit)
        }
    }
}

impl std::error::Error for TooLarge {}

#[derive(Clone, Copy, Debug)]
pub struct FrameLimits {
    pub max_startup_message: usize,
    pub max_message: usize,
}

enum State {
    /// Reading the 8-byte head of a startup-style message.
    Untyped { head: [u8; 8], have: usize },
    /// Reading the 5-byte head of a typed message.
    Typed { head: [u8; 5], have: usize },
    /// Passing `remaining` body bytes through, checking their structure if `check` has one.
    Body { remaining: usize, then_untyped: bool, check: Option<BodyCheck> },
    /// Dropping `remaining` body bytes of a replaced message.
    Discard { remaining: usize },
}

pub struct GuardedStream<S> {
    inner: S,
    state: State,
    limits: FrameLimits,
    /// Set once the client has authenticated (by the connection loop).
    authenticated: Arc<AtomicBool>,
    /// Bytes ready for the reader (from the inner stream, or a replacement message).
    ready: Vec<u8>,
    taken: usize,
}

impl<S> GuardedStream<S> {
    pub fn new(inner: S, limits: FrameLimits, authenticated: Arc<AtomicBool>) -> GuardedStream<S> {
        GuardedStream {
            inner,
            state: State::Untyped { head: [0; 8], have: 0 },
            limits,
            authenticated,
            ready: Vec::new(),
            taken: 0,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Runs `input` through the framing into `self.ready`.
    fn feed(&mut self, mut input: &[u8]) -> io::Result<()> {
        while !input.is_empty() {
            match &mut self.state {
                State::Untyped { head, have } => {
                    let n = (8 - *have).min(input.len());
                    head[*have..*have + n].copy_from_slice(&input[..n]);
                    *have += n;
                    input = &input[n..];
                    if *have == 8 {
                        let length = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
                        let code = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
                        if !(8..=self.limits.max_startup_message).contains(&length) {
                            return Err(too_large(0, length, self.limits.max_startup_message));
                        }
                        self.ready.extend_from_slice(&head[..]);
                        let then_untyped = code == SSL_REQUEST_CODE || code == GSSENC_REQUEST_CODE;
                        self.state = State::Body { remaining: length - 8, then_untyped, check: None };
                    }
                }
                State::Typed { head, have } => {
                    let n = (5 - *have).min(input.len());
                    head[*have..*have + n].copy_from_slice(&input[..n]);
                    *have += n;
                    input = &input[n..];
                    if *have == 5 {
                        let kind = head[0];
                        let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
                        let limit = if self.authenticated.load(Ordering::Relaxed) && kind != b'p' {
                            self.limits.max_message
                        } else {
                            self.limits.max_startup_message
                        };
                        if length < 4 {
                            return Err(too_large(kind, length, limit));
                        }
                        if length > limit {
                            if kind != b'Q' || !self.authenticated.load(Ordering::Relaxed) {
                                return Err(too_large(kind, length, limit));
                            }
                            self.ready.extend_from_slice(&too_large_query(length + 1));
                            self.state = State::Discard { remaining: length - 4 };
                        } else {
                            self.ready.extend_from_slice(&head[..]);
                            let check = BodyCheck::of(kind);
                            if length == 4
                                && let Some(c) = &check
                            {
                                c.at_end(kind)?;
                            }
                            self.state = State::Body { remaining: length - 4, then_untyped: false, check };
                        }
                    }
                }
                State::Body { remaining, check, .. } => {
                    let n = (*remaining).min(input.len());
                    if let Some(c) = check.as_mut() {
                        c.feed(&input[..n]).map_err(|why| malformed(c.kind, why))?;
                        if n == *remaining {
                            c.at_end(c.kind)?;
                        }
                    }
                    self.ready.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    *remaining -= n;
                }
                State::Discard { remaining } => {
                    let n = (*remaining).min(input.len());
                    input = &input[n..];
                    *remaining -= n;
                }
            }
            // A message ends: the next head.
            match self.state {
                State::Body { remaining: 0, then_untyped: true, .. } => {
                    self.state = State::Untyped { head: [0; 8], have: 0 };
                }
                State::Body { remaining: 0, then_untyped: false, .. } | State::Discard { remaining: 0 } => {
                    self.state = State::Typed { head: [0; 5], have: 0 };
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Runs `input` through the framing in pieces of `piece` bytes (for the fuzz target and
/// tests): what the server's decoder would be given, or the error that ends the connection.
pub fn frame_in_pieces(input: &[u8], piece: usize, limits: FrameLimits, authenticated: bool) -> io::Result<Vec<u8>> {
    let mut g = GuardedStream::new((), limits, Arc::new(AtomicBool::new(authenticated)));
    if authenticated {
        g.state = State::Typed { head: [0; 5], have: 0 };
    }
    for c in input.chunks(piece.max(1)) {
        g.feed(c)?;
    }
    Ok(g.ready)
}

/// Decodes `bytes` as the server does (startup-style messages first, then typed ones),
/// returning how many messages came out before the end or the first error. Bytes that came
/// through the framing never make it panic (checked by the fuzz target); raw bytes can (pgwire
/// reads past a Bind's or Parse's end), which is why the framing checks those messages.
pub fn decode_all(bytes: &[u8]) -> usize {
    use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};
    let mut buf = bytes::BytesMut::from(bytes);
    let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
    let mut n = 0;
    while let Ok(Some(m)) = PgWireFrontendMessage::decode(&mut buf, &ctx) {
        n += 1;
        if matches!(m, PgWireFrontendMessage::SslNegotiation(_)) && ctx.awaiting_frontend_ssl {
            ctx.awaiting_frontend_ssl = false;
            continue;
        }
        ctx.awaiting_frontend_ssl = false;
        ctx.awaiting_frontend_startup = false;
        if n > 1_000_000 {
            break;
        }
    }
    n
}

/// A message whose body does not have its kind's structure (a count that runs past its end,
/// a name without its terminator, bytes left over): the connection ends with 08P01, as
/// PostgreSQL ends it, before the decoder sees the message.
#[derive(Debug)]
pub struct Malformed {
    pub kind: u8,
    pub why: &'static str,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid message format: {} message {}", self.kind as char, self.why)
    }
}

impl std::error::Error for Malformed {}

fn malformed(kind: u8, why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Malformed { kind, why })
}

/// The [`Malformed`] inside an I/O error, if that is what it is.
pub fn as_malformed(e: &io::Error) -> Option<&Malformed> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Malformed>())
}

/// What the body of an extended-protocol message must hold, read as its bytes stream past
/// (nothing is buffered but a number's four bytes):
///
/// ```text
/// Parse     P  name\0 query\0 n:u16 { oid:u32 }×n
/// Bind      B  portal\0 statement\0 f:u16 { format:i16 }×f p:u16 { len:i32 (-1: NULL) bytes×len }×p r:u16 { format:i16 }×r
/// Describe  D  'S'|'P' name\0            Close  C  'S'|'P' name\0
/// Execute   E  portal\0 max_rows:i32     Sync S, Flush H: empty
/// ```
#[derive(Debug)]
pub(crate) struct BodyCheck {
    kind: u8,
    /// Which field of the message comes next.
    step: u8,
    want: Want,
    num: [u8; 4],
    have: usize,
    /// Parameter values still to come (Bind).
    params: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// A name ending in NUL.
    CStr,
    /// A big-endian number of 1, 2 or 4 bytes.
    Num(usize),
    /// Bytes taken as they are.
    Skip(usize),
    /// The end of the message.
    End,
}

impl BodyCheck {
    pub(crate) fn of(kind: u8) -> Option<BodyCheck> {
        let want = match kind {
            b'P' | b'B' | b'E' => Want::CStr,
            b'D' | b'C' => Want::Num(1),
            b'S' | b'H' => Want::End,
            _ => return None,
        };
        Some(BodyCheck { kind, step: 0, want, num: [0; 4], have: 0, params: 0 })
    }

    /// Fails unless the message may end here.
    fn at_end(&self, kind: u8) -> io::Result<()> {
        if self.want == Want::End { Ok(()) } else { Err(malformed(kind, "ends before its last field")) }
    }

    fn feed(&mut self, mut input: &[u8]) -> Result<(), &'static str> {
        while !input.is_empty() {
            match self.want {
                Want::End => return Err("has bytes after its last field"),
                Want::CStr => match input.iter().position(|&b| b == 0) {
                    Some(i) => {
                        input = &input[i + 1..];
                        self.next(0)?;
                    }
                    None => input = &[],
                },
                Want::Skip(n) => {
                    let k = n.min(input.len());
                    input = &input[k..];
                    self.want = Want::Skip(n - k);
                    if k == n {
                        self.next(0)?;
                    }
                }
                Want::Num(width) => {
                    let k = (width - self.have).min(input.len());
                    self.num[self.have..self.have + k].copy_from_slice(&input[..k]);
                    self.have += k;
                    input = &input[k..];
                    if self.have == width {
                        let v = match width {
                            1 => i64::from(self.num[0]),
                            2 => i64::from(u16::from_be_bytes([self.num[0], self.num[1]])),
                            _ => i64::from(i32::from_be_bytes(self.num)),
                        };
                        self.have = 0;
                        self.next(v)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves past the field just read (a number's value in `v`) to the next one.
    fn next(&mut self, v: i64) -> Result<(), &'static str> {
        // `items` of `size` bytes, then `then`; nothing to skip when there are none.
        let (step, want) = match (self.kind, self.step) {
            (b'P', 0) => (1, Want::CStr),
            (b'P', 1) => (2, Want::Num(2)),
            (b'P', 2) if v > 0 => (3, Want::Skip(v as usize * 4)),
            (b'P', _) => (3, Want::End),
            (b'D' | b'C', 0) if v == i64::from(b'S') || v == i64::from(b'P') => (1, Want::CStr),
            (b'D' | b'C', 0) => return Err("names neither a statement (S) nor a portal (P)"),
            (b'D' | b'C', _) => (2, Want::End),
            (b'E', 0) => (1, Want::Num(4)),
            (b'E', _) => (2, Want::End),
            (b'B', 0) => (1, Want::CStr),
            (b'B', 1) => (2, Want::Num(2)),
            (b'B', 2) if v > 0 => (3, Want::Skip(v as usize * 2)),
            (b'B', 2 | 3) => (4, Want::Num(2)),
            (b'B', 4) => {
                self.params = v as u32;
                return self.next_param();
            }
            // A value's length: -1 is NULL, 0 empty.
            (b'B', 5) if v > 0 => (6, Want::Skip(v as usize)),
            (b'B', 5) if v < -1 => return Err("gives a parameter a negative length other than -1"),
            (b'B', 5 | 6) => return self.next_param(),
            (b'B', 7) if v > 0 => (8, Want::Skip(v as usize * 2)),
            (b'B', _) => (8, Want::End),
            _ => (self.step, Want::End),
        };
        self.step = step;
        self.want = want;
        Ok(())
    }

    /// The next parameter value's length, or the count of result formats after the last.
    fn next_param(&mut self) -> Result<(), &'static str> {
        if self.params == 0 {
            self.step = 7;
        } else {
            self.params -= 1;
            self.step = 5;
        }
        self.want = Want::Num(if self.step == 7 { 2 } else { 4 });
        Ok(())
    }
}

fn too_large(kind: u8, length: usize, limit: usize) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TooLarge { kind, length, limit })
}

/// The [`TooLarge`] inside an I/O error, if that is what it is.
pub fn as_too_large(e: &io::Error) -> Option<&TooLarge> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<TooLarge>())
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        loop {
            if me.taken < me.ready.len() {
                let n = (me.ready.len() - me.taken).min(buf.remaining());
                buf.put_slice(&me.ready[me.taken..me.taken + n]);
                me.taken += n;
                if me.taken == me.ready.len() {
                    me.ready.clear();
                    me.taken = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut me.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let got = rb.filled();
                    if got.is_empty() {
                        return Poll::Ready(Ok(())); // end of stream
                    }
                    let got = got.to_vec();
                    me.feed(&got)?;
                    // Everything read may have been held back or dropped: read on.
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(auth: bool) -> GuardedStream<()> {
        let limits = FrameLimits { max_startup_message: 100, max_message: 1000 };
        let mut f = GuardedStream::new((), limits, Arc::new(AtomicBool::new(auth)));
        f.state = State::Typed { head: [0; 5], have: 0 };
        f
    }

    fn typed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn messages_within_the_limit_pass_byte_for_byte_whatever_the_pieces() {
        let mut all = Vec::new();
        all.extend(typed(b'Q', b"SELECT 1\0"));
        all.extend(typed(b'S', b""));
        all.extend(typed(b'P', &[&[b'x'; 400][..], b"\0", &[b'y'; 494], b"\0\0\0"].concat()));
        for piece in [1, 3, 5, 7, 64, 10_000] {
            let mut f = framed(true);
            for c in all.chunks(piece) {
                f.feed(c).unwrap();
            }
            assert_eq!(f.ready, all, "pieces of {piece}");
        }
    }

    #[test]
    fn an_oversized_query_is_replaced_and_its_body_dropped() {
        let mut f = framed(true);
        let mut input = typed(b'Q', &[b' '; 5000]);
        input.extend(typed(b'Q', b"SELECT 2\0"));
        for c in input.chunks(333) {
            f.feed(c).unwrap();
        }
        let mut want = too_large_query(5005);
        want.extend(typed(b'Q', b"SELECT 2\0"));
        assert_eq!(f.ready, want);
    }

    #[test]
    fn oversized_messages_before_authentication_and_bad_lengths_are_refused_at_their_head() {
        let mut f = framed(false);
        let e = f.feed(&[b'Q', 0x40, 0, 0, 0]).unwrap_err();
        assert_eq!(as_too_large(&e).map(|t| (t.kind, t.length, t.limit)), Some((b'Q', 1 << 30, 100)));
        assert!(f.ready.is_empty());
        let mut f = framed(true);
        assert!(f.feed(&[b'P', 0, 0, 0x10, 0]).is_err());
        let mut f = framed(true);
        assert!(as_too_large(&f.feed(&[b'S', 0, 0, 0, 2]).unwrap_err()).is_some());
        // A password message keeps the small limit after authentication too.
        let mut f = framed(true);
        assert!(f.feed(&[b'p', 0, 0, 1, 0]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn framing_does_not_depend_on_how_the_bytes_arrive(
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            piece in 1usize..64,
            auth in proptest::prelude::any::<bool>(),
        ) {
            let limits = FrameLimits { max_startup_message: 300, max_message: 2000 };
            let whole = frame_in_pieces(&input, input.len(), limits, auth).map_err(|e| e.to_string());
            let pieces = frame_in_pieces(&input, piece, limits, auth).map_err(|e| e.to_string());
            proptest::prop_assert_eq!(&whole, &pieces);
            if let Ok(out) = whole {
                decode_all(&out);
            }
        }
    }

    #[test]
    fn extended_protocol_messages_are_checked_field_by_field_whatever_the_pieces() {
        let bind_ok = [
            &b"portal\0stmt\0"[..],
            &[0, 2, 0, 0, 0, 1],             // two parameter formats
            &[0, 3],                         // three values:
            &[0, 0, 0, 3, b'a', b'b', b'c'], //   "abc"
            &[0xff, 0xff, 0xff, 0xff],       //   NULL
            &[0, 0, 0, 0],                   //   ""
            &[0, 1, 0, 1],                   // one result format
        ]
        .concat();
        let good = [
            typed(b'P', b"s1\0SELECT $1\0\0\x01\0\0\0\x17"),
            typed(b'P', b"\0SELECT 1\0\0\0"),
            typed(b'B', &bind_ok),
            typed(b'B', b"\0\0\0\0\0\0\0\0"),
            typed(b'D', b"Ss1\0"),
            typed(b'C', b"P\0"),
            typed(b'E', b"\0\0\0\0\0"),
            typed(b'S', b""),
            typed(b'H', b""),
        ];
        for m in &good {
            for piece in [1, 2, 3, 100] {
                let mut f = framed(true);
                for c in m.chunks(piece) {
                    f.feed(c).unwrap_or_else(|e| panic!("{m:?} in pieces of {piece}: {e}"));
                }
                assert_eq!(&f.ready, m);
                assert_eq!(decode_all(&[startup(), m.clone()].concat()), decode_all(&startup()) + 1);
            }
        }
        let bad: [(u8, &[u8], &str); 12] = [
            (b'B', b"", "ends before its last field"),
            (b'B', b"\0", "ends before its last field"),
            (b'B', b"\0\0\0\x05", "ends before its last field"),
            (b'B', b"\0\0\0\0\0\x01\xff\xff\xff\xf0\0\0", "negative length"),
            (b'B', b"\0\0\0\0\0\x01\0\0\0\x10ab\0\0", "ends before its last field"),
            (b'B', b"\0\0\0\0\0\0\0\0x", "bytes after its last field"),
            (b'P', b"", "ends before its last field"),
            (b'P', b"s\0q\0\0\x02\0\0\0\x17", "ends before its last field"),
            (b'D', b"X\0", "neither a statement"),
            (b'C', b"S", "ends before its last field"),
            (b'E', b"\0\0\0", "ends before its last field"),
            (b'S', b"x", "bytes after its last field"),
        ];
        for (kind, body, why) in bad {
            let m = typed(kind, body);
            let mut f = framed(true);
            let e = m.chunks(2).try_for_each(|c| f.feed(c)).unwrap_err();
            let got = as_malformed(&e).map(|m| m.to_string()).unwrap_or_default();
            assert!(got.contains(why) && got.starts_with("invalid message format"), "{kind} {body:?}: {e}");
            // Unchecked, the decoder would have been handed it (and some of these panic it).
            assert!(!f.ready.ends_with(&m) || m.len() <= 5);
        }
    }

    #[test]
    fn whatever_passes_the_framing_decodes_without_a_panic() {
        let bodies: [&[u8]; 8] =
            [b"", b"\0", b"\0\0", b"\0\0\0", b"\xff\xff\xff\xff", b"S", b"x\0\xff", b"\0\0\0\0\0\x01"];
        for kind in 0..=255u8 {
            for body in bodies {
                let m = typed(kind, body);
                let Ok(out) = frame_in_pieces(&m, 1, FrameLimits { max_startup_message: 100, max_message: 1000 }, true)
                else {
                    continue;
                };
                let r = std::panic::catch_unwind(|| decode_all(&[startup(), out].concat()));
                assert!(r.is_ok(), "{} {body:?} passed the framing and panicked the decoder", kind as char);
            }
        }
    }

    fn startup() -> Vec<u8> {
        [&17u32.to_be_bytes()[..], &196608u32.to_be_bytes(), b"user\0me\0\0"].concat()
    }

    #[test]
    fn startup_messages_are_bounded_and_an_ssl_request_is_followed_by_another() {
        let limits = FrameLimits { max_startup_message: 100, max_message: 1000 };
        let mut f = GuardedStream::new((), limits, Arc::new(AtomicBool::new(false)));
        let mut input = Vec::new();
        input.extend_from_slice(&8u32.to_be_bytes());
        input.extend_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
        let startup = [&20u32.to_be_bytes()[..], &196608u32.to_be_bytes(), b"user\0me\0\0\0\0\0"].concat();
        input.extend_from_slice(&startup[..20]);
        input.extend(typed(b'p', b"secret\0"));
        f.feed(&input).unwrap();
        assert_eq!(f.ready, input);
        let mut f = GuardedStream::new((), limits, Arc::new(AtomicBool::new(false)));
        assert!(f.feed(&[0, 0x10, 0, 0, 0, 3, 0, 0]).is_err());
    }
}
