//! Server-sent events framing: an incremental decoder that turns arbitrary byte chunks into
//! whole events without ever holding more than one event in memory.

use bytes::{Bytes, BytesMut};

/// An event larger than this is treated as a broken stream, which bounds memory per stream.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// One complete event, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseFrame {
    /// The event's bytes including its terminating blank line, for verbatim forwarding.
    pub raw: Bytes,
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`; `None` for comment-only frames (keep-alives).
    pub data: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    #[error("an event exceeded {MAX_EVENT_BYTES} bytes")]
    EventTooLarge,
}

#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: BytesMut,
    /// Bytes of `buf` already scanned for a terminator, so each byte is scanned once.
    scanned: usize,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes; returns the events they complete.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseFrame>, SseError> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.find_terminator() {
            let raw = self.buf.split_to(end).freeze();
            self.scanned = 0;
            out.push(parse_frame(raw));
        }
        if self.buf.len() > MAX_EVENT_BYTES {
            return Err(SseError::EventTooLarge);
        }
        Ok(out)
    }

    /// Whatever is left when the stream ends without a final blank line.
    pub fn finish(&mut self) -> Option<SseFrame> {
        let rest = self.buf.split().freeze();
        self.scanned = 0;
        let trimmed = rest.iter().all(|b| b.is_ascii_whitespace());
        (!trimmed).then(|| parse_frame(rest))
    }

    /// Index just past the first blank line (`\n\n`, `\r\n\r\n` or `\r\r`).
    fn find_terminator(&mut self) -> Option<usize> {
        let b = &self.buf[..];
        let start = self.scanned.saturating_sub(3);
        // Only line ends can end an event: jump from one to the next.
        for i in memchr::memchr2_iter(b'\n', b'\r', &b[start..]).map(|i| i + start) {
            if b[i] == b'\n' && i >= 1 && b[i - 1] == b'\n' {
                return Some(i + 1);
            }
            if b[i] == b'\n' && i >= 3 && &b[i - 3..i] == b"\r\n\r" {
                return Some(i + 1);
            }
            if b[i] == b'\r' && i >= 1 && b[i - 1] == b'\r' && b.get(i + 1) != Some(&b'\n') {
                return Some(i + 1);
            }
        }
        self.scanned = b.len();
        None
    }
}

fn parse_frame(raw: Bytes) -> SseFrame {
    let text = match std::str::from_utf8(&raw) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(&raw),
    };
    let mut event = None;
    let mut data: Option<String> = None;
    let mut rest = &text[..];
    while !rest.is_empty() {
        let end = memchr::memchr2(b'\n', b'\r', rest.as_bytes()).unwrap_or(rest.len());
        let line = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    SseFrame { raw, event, data }
}

/// Frames `data` as one SSE event (`data: …\n\n`), splitting lines as the format requires.
pub fn data_frame(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 8);
    for line in data.split(|&b| b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"\n");
    out.freeze()
}

/// An SSE event with an `event:` name, as Anthropic's stream uses.
pub fn named_frame(event: &str, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + event.len() + 16);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\n");
    out.extend_from_slice(&data_frame(data));
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_any_chunk_boundary_are_reassembled() {
        let stream = b"data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\n: keep-alive\n\nevent: done\ndata: [DONE]\n\n";
        for split in 1..stream.len() {
            let mut d = SseDecoder::new();
            let mut frames = d.push(&stream[..split]).unwrap();
            frames.extend(d.push(&stream[split..]).unwrap());
            let data: Vec<_> = frames.iter().map(|f| f.data.clone()).collect();
            assert_eq!(
                data,
                vec![
                    Some("{\"a\":1}".to_owned()),
                    Some("{\"b\":2}".to_owned()),
                    None,
                    Some("[DONE]".to_owned())
                ],
                "split at {split}"
            );
            assert_eq!(frames[3].event.as_deref(), Some("done"));
            assert_eq!(d.finish(), None);
        }
    }

    #[test]
    fn multi_line_data_is_joined_and_unterminated_tail_is_returned() {
        let mut d = SseDecoder::new();
        assert!(d.push(b"data: a\ndata: b\n\ndata: tail").unwrap().len() == 1);
        assert_eq!(d.finish().unwrap().data.as_deref(), Some("tail"));
        assert_eq!(&data_frame(b"x\ny")[..], b"data: x\ndata: y\n\n");
    }

    #[test]
    fn an_endless_event_is_an_error_not_unbounded_memory() {
        let mut d = SseDecoder::new();
        let chunk = vec![b'x'; 1024 * 1024];
        let mut result = Ok(vec![]);
        for _ in 0..9 {
            result = d.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::EventTooLarge));
    }
}
