//! Server-sent events as MCP's Streamable HTTP transport uses them (WHATWG HTML, "Server-sent
//! events", the event stream format): `data` lines joined into one message, the `id` kept for
//! `Last-Event-ID` when a stream is reopened, the `retry` delay. Pure; fuzzed.
//!
//! Lines end with LF or CRLF; a CR alone (which the format also allows as a line end, and no
//! MCP server we know sends) stays in the line.

use std::time::Duration;

/// One event of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event type (`message` when the stream names none).
    pub event: String,
    /// The data lines, joined with `\n`.
    pub data: String,
    /// The last event id seen on the stream, this event's or an earlier one's.
    pub id: Option<String>,
}

/// The stream's events exceed the parser's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// Reads an event stream line by line.
#[derive(Debug)]
pub struct SseParser {
    data: String,
    has_data: bool,
    event: Option<String>,
    last_id: Option<String>,
    retry: Option<Duration>,
    limit: usize,
}

impl SseParser {
    /// A parser that refuses an event whose data exceeds `limit` bytes.
    pub fn new(limit: usize) -> SseParser {
        SseParser {
            data: String::new(),
            has_data: false,
            event: None,
            last_id: None,
            retry: None,
            limit,
        }
    }

    /// Takes one line, without its line ending (a trailing `\r` is dropped here). Returns the
    /// event the line completes: a blank line ends one, when it has data.
    ///
    /// # Errors
    /// [`TooLarge`] when the event's data grows beyond the limit.
    ///
    /// ```
    /// use mcp_oauth_client::bridge::sse::SseParser;
    /// let mut p = SseParser::new(1024);
    /// for line in ["id: 7", "data: {\"a\":", "data: 1}"] {
    ///     assert_eq!(p.line(line).unwrap(), None);
    /// }
    /// let event = p.line("").unwrap().unwrap();
    /// assert_eq!((event.data.as_str(), event.id.as_deref()), ("{\"a\":\n1}", Some("7")));
    /// ```
    pub fn line(&mut self, line: &str) -> Result<Option<Event>, TooLarge> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let line = line.strip_prefix('\u{feff}').unwrap_or(line);
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.data.len() + value.len() + 1 > self.limit {
                    self.data.clear();
                    self.has_data = false;
                    return Err(TooLarge);
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok().map(Duration::from_millis);
            }
            _ => {}
        }
        Ok(None)
    }

    /// The event the buffered lines make, if they carry data; the buffer is emptied.
    fn dispatch(&mut self) -> Option<Event> {
        let event = self.event.take().unwrap_or_else(|| "message".to_owned());
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(Event {
            event,
            data: std::mem::take(&mut self.data),
            id: self.last_id.clone(),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_comments_and_line_endings() {
        let mut p = SseParser::new(64);
        assert_eq!(p.line(": keep-alive").unwrap(), None);
        assert_eq!(p.line("event: note\r").unwrap(), None);
        assert_eq!(p.line("data:x").unwrap(), None);
        assert_eq!(p.line("retry: 1500").unwrap(), None);
        let e = p.line("\r").unwrap().unwrap();
        assert_eq!(
            (e.event.as_str(), e.data.as_str(), e.id),
            ("note", "x", None)
        );
        assert_eq!(p.retry(), Some(Duration::from_millis(1500)));
        // An event without data is no event, and its type does not leak into the next.
        assert_eq!(p.line("event: empty").unwrap(), None);
        assert_eq!(p.line("").unwrap(), None);
        p.line("data").unwrap();
        assert_eq!(p.line("").unwrap().unwrap().event, "message");
    }

    #[test]
    fn ids_persist_and_data_is_bounded() {
        let mut p = SseParser::new(8);
        p.line("id: a1").unwrap();
        p.line("data: 1").unwrap();
        assert_eq!(p.line("").unwrap().unwrap().id.as_deref(), Some("a1"));
        p.line("data: 2").unwrap();
        assert_eq!(p.line("").unwrap().unwrap().id.as_deref(), Some("a1"));
        assert_eq!(p.last_event_id(), Some("a1"));
        assert_eq!(p.line("data: 123456789"), Err(TooLarge));
        assert_eq!(p.line("").unwrap(), None, "the refused event is dropped");
    }
}
