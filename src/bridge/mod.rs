//! A stdio-to-Streamable-HTTP bridge: an MCP server over newline-delimited JSON-RPC on a
//! reader and a writer (a program's stdin and stdout, say) whose messages go to a remote MCP
//! server through a [`Session`], which logs in, refreshes and steps up as needed (MCP
//! transports, "Streamable HTTP"; `mcp-oauth proxy` is one front end).
//!
//! - Every line read is one JSON-RPC message, POSTed with `Accept: application/json,
//!   text/event-stream`, the `Mcp-Session-Id` the server gave on `initialize` and the
//!   `MCP-Protocol-Version` it agreed to. Messages leave in the order they came: `initialize`
//!   and everything after it until the client's `notifications/initialized` one at a time,
//!   each answered before the next leaves, and so every notification and every answer of the
//!   client's. Requests after that are sent each on its own thread, so a slow tool call holds
//!   up nothing else (at most [`MAX_IN_FLIGHT`] at once; past that, a request waits 30 s for
//!   a slot, then gets an error).
//! - Every message the server sends, in a JSON answer or an event stream (requests to the
//!   client among them: elicitation, sampling, roots), is written as one line. The client's
//!   answers to them come back as lines like any other.
//! - The server's GET event stream, for messages it sends on its own, is opened once the
//!   client's `initialized` reached the server, and reopened with `Last-Event-ID` after a drop.
//! - A request the server cannot answer (unreachable, an HTTP error, a stream that ends
//!   early) gets a JSON-RPC error with its id: never a silent drop, never a hang.
//! - At the reader's end, the requests in flight finish (for at most [`DRAIN_TIMEOUT`]), the
//!   session is ended with a DELETE, and [`Bridge::run`] returns.
//!
//! Nothing but JSON-RPC messages is written to the writer; the library writes nothing else
//! anywhere (the session's browser step is the front end's).

pub mod sse;

use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use ureq::http::Response;

use crate::Session;
use crate::error::{Error, ErrorKind, Result, Step, printable};
use sse::SseParser;

/// The most messages sent to the server at once; reading waits for a free slot.
pub const MAX_IN_FLIGHT: usize = 64;
/// How long a message waits for a free slot before its requests are answered with an error.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(30);
/// The largest message (a line read, a JSON answer, an event), in bytes.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// The headers the bridge and the session set on each request (lower case), which a static
/// header may not replace.
const OWN_HEADERS: [&str; 9] = [
    "authorization",
    "dpop",
    "accept",
    "content-type",
    "content-length",
    "host",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];
/// How long the requests in flight may take to finish once the reader has ended.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an answer's event stream may stay silent (servers send comments to keep it open).
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// JSON-RPC error code of a request the server could not answer (the implementation-defined
/// server error range of JSON-RPC 2.0).
pub const UNANSWERED: i64 = -32000;
/// JSON-RPC error code of a line that is not JSON.
pub const PARSE_ERROR: i64 = -32700;

/// A bridge between newline-delimited JSON-RPC and one remote MCP server.
pub struct Bridge {
    shared: Arc<Shared>,
}

struct Shared {
    session: Arc<Session>,
    url: String,
    headers: Vec<(String, String)>,
    out: Mutex<Box<dyn Write + Send>>,
    /// `Mcp-Session-Id` and the agreed protocol version, from `initialize`.
    mcp: Mutex<McpSession>,
    in_flight: (Mutex<usize>, Condvar),
    stopping: AtomicBool,
    get_stream_started: AtomicBool,
    /// Between `initialize` and the client's `initialized`: messages go one at a time.
    initializing: AtomicBool,
}

#[derive(Default, Clone)]
struct McpSession {
    id: Option<String>,
    protocol_version: Option<String>,
}

impl Bridge {
    /// A bridge to `session`'s MCP server writing the server's messages to `out`, one per
    /// line; `headers` go on every request (static ones a server wants, `X-Tenant: …`).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a header that is not valid HTTP or that the bridge sets itself
    /// (`Authorization`, `Mcp-Session-Id`, …).
    pub fn new(
        session: Arc<Session>,
        out: impl Write + Send + 'static,
        headers: Vec<(String, String)>,
    ) -> Result<Bridge> {
        for (name, value) in &headers {
            // As ureq would send it, and none the bridge or the session sets itself: an
            // `Authorization` of the user's would take the place of the session's token.
            let parsed = ureq::http::HeaderName::from_bytes(name.as_bytes())
                .ok()
                .filter(|n| !OWN_HEADERS.contains(&n.as_str()))
                .zip(ureq::http::HeaderValue::from_str(value).ok());
            if parsed.is_none() {
                return Err(Error::new(
                    ErrorKind::Config,
                    Step::Configure,
                    format!("{:?} is not a header this bridge can send", printable(name)),
                ));
            }
        }
        let url = session.server_url().to_string();
        Ok(Bridge {
            shared: Arc::new(Shared {
                session,
                url,
                headers,
                out: Mutex::new(Box::new(out)),
                mcp: Mutex::new(McpSession::default()),
                in_flight: (Mutex::new(0), Condvar::new()),
                stopping: AtomicBool::new(false),
                get_stream_started: AtomicBool::new(false),
                initializing: AtomicBool::new(false),
            }),
        })
    }

    /// Reads messages from `input` until it ends, forwarding each and writing what comes
    /// back; then lets the requests in flight finish, ends the MCP session and returns.
    ///
    /// # Errors
    /// [`ErrorKind::Transport`] in [`Step::Request`] when `input` cannot be read.
    pub fn run(self, mut input: impl BufRead) -> Result<()> {
        let shared = &self.shared;
        let mut line = Vec::new();
        loop {
            let read = read_line_within(&mut input, MAX_MESSAGE, &mut line).map_err(|e| {
                Error::new(ErrorKind::Transport, Step::Request, "cannot read the input")
                    .with_source(e)
            })?;
            match read {
                None => break,
                Some(Line::Whole) => {}
                Some(Line::TooLong) => {
                    shared.write(&rpc_error(
                        &Value::Null,
                        PARSE_ERROR,
                        "the message is too large",
                    ));
                    continue;
                }
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let message: Value = match serde_json::from_str(text) {
                Ok(m) => m,
                Err(_) => {
                    shared.write(&rpc_error(&Value::Null, PARSE_ERROR, "Parse error"));
                    continue;
                }
            };
            // In order, each answered before the next leaves: `initialize` (the session id
            // comes with its answer), everything after it until the client's `initialized`
            // has reached the server (servers refuse requests that overtake it), and every
            // message that is not a request (notifications, the client's answers), whose
            // order is all they have.
            if is_initialize(&message)
                || shared.initializing.load(Ordering::SeqCst)
                || request_ids(&message).is_empty()
            {
                Shared::forward(shared, &message);
                if is_initialize(&message) {
                    shared.initializing.store(true, Ordering::SeqCst);
                } else if is_initialized(&message) {
                    shared.initializing.store(false, Ordering::SeqCst);
                    Shared::start_get_stream(shared);
                }
                continue;
            }
            if !shared.acquire(IN_FLIGHT_WAIT) {
                shared.fail(&message, "too many requests are in flight; try again");
                continue;
            }
            let worker = Arc::clone(shared);
            let spawned = std::thread::Builder::new()
                .name("mcp-oauth-bridge".into())
                .spawn(move || {
                    Shared::forward(&worker, &message);
                    worker.release();
                });
            if let Err(e) = spawned {
                shared.release();
                log::warn!("bridge: cannot start a thread: {e}");
            }
        }
        shared.drain(DRAIN_TIMEOUT);
        shared.stopping.store(true, Ordering::SeqCst);
        shared.end_session();
        Ok(())
    }
}

/// True for an `initialize` request.
fn is_initialize(message: &Value) -> bool {
    message["method"] == "initialize" && message.get("id").is_some()
}

/// True for the client's `notifications/initialized`.
fn is_initialized(message: &Value) -> bool {
    message["method"] == "notifications/initialized" && message.get("id").is_none()
}

/// The ids of the requests in a message (an object, or a batch of them).
fn request_ids(message: &Value) -> Vec<Value> {
    let one = |m: &Value| {
        (m.get("method").is_some())
            .then(|| m.get("id").cloned())
            .flatten()
    };
    match message {
        Value::Array(batch) => batch.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

impl Shared {
    /// Writes one message as one line; a batch as one line per message.
    fn write(&self, message: &Value) {
        let messages = match message {
            Value::Array(batch) => batch.iter().collect(),
            one => vec![one],
        };
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        for m in messages {
            let mut line = m.to_string();
            line.push('\n');
            if out
                .write_all(line.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                // The reader of our output is gone: nothing to answer to.
                self.stopping.store(true, Ordering::SeqCst);
                return;
            }
        }
    }

    /// Errors for every request of `message`, saying why.
    fn fail(&self, message: &Value, why: &str) {
        let ids = request_ids(message);
        if ids.is_empty() {
            log::warn!("bridge: a message to the server was lost: {why}");
        }
        for id in ids {
            self.write(&rpc_error(&id, UNANSWERED, why));
        }
    }

    /// A slot for one more request in flight, waiting up to `within` for one to free; false
    /// when none did (answers kept open by a server that never ends them).
    fn acquire(&self, within: Duration) -> bool {
        let (count, freed) = &self.in_flight;
        let n = count.lock().unwrap_or_else(|p| p.into_inner());
        let (mut n, _) = freed
            .wait_timeout_while(n, within, |n| *n >= MAX_IN_FLIGHT)
            .unwrap_or_else(|p| p.into_inner());
        if *n >= MAX_IN_FLIGHT {
            return false;
        }
        *n += 1;
        true
    }

    fn release(&self) {
        let (count, freed) = &self.in_flight;
        let mut n = count.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        freed.notify_all();
    }

    /// Waits up to `timeout` for the requests in flight.
    fn drain(&self, timeout: Duration) {
        let (count, freed) = &self.in_flight;
        let deadline = Instant::now() + timeout;
        let mut n = count.lock().unwrap_or_else(|p| p.into_inner());
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::warn!("bridge: {n} request(s) still in flight at the end");
                return;
            }
            n = freed
                .wait_timeout(n, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn mcp(&self) -> McpSession {
        self.mcp.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A request to the server with the MCP headers and the static ones.
    fn request<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        let mcp = self.mcp();
        let mut req = req;
        if let Some(id) = &mcp.id {
            req = req.header("mcp-session-id", id);
        }
        if let Some(version) = &mcp.protocol_version {
            req = req.header("mcp-protocol-version", version);
        }
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        req
    }

    /// POSTs one message and writes what comes back.
    fn forward(shared: &Arc<Shared>, message: &Value) {
        let body = message.to_string();
        let response = shared.session.send(|agent| {
            shared
                .request(agent.post(&shared.url))
                .header("accept", "application/json, text/event-stream")
                .content_type("application/json")
                .config()
                .timeout_per_read(Some(STREAM_IDLE_TIMEOUT))
                .build()
                .send(&body)
        });
        let response = match response {
            Ok(r) => r,
            Err(e) => return shared.fail(message, &format!("the MCP server was not reached: {e}")),
        };
        if is_initialize(message) {
            shared.remember_session(&response);
        }
        shared.answer(message, response);
    }

    /// Keeps the `Mcp-Session-Id` of an `initialize` answer.
    fn remember_session(&self, response: &Response<ureq::Body>) {
        let id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned);
        self.mcp.lock().unwrap_or_else(|p| p.into_inner()).id = id;
    }

    /// Writes the messages of a POST's answer; errors for the requests it leaves unanswered.
    fn answer(&self, message: &Value, response: Response<ureq::Body>) {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut pending = request_ids(message);
        if (200..300).contains(&status) && content_type.starts_with("text/event-stream") {
            self.read_stream(response.into_body(), &mut pending, None);
        } else if (200..300).contains(&status) && content_type.starts_with("application/json") {
            match read_json(response.into_body()) {
                Ok(Some(reply)) => {
                    self.note_version(&reply);
                    settle(&mut pending, &reply);
                    self.write(&reply);
                }
                // An empty body (servers on the MCP Python SDK answer a notification 202 with
                // a JSON content type and nothing in it): nothing comes back.
                Ok(None) => {}
                Err(why) => return self.fail(message, &why),
            }
        } else if (200..300).contains(&status) {
            // 202 Accepted: a notification or a response, nothing comes back.
        } else {
            let mut body = Vec::new();
            let _ = response
                .into_body()
                .into_reader()
                .take(16 * 1024)
                .read_to_end(&mut body);
            // A JSON-RPC error object from the server answers the request itself.
            if let Ok(reply) = serde_json::from_slice::<Value>(&body)
                && reply.get("jsonrpc").is_some()
            {
                settle(&mut pending, &reply);
                self.write(&reply);
            }
            let why = match status {
                404 if self.mcp().id.is_some() => {
                    "the MCP server ended the session (HTTP 404); initialize again".to_owned()
                }
                _ => format!("the MCP server answered HTTP {status}"),
            };
            for id in pending.drain(..) {
                self.write(&rpc_error(&id, UNANSWERED, &why));
            }
        }
        for id in pending {
            self.write(&rpc_error(
                &id,
                UNANSWERED,
                "the MCP server's answer ended without a response to this request",
            ));
        }
    }

    /// Keeps the protocol version an `initialize` result agreed to.
    fn note_version(&self, reply: &Value) {
        if let Some(version) = reply["result"]["protocolVersion"].as_str()
            && version.bytes().all(|b| b.is_ascii_graphic())
        {
            self.mcp
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .protocol_version = Some(version.to_owned());
        }
    }

    /// Writes each event of a stream as a message until it ends (or, for an answer's stream,
    /// until every request of it has its response). Returns the stream's parser, for its
    /// last event id and retry delay.
    fn read_stream(
        &self,
        body: ureq::Body,
        pending: &mut Vec<Value>,
        parser: Option<SseParser>,
    ) -> SseParser {
        let mut parser = parser.unwrap_or_else(|| SseParser::new(MAX_MESSAGE));
        let mut reader = std::io::BufReader::new(body.into_reader());
        let mut line = Vec::new();
        let answering = !pending.is_empty();
        loop {
            // A line longer than an event may be is cut and the parser refuses it; the rest of
            // it is skipped, not read as lines of its own.
            match read_line_within(&mut reader, MAX_MESSAGE + 1, &mut line) {
                Ok(None) | Err(_) => break,
                Ok(Some(_)) => {}
            }
            if self.stopping.load(Ordering::SeqCst) && !answering {
                break;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.strip_suffix('\n').unwrap_or(&text);
            match parser.line(text) {
                Ok(Some(event)) => {
                    let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
                        log::debug!("bridge: an event that is not JSON was skipped");
                        continue;
                    };
                    self.note_version(&message);
                    settle(pending, &message);
                    self.write(&message);
                    if answering && pending.is_empty() {
                        break;
                    }
                }
                Ok(None) => {}
                Err(sse::TooLarge) => {
                    log::warn!("bridge: an event larger than allowed was skipped")
                }
            }
        }
        parser
    }

    /// Opens the server's GET event stream once, on its own thread.
    fn start_get_stream(shared: &Arc<Shared>) {
        if shared.get_stream_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let worker = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("mcp-oauth-bridge-events".into())
            .spawn(move || worker.get_stream());
        if let Err(e) = spawned {
            log::warn!("bridge: cannot start the event stream thread: {e}");
        }
    }

    /// The server's own messages: the GET stream, reopened with `Last-Event-ID` after a drop
    /// (waiting what the stream asked, or one second, doubling up to 30); given up when the
    /// server offers none (405) or the bridge is stopping.
    fn get_stream(&self) {
        let mut parser: Option<SseParser> = None;
        let mut wait = Duration::from_secs(1);
        while !self.stopping.load(Ordering::SeqCst) {
            let last_id = parser
                .as_ref()
                .and_then(|p| p.last_event_id())
                .map(str::to_owned);
            let response = self.session.send(|agent| {
                let mut req = self
                    .request(agent.get(&self.url))
                    .header("accept", "text/event-stream");
                if let Some(id) = &last_id {
                    req = req.header("last-event-id", id);
                }
                req.config()
                    .timeout_per_read(Some(STREAM_IDLE_TIMEOUT))
                    .build()
                    .call()
            });
            match response {
                Ok(r) if r.status().as_u16() == 200 => {
                    let p = self.read_stream(r.into_body(), &mut Vec::new(), parser.take());
                    wait = p.retry().unwrap_or(Duration::from_secs(1));
                    parser = Some(p);
                }
                Ok(r) if matches!(r.status().as_u16(), 404 | 405) => {
                    log::debug!("bridge: the server offers no event stream");
                    return;
                }
                Ok(r) => log::debug!("bridge: event stream HTTP {}", r.status()),
                Err(e) => log::debug!("bridge: event stream: {e}"),
            }
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }

    /// Ends the MCP session (a DELETE), when the server gave one.
    fn end_session(&self) {
        if self.mcp().id.is_none() {
            return;
        }
        // The agent, not `send`: a 401 here must not start a login once the client has gone.
        let ended = self.request(self.session.agent().delete(&self.url)).call();
        if let Err(e) = ended {
            log::debug!("bridge: ending the session: {e}");
        }
    }
}

/// How [`read_line_within`] found a line.
enum Line {
    /// All of it, its `\n` included when there was one.
    Whole,
    /// Longer than allowed: its first bytes are read, the rest was skipped.
    TooLong,
}

/// Reads the next line of `input` into `line`, keeping at most `max` bytes besides its `\n`;
/// `None` at the end of the input.
fn read_line_within(
    input: &mut impl BufRead,
    max: usize,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<Line>> {
    line.clear();
    let read = input.take(max as u64 + 1).read_until(b'\n', line)?;
    if read == 0 {
        return Ok(None);
    }
    if read <= max || line.last() == Some(&b'\n') {
        return Ok(Some(Line::Whole));
    }
    input.skip_until(b'\n')?;
    Ok(Some(Line::TooLong))
}

/// Removes from `pending` the requests `reply` (a message or a batch) answers.
fn settle(pending: &mut Vec<Value>, reply: &Value) {
    let answered = |m: &Value| {
        m.get("method").is_none() && (m.get("result").is_some() || m.get("error").is_some())
    };
    let ids: Vec<&Value> = match reply {
        Value::Array(batch) => batch
            .iter()
            .filter(|m| answered(m))
            .filter_map(|m| m.get("id"))
            .collect(),
        one if answered(one) => one.get("id").into_iter().collect(),
        _ => Vec::new(),
    };
    pending.retain(|p| !ids.contains(&p));
}

/// A JSON answer's body, within [`MAX_MESSAGE`]; `None` when it is empty.
fn read_json(body: ureq::Body) -> std::result::Result<Option<Value>, String> {
    let mut bytes = Vec::new();
    body.into_reader()
        .take(MAX_MESSAGE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("the MCP server's answer could not be read: {e}"))?;
    if bytes.len() > MAX_MESSAGE {
        return Err("the MCP server's answer is larger than allowed".into());
    }
    if bytes.trim_ascii().is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| "the MCP server's answer is not JSON".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line `read_line_within` gives for `input` with at most 4 bytes a line.
    fn lines(input: &[u8]) -> Vec<String> {
        let mut input = input;
        let mut line = Vec::new();
        let mut out = Vec::new();
        while let Some(read) = read_line_within(&mut input, 4, &mut line).unwrap() {
            out.push(match read {
                Line::Whole => String::from_utf8_lossy(&line).into_owned(),
                Line::TooLong => "too long".to_owned(),
            });
        }
        out
    }

    /// A session for a server that is never reached.
    fn session() -> Arc<Session> {
        let dir = std::env::temp_dir().join(format!("mcp-oauth-bridge-{}", std::process::id()));
        Arc::new(
            Session::builder("http://127.0.0.1:9/mcp")
                .cache_dir(&dir)
                .build()
                .unwrap(),
        )
    }

    #[test]
    fn a_slot_is_waited_for_a_bounded_time() {
        let bridge = Bridge::new(session(), std::io::sink(), Vec::new()).unwrap();
        let shared = &bridge.shared;
        for _ in 0..MAX_IN_FLIGHT {
            assert!(shared.acquire(Duration::ZERO));
        }
        let asked = Instant::now();
        assert!(!shared.acquire(Duration::from_millis(50)));
        assert!(asked.elapsed() >= Duration::from_millis(50));
        shared.release();
        assert!(shared.acquire(Duration::from_millis(50)));
    }

    #[test]
    fn static_headers_are_valid_http_and_never_the_bridges_own() {
        let session = session();
        let bridge = |name: &str, value: &str| {
            Bridge::new(
                Arc::clone(&session),
                std::io::sink(),
                vec![(name.to_owned(), value.to_owned())],
            )
        };
        assert!(bridge("X-Tenant", "acme 1").is_ok());
        for (name, value) in [
            ("Authorization", "Bearer mine"),
            ("MCP-Session-Id", "x"),
            ("Bad Name", "x"),
            ("X-Tenant", "line\r\nbreak"),
            ("", "x"),
        ] {
            let e = bridge(name, value).err().expect(name);
            assert_eq!(e.kind(), ErrorKind::Config);
        }
    }

    #[test]
    fn a_line_too_long_is_skipped_whole_and_the_next_one_read() {
        // Exactly the limit, with its newline: whole, and the next line is not swallowed.
        assert_eq!(lines(b"abcd\nxy\n"), ["abcd\n", "xy\n"]);
        // Over it: reported once, the rest of it skipped.
        assert_eq!(lines(b"abcdefghij\nxy\n"), ["too long", "xy\n"]);
        // A last line without a newline.
        assert_eq!(lines(b"xy\nab"), ["xy\n", "ab"]);
        assert_eq!(lines(b"abcdefgh"), ["too long"]);
    }
}
