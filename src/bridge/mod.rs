//! A stdio-to-HTTP bridge: an MCP server over newline-delimited JSON-RPC on a reader and a
//! writer (a program's stdin and stdout, say) whose messages go to a remote MCP server through
//! a [`Session`], which logs in, refreshes and steps up as needed (MCP "Transports";
//! `mcp-oauth proxy` is one front end). Each message goes the way its own revision says:
//!
//! - **Revision 2026-07-28 on** (a request whose `params._meta` names its protocol version):
//!   each request stands alone, POSTed with the headers that revision's Streamable HTTP
//!   transport asks for (`MCP-Protocol-Version` from the `_meta`, `Mcp-Method`, `Mcp-Name`,
//!   and `Mcp-Param-*` for the tool arguments a tool's schema marks; see [`headers`]), never
//!   with a session. `tools/list` answers are checked: a tool whose `x-mcp-header`
//!   annotations break the rules is left out. A `notifications/cancelled` for such a request
//!   closes the stream of its answer instead of being sent. A `subscriptions/listen` is a
//!   request whose answer is a stream that stays open.
//! - **Revisions 2025-03-26 to 2025-11-25** (Streamable HTTP with sessions): every message
//!   POSTed with the `Mcp-Session-Id` the server gave on `initialize` and the
//!   `MCP-Protocol-Version` it agreed to; the server's own messages come on a GET event stream,
//!   opened once the client's `notifications/initialized` reached the server and reopened with
//!   `Last-Event-ID` after a drop; the session is ended with a DELETE.
//! - **Revision 2024-11-05** (HTTP+SSE, [`Transport::Sse`], or found by [`Transport::Auto`]
//!   when a POST gets 404 or 405): a GET event stream whose first event names where to POST;
//!   every message is POSTed there and every answer comes on the stream.
//!
//! Messages leave in the order they came: `initialize` and everything after it until the
//! client's `notifications/initialized`, one at a time, each answered before the next leaves,
//! and so every notification and every answer of the client's. Requests after that are sent
//! each on its own thread, so a slow tool call holds up nothing else (at most
//! [`MAX_IN_FLIGHT`] at once; past that, a request waits 30 s for a slot, then gets an error).
//!
//! Every message the server sends, in a JSON answer or an event stream, is written as one
//! line, as the server sent it (never parsed into a tree, but for `tools/list` answers of
//! 2026-07-28, whose tools are read one by one); at most [`MAX_MESSAGE`] bytes each, and at
//! most [`MAX_HELD`] bytes of answers held at once. Every request of the client's gets exactly
//! one answer: the server's, or a JSON-RPC error with its id saying why there is none
//! (unreachable, an HTTP error, a redirect, which is never followed, a stream that ends early,
//! an answer over the limit, the bridge ending before the server answered). A server that
//! refuses a newly obtained token makes the bridge stop logging in: later requests fail at
//! once instead of each opening a browser; the event stream never starts a login.
//!
//! Nothing but JSON-RPC messages is written to the writer; the library writes nothing else
//! anywhere (the session's browser step is the front end's).

pub mod budget;
pub mod headers;
mod legacy;
pub mod message;
mod output;
pub mod sse;
mod streamable;

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::Session;
use crate::error::{Error, ErrorKind, Result, Step, printable};
use budget::Budget;
use headers::{ParamHeader, routing_headers};
use message::{Kind, Message, NotAMessage, id_from_prefix};
use output::{Output, request_keys};

/// The most messages sent to the server at once; reading waits for a free slot.
pub const MAX_IN_FLIGHT: usize = 64;
/// How long a message waits for a free slot before its requests are answered with an error.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(30);
/// The largest message (a line read, a JSON answer, an event), in bytes. MCP messages are
/// JSON-RPC objects whose largest parts are tool results and resource contents; those carry
/// images and files as Base64, and 8 MiB holds a 5 MB image (a common limit of the models
/// that read them) with room to spare.
pub const MAX_MESSAGE: usize = 8 * 1024 * 1024;
/// The most of the server's answers held at once, all answers together: four of the largest.
pub const MAX_HELD: usize = 4 * MAX_MESSAGE;
/// The headers the bridge and the session set on each request (lower case), which a static
/// header may not replace; nor may any `mcp-param-*`.
const OWN_HEADERS: [&str; 11] = [
    "authorization",
    "dpop",
    "accept",
    "content-type",
    "content-length",
    "host",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
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
/// JSON-RPC error code of a line that is not a request the bridge can send.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC error code of a server that refuses a request's headers (revision 2026-07-28).
const HEADER_MISMATCH: i64 = -32020;

/// How the bridge reaches the server, for messages of revisions before 2026-07-28.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transport {
    /// Streamable HTTP, and HTTP+SSE when the server answers a POST with 404 or 405 (the
    /// specification's backwards compatibility rule).
    #[default]
    Auto,
    /// Streamable HTTP only (revisions 2025-03-26 on).
    Streamable,
    /// HTTP+SSE only (revision 2024-11-05): the URL is the event stream's.
    Sse,
}

impl std::str::FromStr for Transport {
    type Err = Error;

    /// `auto`, `streamable` or `sse`.
    fn from_str(s: &str) -> Result<Transport> {
        match s {
            "auto" => Ok(Transport::Auto),
            "streamable" => Ok(Transport::Streamable),
            "sse" => Ok(Transport::Sse),
            other => Err(Error::new(
                ErrorKind::Config,
                Step::Configure,
                format!(
                    "{:?} is not a transport: auto, streamable or sse",
                    printable(other)
                ),
            )),
        }
    }
}

/// A bridge between newline-delimited JSON-RPC and one remote MCP server.
pub struct Bridge {
    shared: Arc<Shared>,
}

struct Shared {
    session: Arc<Session>,
    url: url::Url,
    headers: Vec<(String, String)>,
    output: Output,
    /// `Mcp-Session-Id` and the agreed protocol version, from `initialize`.
    mcp: Mutex<McpSession>,
    /// The transport of messages before revision 2026-07-28: `Auto` until the first answer
    /// settles it.
    transport: Mutex<Transport>,
    /// The HTTP+SSE channel, while there is one.
    channel: Mutex<Option<Arc<legacy::Channel>>>,
    in_flight: (Mutex<usize>, Condvar),
    stopping: AtomicBool,
    get_stream_started: AtomicBool,
    /// Between `initialize` and the client's `initialized`: messages go one at a time.
    initializing: AtomicBool,
    /// The `Mcp-Param-*` headers of each tool, from the last `tools/list` of 2026-07-28.
    tools: Mutex<HashMap<String, Vec<ParamHeader>>>,
    /// What the buffers of answers hold, all together.
    budget: Arc<Budget>,
    /// The server refused a newly obtained token: no more logins.
    refused: AtomicBool,
    /// How long the requests in flight may take once the input has ended.
    drain: Mutex<Duration>,
    /// What to tell the client when only a login would help and none is started.
    login_hint: Mutex<Option<String>>,
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
    /// (`Authorization`, `Mcp-Session-Id`, `Mcp-Param-…`, …).
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
                .filter(|n| {
                    !OWN_HEADERS.contains(&n.as_str()) && !n.as_str().starts_with("mcp-param-")
                })
                .zip(ureq::http::HeaderValue::from_str(value).ok());
            if parsed.is_none() {
                return Err(Error::new(
                    ErrorKind::Config,
                    Step::Configure,
                    format!("{:?} is not a header this bridge can send", printable(name)),
                ));
            }
        }
        let url = session.server_url().clone();
        Ok(Bridge {
            shared: Arc::new(Shared {
                session,
                url,
                headers,
                output: Output::new(Box::new(out)),
                mcp: Mutex::new(McpSession::default()),
                transport: Mutex::new(Transport::Auto),
                channel: Mutex::new(None),
                in_flight: (Mutex::new(0), Condvar::new()),
                stopping: AtomicBool::new(false),
                get_stream_started: AtomicBool::new(false),
                initializing: AtomicBool::new(false),
                tools: Mutex::new(HashMap::new()),
                budget: Arc::new(Budget::new(MAX_HELD)),
                refused: AtomicBool::new(false),
                drain: Mutex::new(DRAIN_TIMEOUT),
                login_hint: Mutex::new(None),
            }),
        })
    }

    /// How messages of revisions before 2026-07-28 reach the server (default
    /// [`Transport::Auto`]).
    #[must_use]
    pub fn transport(self, transport: Transport) -> Bridge {
        *lock(&self.shared.transport) = transport;
        self
    }

    /// What the client is told, in the error of each request, when only a login would help
    /// and the session starts none (a front end names its own way to log in: `run
    /// mcp-oauth login URL`).
    #[must_use]
    pub fn login_hint(self, hint: impl Into<String>) -> Bridge {
        *lock(&self.shared.login_hint) = Some(hint.into());
        self
    }

    /// How long the requests in flight may take to be answered once the input has ended
    /// (default [`DRAIN_TIMEOUT`]); those still unanswered then get an error each.
    #[must_use]
    pub fn drain_timeout(self, timeout: Duration) -> Bridge {
        *lock(&self.shared.drain) = timeout;
        self
    }

    /// Reads messages from `input` until it ends, forwarding each and writing what comes
    /// back; then lets the requests in flight finish (for at most the
    /// [`drain_timeout`](Self::drain_timeout)), answers
    /// those that did not with an error, ends the MCP session and returns.
    ///
    /// # Errors
    /// [`ErrorKind::Transport`] in [`Step::Request`] when `input` cannot be read.
    pub fn run(self, mut input: impl BufRead) -> Result<()> {
        let shared = &self.shared;
        let mut line = Vec::new();
        let read = loop {
            if shared.output.is_closed() {
                break Ok(());
            }
            let read = match read_line_within(&mut input, MAX_MESSAGE, &mut line) {
                Ok(read) => read,
                Err(e) => {
                    break Err(Error::new(
                        ErrorKind::Transport,
                        Step::Request,
                        "cannot read the input",
                    )
                    .with_source(e));
                }
            };
            match read {
                None => break Ok(()),
                Some(Line::Whole) => Shared::take(shared, &line),
                Some(Line::TooLong) => {
                    // Answered with its own id when its start names one.
                    let id = id_from_prefix(&line).unwrap_or(Value::Null);
                    let why = format!("the message is larger than {MAX_MESSAGE} bytes");
                    shared.output.error(&id, INVALID_REQUEST, &why);
                }
            }
            if line.capacity() > 64 * 1024 {
                line = Vec::new();
            }
        };
        shared.finish();
        read
    }
}

/// Locks a mutex, a poisoned one too (a panic elsewhere leaves nothing half-done here).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// True for an `initialize` request.
fn is_initialize(message: &Message<'_>) -> bool {
    message.kind == Kind::Request && message.is("initialize")
}

/// True for the client's `notifications/initialized`.
fn is_initialized(message: &Message<'_>) -> bool {
    message.kind == Kind::Notification && message.is("notifications/initialized")
}

/// One message of the client's, with what its sending needs.
struct Outgoing {
    body: Vec<u8>,
    /// The requests it carries (one, or those of a batch): their keys.
    keys: Vec<String>,
    /// Its method, when it is one request or notification.
    method: Option<String>,
    /// It names a protocol version in `_meta` (revision 2026-07-28 on).
    stateless: bool,
    /// Its headers of that revision (empty for the others).
    routing: Vec<(String, String)>,
    /// Set when the client cancels it.
    cancelled: Option<Arc<AtomicBool>>,
    /// Sent once more after the server refused its headers.
    retried: bool,
}

impl Shared {
    /// Takes one line of the client's.
    fn take(shared: &Arc<Shared>, line: &[u8]) {
        let text = line.trim_ascii();
        if text.is_empty() {
            return;
        }
        let message = match Message::parse(text) {
            Ok(m) => m,
            Err(NotAMessage::Json) => {
                return shared
                    .output
                    .error(&Value::Null, PARSE_ERROR, "Parse error");
            }
            Err(NotAMessage::Shape) => {
                let id = id_from_prefix(text).unwrap_or(Value::Null);
                return shared.output.error(&id, INVALID_REQUEST, "Invalid Request");
            }
        };
        let stateless = message.protocol_version().is_some();
        // A cancelled stateless request: its stream is closed, nothing is sent.
        if stateless_cancellation(&shared.output, &message) {
            return;
        }
        let routing = if stateless {
            let tools = lock(&shared.tools);
            let params = message
                .param_str("name")
                .filter(|_| message.is("tools/call"))
                .and_then(|name| tools.get(&name).cloned())
                .unwrap_or_default();
            routing_headers(&message, &params)
        } else {
            Vec::new()
        };
        let initialize = is_initialize(&message);
        let initialized = is_initialized(&message);
        let ordered = initialize
            || shared.initializing.load(Ordering::SeqCst)
            || message.kind != Kind::Request;
        let method = message.method.as_deref().map(str::to_owned);
        let mut cancelled = None;
        let keys: Vec<String> = request_keys(text)
            .into_iter()
            .map(|(key, id)| {
                cancelled = Some(shared.output.expect(key.clone(), &id, stateless));
                key
            })
            .collect();
        let outgoing = Outgoing {
            body: text.to_vec(),
            keys,
            method,
            stateless,
            routing,
            cancelled,
            retried: false,
        };
        if ordered {
            // In order, each answered before the next leaves: `initialize` (the session id
            // comes with its answer), everything after it until the client's `initialized`
            // has reached the server (servers refuse requests that overtake it), and every
            // message that is not a request (notifications, the client's answers), whose
            // order is all they have.
            Shared::forward(shared, &outgoing);
            if initialize {
                shared.initializing.store(true, Ordering::SeqCst);
            } else if initialized {
                shared.initializing.store(false, Ordering::SeqCst);
                Shared::start_get_stream(shared);
            }
            return;
        }
        if !shared.acquire(IN_FLIGHT_WAIT) {
            return shared.fail(&outgoing.keys, "too many requests are in flight; try again");
        }
        let worker = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("mcp-oauth-bridge".into())
            .spawn(move || {
                Shared::forward(&worker, &outgoing);
                worker.release();
            });
        if let Err(e) = spawned {
            shared.release();
            log::warn!("bridge: cannot start a thread: {e:#}");
        }
    }

    /// Why a message did not reach the server, for its error.
    fn unreached(&self, e: &Error) -> String {
        match (e.kind(), lock(&self.login_hint).as_deref()) {
            (ErrorKind::LoginRequired, Some(hint)) => format!("a login is needed: {hint}"),
            (ErrorKind::Transport | ErrorKind::Timeout, _) => {
                format!("the MCP server was not reached: {e:#}")
            }
            // A refresh or login that failed names its own step.
            _ => format!("{e:#}"),
        }
    }

    /// Errors for the requests `keys`, saying why; for a message with none, a log line.
    fn fail(&self, keys: &[String], why: &str) {
        if keys.is_empty() {
            log::warn!("bridge: a message to the server was lost: {why}");
        }
        for key in keys {
            self.output.fail(key, UNANSWERED, why);
        }
    }

    /// A slot for one more request in flight, waiting up to `within` for one to free; false
    /// when none did (answers kept open by a server that never ends them).
    fn acquire(&self, within: Duration) -> bool {
        let (count, freed) = &self.in_flight;
        let n = lock(count);
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
        let mut n = lock(count);
        *n = n.saturating_sub(1);
        freed.notify_all();
    }

    /// At the input's end: the requests still awaited get up to the drain timeout to be
    /// answered, then an error each; the MCP session is ended; nothing more is written.
    fn finish(&self) {
        let left = self.output.wait_answered(*lock(&self.drain));
        if left > 0 {
            log::warn!("bridge: {left} request(s) still unanswered at the end");
            self.output.fail_all(
                UNANSWERED,
                "the bridge is ending (its input ended) before the MCP server answered",
            );
        }
        self.stopping.store(true, Ordering::SeqCst);
        self.output.close();
        self.end_session();
    }

    fn mcp(&self) -> McpSession {
        lock(&self.mcp).clone()
    }
}

/// A stateless request's cancellation (revision 2026-07-28: on HTTP the stream carrying the
/// answer is closed instead of a notification sent). True when `message` was one.
fn stateless_cancellation(output: &Output, message: &Message<'_>) -> bool {
    if message.kind != Kind::Notification || !message.is("notifications/cancelled") {
        return false;
    }
    let key = message.param("requestId").and_then(message::id_key);
    key.is_some_and(|key| output.cancel_stateless(&key))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

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
            ("Mcp-Method", "tools/call"),
            ("Mcp-Param-Region", "x"),
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

    #[test]
    fn transports_by_name() {
        assert_eq!("sse".parse::<Transport>().unwrap(), Transport::Sse);
        assert_eq!(
            "streamable".parse::<Transport>().unwrap(),
            Transport::Streamable
        );
        assert!("websocket".parse::<Transport>().is_err());
    }
}
