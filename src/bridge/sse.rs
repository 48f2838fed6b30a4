//! Server-sent events as MCP's HTTP transports use them (WHATWG HTML, "Server-sent events",
//! the event stream format): `data` lines joined into one message, the `id` kept for
//! `Last-Event-ID` when a stream is reopened, the `retry` delay, the event type (`endpoint` of
//! the 2024-11-05 HTTP+SSE transport, `message` for the rest).
//!
//! The reader puts an event's data straight into the caller's buffer, a line at a time, and
//! holds nothing else of the size of a message: one event costs its own size in memory, and
//! an event over the limit is skipped past, keeping only its first bytes. Lines end with LF
//! or CRLF; a CR alone (which the format also allows as a line end, and no MCP server we know
//! sends) stays in the line. Fuzzed.

use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use super::budget::{Budget, Held};

/// The most of a field other than `data` kept (event types, ids, retry delays).
const FIELD_LIMIT: usize = 1024;

/// How much of an event over the limit is kept: enough to read the message's `id`, which
/// JSON-RPC messages carry near their start.
pub const KEPT_OF_TOO_LARGE: usize = 4096;

/// One event's description; its data is [`EventReader::data`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event type (`message` when the stream names none).
    pub event: String,
    /// Why its data is cut to its first [`KEPT_OF_TOO_LARGE`] bytes, when it is.
    pub cut: Option<Cut>,
}

/// Why an event's data was not kept whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// It is larger than the reader's limit.
    TooLarge,
    /// The buffers of the reader's budget (every answer the bridge holds) are full.
    NoRoom,
}

/// Reads an event stream, an event at a time, into a buffer of its own.
#[derive(Debug)]
pub struct EventReader<R> {
    input: R,
    limit: usize,
    data: Held,
    last_id: Option<String>,
    retry: Option<Duration>,
    started: bool,
}

impl<R: BufRead> EventReader<R> {
    /// A reader of `input` that refuses event data over `limit` bytes.
    pub fn new(input: R, limit: usize) -> EventReader<R> {
        EventReader {
            input,
            limit,
            data: Held::new(None),
            last_id: None,
            retry: None,
            started: false,
        }
    }

    /// The same, its data buffer drawing on `budget`.
    pub fn with_budget(input: R, limit: usize, budget: Arc<Budget>) -> EventReader<R> {
        EventReader {
            data: Held::new(Some(budget)),
            ..EventReader::new(input, limit)
        }
    }

    /// Reads the next event with data; `None` at the end of the stream (an event not ended
    /// by a blank line is dropped, as the format says). Its data is then [`data`](Self::data),
    /// until the next call.
    ///
    /// # Errors
    /// When reading fails.
    ///
    /// ```
    /// use mcp_oauth_client::bridge::sse::EventReader;
    /// let stream = b": hi\nid: 7\ndata: {\"a\":\ndata: 1}\n\nevent: endpoint\ndata: /messages?s=1\n\n";
    /// let mut reader = EventReader::new(&stream[..], 1024);
    /// let first = reader.next_event().unwrap().unwrap();
    /// assert_eq!((first.event.as_str(), reader.data()), ("message", &b"{\"a\":\n1}"[..]));
    /// assert_eq!(reader.last_event_id(), Some("7"));
    /// assert_eq!(reader.next_event().unwrap().unwrap().event, "endpoint");
    /// assert!(reader.next_event().unwrap().is_none());
    /// ```
    pub fn next_event(&mut self) -> std::io::Result<Option<Event>> {
        self.data.reset();
        if !self.started {
            self.started = true;
            skip_bom(&mut self.input)?;
        }
        let mut has_data = false;
        let mut cut = None;
        let mut event = None;
        let mut field = Vec::new();
        loop {
            field.clear();
            let end = read_until_limited(&mut self.input, b":\n", &mut field, FIELD_LIMIT)?;
            let name = strip_cr(&field).to_vec();
            match end {
                End::Eof => return Ok(None),
                End::Limit => {
                    skip_line(&mut self.input)?;
                    continue;
                }
                End::Newline if name.is_empty() => {
                    // A blank line ends the event, if it has data.
                    if has_data {
                        let event = event.unwrap_or_else(|| "message".to_owned());
                        return Ok(Some(Event { event, cut }));
                    }
                    event = None;
                    continue;
                }
                End::Newline if name == b"data" => {
                    // `data` with no value: an empty line of data.
                    self.data_line_break(&mut has_data, &mut cut);
                    continue;
                }
                End::Newline => {
                    self.field(&name, b"", &mut event);
                    continue;
                }
                End::Colon if name.is_empty() => {
                    // A comment.
                    skip_line(&mut self.input)?;
                    continue;
                }
                End::Colon => {}
            }
            if self.input.fill_buf()?.first() == Some(&b' ') {
                self.input.consume(1);
            }
            if name == b"data" {
                self.data_line_break(&mut has_data, &mut cut);
                if !self.data_line(&mut cut)? {
                    return Ok(None);
                }
            } else {
                let mut value = Vec::new();
                match read_until_limited(&mut self.input, b"\n", &mut value, FIELD_LIMIT)? {
                    // A value this long is no id, type or delay of ours.
                    End::Limit => skip_line(&mut self.input)?,
                    End::Eof => return Ok(None),
                    _ => self.field(&name, strip_cr(&value), &mut event),
                }
            }
        }
    }

    /// The data of the event [`next_event`](Self::next_event) read last.
    pub fn data(&self) -> &[u8] {
        self.data.bytes()
    }

    /// The same, to change in place (say, to put it on one line).
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.data.bytes_mut()
    }

    /// Starts a `data` line: the line feed between it and the one before.
    fn data_line_break(&mut self, has_data: &mut bool, cut: &mut Option<Cut>) {
        if std::mem::replace(has_data, true) {
            self.keep(b"\n", cut);
        }
    }

    /// Reads the rest of a `data` line into the data; false at the end of the input.
    fn data_line(&mut self, cut: &mut Option<Cut>) -> std::io::Result<bool> {
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Ok(false);
            }
            let newline = buf.iter().position(|b| *b == b'\n');
            let chunk = &buf[..newline.unwrap_or(buf.len())];
            let chunk = match newline {
                Some(_) => strip_cr(chunk),
                None => chunk,
            };
            // The input's buffer cannot be borrowed while the data grows: copy a piece.
            let piece = chunk.to_vec();
            let used = newline.map_or(buf.len(), |i| i + 1);
            self.input.consume(used);
            self.keep(&piece, cut);
            if newline.is_some() {
                return Ok(true);
            }
        }
    }

    /// Appends `bytes` to the data when there is room; else keeps the start of the data and
    /// says why the rest is not kept.
    fn keep(&mut self, bytes: &[u8], cut: &mut Option<Cut>) {
        let len = self.data.bytes().len();
        let limit = if cut.is_some() {
            KEPT_OF_TOO_LARGE
        } else {
            self.limit
        };
        let fits = len + bytes.len() <= limit;
        if fits && self.data.make_room(bytes.len()) {
            self.data.bytes_mut().extend_from_slice(bytes);
            return;
        }
        if cut.is_none() {
            *cut = Some(if fits { Cut::NoRoom } else { Cut::TooLarge });
        }
        let room = KEPT_OF_TOO_LARGE.saturating_sub(len.min(KEPT_OF_TOO_LARGE));
        self.data.bytes_mut().truncate(KEPT_OF_TOO_LARGE);
        let take = bytes.len().min(room);
        if take > 0 && self.data.make_room(take) {
            self.data.bytes_mut().extend_from_slice(&bytes[..take]);
        }
    }

    /// A field other than `data`.
    fn field(&mut self, name: &[u8], value: &[u8], event: &mut Option<String>) {
        let value = String::from_utf8_lossy(value);
        match name {
            b"event" => *event = Some(value.into_owned()),
            b"id" if !value.contains('\0') => self.last_id = Some(value.into_owned()),
            b"retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok().map(Duration::from_millis);
            }
            _ => {}
        }
    }

    /// The id to send as `Last-Event-ID` when the stream is reopened.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref().filter(|id| !id.is_empty())
    }

    /// The reconnection delay the stream asked for.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// How [`read_until_limited`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// At a line feed, consumed and not kept.
    Newline,
    /// At a colon, consumed and not kept.
    Colon,
    /// `max` bytes were kept; the rest of the line is unread.
    Limit,
    /// The input ended.
    Eof,
}

/// Reads into `out` up to one of `stops` (consumed, not kept), keeping at most `max` bytes.
fn read_until_limited(
    input: &mut impl BufRead,
    stops: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<End> {
    let mut kept = 0;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(End::Eof);
        }
        let window = &buf[..buf.len().min(max - kept)];
        if let Some(i) = window.iter().position(|b| stops.contains(b)) {
            out.extend_from_slice(&window[..i]);
            let stop = window[i];
            input.consume(i + 1);
            return Ok(if stop == b'\n' {
                End::Newline
            } else {
                End::Colon
            });
        }
        let n = window.len();
        out.extend_from_slice(window);
        input.consume(n);
        kept += n;
        if kept == max {
            return Ok(End::Limit);
        }
    }
}

/// Skips to the next line.
fn skip_line(input: &mut impl BufRead) -> std::io::Result<()> {
    input.skip_until(b'\n').map(|_| ())
}

/// Skips a byte order mark at the start of the stream.
fn skip_bom(input: &mut impl BufRead) -> std::io::Result<()> {
    const BOM: &[u8] = "\u{feff}".as_bytes();
    if input.fill_buf()?.starts_with(BOM) {
        input.consume(BOM.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event of `stream` with at most `limit` bytes of data: type, data, cut.
    fn events(stream: &[u8], limit: usize) -> Vec<(String, String, Option<Cut>)> {
        let mut reader = EventReader::new(stream, limit);
        let mut out = Vec::new();
        while let Some(e) = reader.next_event().unwrap() {
            let data = String::from_utf8_lossy(reader.data()).into_owned();
            out.push((e.event, data, e.cut));
        }
        out
    }

    #[test]
    fn fields_comments_and_line_endings() {
        let got = events(
            b": keep-alive\r\nevent: note\r\ndata:x\r\nretry: 1500\r\n\r\n",
            64,
        );
        assert_eq!(got, [("note".into(), "x".into(), None)]);
        let mut reader = EventReader::new(&b"retry: 1500\ndata: a\n\n"[..], 64);
        reader.next_event().unwrap();
        assert_eq!(reader.retry(), Some(Duration::from_millis(1500)));
        // An event without data is no event, and its type does not leak into the next.
        let got = events(b"event: empty\n\ndata\n\n", 64);
        assert_eq!(got, [("message".into(), String::new(), None)]);
        // Several data lines, an empty one among them.
        let got = events(b"data: a\ndata\ndata: b\n\n", 64);
        assert_eq!(got[0].1, "a\n\nb");
        // A byte order mark at the start; an event the stream's end cuts off is dropped.
        let got = events("\u{feff}data: 1\n\ndata: 2".as_bytes(), 64);
        assert_eq!(got, [("message".into(), "1".into(), None)]);
    }

    #[test]
    fn ids_persist() {
        let mut reader = EventReader::new(&b"id: a1\ndata: 1\n\ndata: 2\n\n"[..], 8);
        reader.next_event().unwrap();
        reader.next_event().unwrap();
        assert_eq!(reader.last_event_id(), Some("a1"));
    }

    #[test]
    fn data_over_the_limit_is_cut_to_its_start_and_the_next_event_is_whole() {
        let big = format!("data: {}\n\ndata: next\n\n", "x".repeat(10_000));
        let got = events(big.as_bytes(), 100);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].2, Some(Cut::TooLarge));
        assert!(got[0].1.len() <= KEPT_OF_TOO_LARGE && got[0].1.starts_with("xxx"));
        assert_eq!(got[1], ("message".into(), "next".into(), None));
        // Many lines adding up past the limit.
        let lines = "data: 0123456789\n".repeat(20) + "\n";
        assert_eq!(events(lines.as_bytes(), 100)[0].2, Some(Cut::TooLarge));
        // Exactly the limit is fine.
        let got = events(b"data: 12345\n\n", 5);
        assert_eq!(got, [("message".into(), "12345".into(), None)]);
    }

    #[test]
    fn data_beyond_the_budget_is_cut_too() {
        let budget = Arc::new(Budget::new(128 * 1024));
        let stream = format!("data: {}\n\ndata: small\n\n", "y".repeat(200 * 1024));
        let mut reader = EventReader::with_budget(stream.as_bytes(), 1 << 20, budget);
        assert_eq!(reader.next_event().unwrap().unwrap().cut, Some(Cut::NoRoom));
        assert!(reader.data().starts_with(b"yyy"));
        assert_eq!(reader.next_event().unwrap().unwrap().cut, None);
        assert_eq!(reader.data(), b"small");
    }

    #[test]
    fn long_field_names_and_values_are_skipped() {
        let long = format!(
            "{}: x\nid: {}\ndata: ok\n\n",
            "f".repeat(5000),
            "i".repeat(5000)
        );
        let mut reader = EventReader::new(long.as_bytes(), 64);
        assert!(reader.next_event().unwrap().is_some());
        assert_eq!(reader.data(), b"ok");
        assert_eq!(reader.last_event_id(), None);
    }
}
