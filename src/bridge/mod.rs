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

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::Value;
use ureq::http::Response;

use crate::Session;
use crate::error::{Error, ErrorKind, OAuthErrorCode, Result, Step, printable};
use budget::{Budget, Held};
use headers::{ParamHeader, routing_headers, screen_tools};
use message::{Kind, Message, NotAMessage, id_from_prefix};
use output::{Output, request_keys};
use sse::{Cut, EventReader};

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
            log::warn!("bridge: cannot start a thread: {e}");
        }
    }

    /// Why a message did not reach the server, for its error.
    fn unreached(&self, e: &Error) -> String {
        match (e.kind(), lock(&self.login_hint).as_deref()) {
            (ErrorKind::LoginRequired, Some(hint)) => format!("a login is needed: {hint}"),
            _ => format!("the MCP server was not reached: {e}"),
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

    /// Sends a request to the server: through the session's flows (a 401 logs in, a 403
    /// steps up), unless the server refused a newly obtained token before; then with the
    /// cached token only, a 401 being an error.
    fn send(
        &self,
        build: impl FnMut(&ureq::Agent) -> std::result::Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>> {
        let mut build = build;
        if self.refused.load(Ordering::SeqCst) {
            let response = build(self.session.agent()).map_err(|e| {
                Error::new(
                    ErrorKind::Transport,
                    Step::Request,
                    "the MCP request failed",
                )
                .with_source(e)
            })?;
            if response.status().as_u16() == 401 {
                return Err(Error::new(
                    ErrorKind::OAuth,
                    Step::Request,
                    "the MCP server refused a newly obtained token before, and refuses the \
                     token again; no more logins are started by this bridge",
                )
                .with_oauth_code("invalid_token"));
            }
            return Ok(response);
        }
        let sent = self.session.send(build);
        if let Err(e) = &sent
            && e.step() == Step::Request
            && e.oauth_code() == Some(OAuthErrorCode::InvalidToken)
            && !self.refused.swap(true, Ordering::SeqCst)
        {
            log::error!(
                "bridge: {e}; no more logins are started: later requests are sent with the \
                 cached token only"
            );
        }
        sent
    }

    /// A request to the server with the headers of `outgoing`'s revision and the static
    /// ones; redirects are not followed (they would carry the session's headers elsewhere).
    fn request<B>(
        &self,
        req: ureq::RequestBuilder<B>,
        outgoing: &Outgoing,
    ) -> ureq::RequestBuilder<B> {
        let mut req = req;
        if outgoing.stateless {
            for (name, value) in &outgoing.routing {
                req = req.header(name, value);
            }
        } else {
            let mcp = self.mcp();
            if let Some(id) = &mcp.id {
                req = req.header("mcp-session-id", id);
            }
            if let Some(version) = &mcp.protocol_version {
                req = req.header("mcp-protocol-version", version);
            }
        }
        self.with_static_headers(req)
    }

    fn with_static_headers<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        let mut req = req;
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        req
    }

    /// Sends one message the way its revision and the transport say, and writes what comes
    /// back.
    fn forward(shared: &Arc<Shared>, outgoing: &Outgoing) {
        let transport = *lock(&shared.transport);
        if !outgoing.stateless && transport == Transport::Sse {
            return legacy::forward(shared, outgoing);
        }
        let response = shared.post(outgoing);
        let response = match response {
            Ok(r) => r,
            Err(e) => return shared.fail(&outgoing.keys, &shared.unreached(&e)),
        };
        let status = response.status().as_u16();
        if !outgoing.stateless && transport == Transport::Auto {
            if matches!(status, 404 | 405) && shared.mcp().id.is_none() {
                log::info!(
                    "bridge: the server answers a POST with HTTP {status}: trying the HTTP+SSE \
                     transport of 2024-11-05"
                );
                *lock(&shared.transport) = Transport::Sse;
                drop(response);
                return legacy::forward(shared, outgoing);
            }
            *lock(&shared.transport) = Transport::Streamable;
        }
        if is_initialize_body(outgoing) {
            shared.remember_session(&response);
        }
        shared.answer(outgoing, response);
    }

    /// POSTs a message to the MCP endpoint.
    fn post(&self, outgoing: &Outgoing) -> Result<Response<ureq::Body>> {
        self.send(|agent| {
            self.request(agent.post(self.url.as_str()), outgoing)
                .header("accept", "application/json, text/event-stream")
                .content_type("application/json")
                .config()
                .max_redirects(0)
                .timeout_per_read(Some(STREAM_IDLE_TIMEOUT))
                .build()
                .send(&outgoing.body[..])
        })
    }

    /// Keeps the `Mcp-Session-Id` of an `initialize` answer.
    fn remember_session(&self, response: &Response<ureq::Body>) {
        let id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned);
        lock(&self.mcp).id = id;
    }

    /// Writes the messages of a POST's answer; errors for the requests it leaves unanswered.
    fn answer(&self, outgoing: &Outgoing, response: Response<ureq::Body>) {
        let status = response.status().as_u16();
        let content_type = content_type(&response);
        let mut cut = None;
        if (200..300).contains(&status) && content_type.starts_with("text/event-stream") {
            cut = self.read_stream(response.into_body(), outgoing);
        } else if (200..300).contains(&status) && content_type.starts_with("application/json") {
            match read_body(response.into_body(), &self.budget) {
                Ok(mut body) if !body.bytes().trim_ascii().is_empty() => {
                    self.deliver(outgoing, body.bytes_mut());
                }
                // An empty body (servers on the MCP Python SDK answer a notification 202 with
                // a JSON content type and nothing in it): nothing comes back.
                Ok(_) => {}
                Err(why) => return self.fail(&outgoing.keys, &why),
            }
        } else if (200..300).contains(&status) {
            // 202 Accepted: a notification or a response, nothing comes back.
        } else if (300..400).contains(&status) {
            return self.fail(
                &outgoing.keys,
                &format!("the MCP server answered HTTP {status}, a redirect, which the bridge does not follow"),
            );
        } else {
            let mut body = Vec::new();
            let _ = response
                .into_body()
                .into_reader()
                .take(16 * 1024)
                .read_to_end(&mut body);
            // A JSON-RPC error object from the server answers the request itself.
            if serde_json::from_slice::<&serde_json::value::RawValue>(&body).is_ok()
                && Message::parse(&body).is_ok_and(|m| m.kind == Kind::Response)
            {
                if self.retry_after_header_mismatch(outgoing, &body) {
                    return;
                }
                self.deliver(outgoing, &mut body);
            }
            let why = match status {
                404 if !outgoing.stateless && self.mcp().id.is_some() => {
                    "the MCP server ended the session (HTTP 404); initialize again".to_owned()
                }
                _ => format!("the MCP server answered HTTP {status}"),
            };
            return self.fail(&outgoing.keys, &why);
        }
        if outgoing.keys.is_empty() {
            return;
        }
        let why = match cut {
            Some(Cut::TooLarge) => {
                format!("the MCP server's answer is larger than {MAX_MESSAGE} bytes")
            }
            Some(Cut::NoRoom) => {
                "the bridge holds too much of the MCP server's answers at once".to_owned()
            }
            None => "the MCP server's answer ended without a response to this request".to_owned(),
        };
        self.fail(&outgoing.keys, &why);
    }

    /// Writes one message of an answer to `outgoing`: a `tools/list` answer of 2026-07-28
    /// without the tools whose argument headers break the rules, whose headers are kept.
    fn deliver(&self, outgoing: &Outgoing, bytes: &mut [u8]) {
        if outgoing.stateless && outgoing.method.as_deref() == Some("tools/list") {
            let screened = screen_tools(bytes);
            for (name, why) in &screened.dropped {
                log::warn!(
                    "bridge: the server's tool {} is left out: {}",
                    printable(name),
                    printable(why)
                );
            }
            lock(&self.tools).extend(screened.headers);
            if let Some(mut rewritten) = screened.rewritten {
                self.output.write_server_message(&mut rewritten);
                return;
            }
        }
        if !outgoing.stateless {
            self.note_version(bytes);
        }
        self.output.write_server_message(bytes);
    }

    /// After a 2026-07-28 `tools/call` was refused for its headers (the server's tool may have
    /// changed its `x-mcp-header` annotations since it was listed, or was never listed): lists
    /// the tools again and sends the call once more, as that revision advises. True when it
    /// did.
    fn retry_after_header_mismatch(&self, outgoing: &Outgoing, body: &[u8]) -> bool {
        let mismatch = serde_json::from_slice::<Value>(body)
            .is_ok_and(|v| v["error"]["code"] == HEADER_MISMATCH);
        if !outgoing.stateless
            || outgoing.method.as_deref() != Some("tools/call")
            || !mismatch
            || outgoing.retried
        {
            return false;
        }
        let Ok(message) = Message::parse(&outgoing.body) else {
            return false;
        };
        let (Some(version), Some(name)) = (message.protocol_version(), message.param_str("name"))
        else {
            return false;
        };
        log::info!("bridge: the server refused a tool call's headers; listing its tools again");
        let list = serde_json::json!({
            "jsonrpc": "2.0",
            "id": "mcp-oauth-bridge/tools-list",
            "method": "tools/list",
            "params": {"_meta": {
                message::PROTOCOL_VERSION_META: version,
                "io.modelcontextprotocol/clientCapabilities": {},
            }},
        })
        .to_string()
        .into_bytes();
        let listing = Outgoing {
            routing: routing_headers(&Message::parse(&list).expect("a message"), &[]),
            body: list,
            keys: Vec::new(),
            method: Some("tools/list".into()),
            stateless: true,
            cancelled: None,
            retried: true,
        };
        let listed = self
            .post(&listing)
            .ok()
            .filter(|r| r.status().is_success() && content_type(r).starts_with("application/json"))
            .and_then(|r| read_body(r.into_body(), &self.budget).ok());
        let Some(listed) = listed else {
            return false;
        };
        let screened = screen_tools(listed.bytes());
        let params = screened.headers.get(&name).cloned().unwrap_or_default();
        lock(&self.tools).extend(screened.headers);
        let again = Outgoing {
            body: outgoing.body.clone(),
            keys: outgoing.keys.clone(),
            method: outgoing.method.clone(),
            stateless: true,
            routing: routing_headers(&message, &params),
            cancelled: outgoing.cancelled.clone(),
            retried: true,
        };
        match self.post(&again) {
            Ok(response) => self.answer(&again, response),
            Err(e) => self.fail(&again.keys, &self.unreached(&e)),
        }
        true
    }

    /// Keeps the protocol version an `initialize` result agreed to.
    fn note_version(&self, bytes: &[u8]) {
        if !bytes.windows(15).any(|w| w == b"protocolVersion") {
            return;
        }
        #[derive(serde::Deserialize)]
        struct Reply {
            result: Option<InitResult>,
        }
        #[derive(serde::Deserialize)]
        struct InitResult {
            #[serde(rename = "protocolVersion")]
            protocol_version: Option<String>,
        }
        let version = serde_json::from_slice::<Reply>(bytes)
            .ok()
            .and_then(|r| r.result?.protocol_version)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()));
        if let Some(version) = version {
            lock(&self.mcp).protocol_version = Some(version);
        }
    }

    /// Writes each event of an answer's stream as a message until every request of
    /// `outgoing` has its response, or the stream ends; stops early when the client cancels.
    /// Returns why an event was cut, when one was.
    fn read_stream(&self, body: ureq::Body, outgoing: &Outgoing) -> Option<Cut> {
        let input = std::io::BufReader::new(Cancellable {
            inner: body.into_reader(),
            cancelled: outgoing.cancelled.clone(),
        });
        let mut reader = EventReader::with_budget(input, MAX_MESSAGE, Arc::clone(&self.budget));
        let mut cut = None;
        let answering = |s: &Shared| outgoing.keys.iter().any(|k| s.output.awaits(k));
        loop {
            let cancelled = outgoing
                .cancelled
                .as_ref()
                .is_some_and(|c| c.load(Ordering::SeqCst));
            if cancelled || (!outgoing.keys.is_empty() && !answering(self)) {
                break;
            }
            let event = match reader.next_event() {
                Ok(Some(event)) => event,
                Ok(None) | Err(_) => break,
            };
            if event.cut.is_some() {
                // Answered with its own id when its start names one.
                let id = id_from_prefix(reader.data()).map(|id| id.to_string());
                let why = match event.cut {
                    Some(Cut::TooLarge) => {
                        format!("the MCP server's answer is larger than {MAX_MESSAGE} bytes")
                    }
                    _ => "the bridge holds too much of the MCP server's answers at once".to_owned(),
                };
                match id {
                    Some(key) => self.output.fail(&key, UNANSWERED, &why),
                    None => log::warn!("bridge: a message of the server's was dropped: {why}"),
                }
                cut = cut.or(event.cut);
                continue;
            }
            let data = reader.data_mut();
            if serde_json::from_slice::<&serde_json::value::RawValue>(data).is_err() {
                log::debug!("bridge: an event that is not JSON was skipped");
                continue;
            }
            self.deliver(outgoing, data);
        }
        cut
    }

    /// Opens the server's GET event stream once, on its own thread.
    fn start_get_stream(shared: &Arc<Shared>) {
        if *lock(&shared.transport) == Transport::Sse
            || shared.get_stream_started.swap(true, Ordering::SeqCst)
        {
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

    /// The server's own messages (revisions 2025-03-26 to 2025-11-25): the GET stream,
    /// reopened with `Last-Event-ID` after a drop (waiting what the stream asked, or one
    /// second, doubling up to 30); given up when the server offers none (405) or the bridge
    /// is stopping. It never starts a login: a stream refused with 401 waits for the token a
    /// request's login brings.
    fn get_stream(&self) {
        let mut last_id: Option<String> = None;
        let mut wait = Duration::from_secs(1);
        while !self.stopping.load(Ordering::SeqCst) {
            let mut req = self
                .with_static_headers(self.session.agent().get(self.url.as_str()))
                .header("accept", "text/event-stream");
            let mcp = self.mcp();
            if let Some(id) = &mcp.id {
                req = req.header("mcp-session-id", id);
            }
            if let Some(version) = &mcp.protocol_version {
                req = req.header("mcp-protocol-version", version);
            }
            if let Some(id) = &last_id {
                req = req.header("last-event-id", id);
            }
            let response = req
                .config()
                .max_redirects(0)
                .timeout_per_read(Some(STREAM_IDLE_TIMEOUT))
                .build()
                .call();
            match response {
                Ok(r) if r.status().as_u16() == 200 => {
                    let input = std::io::BufReader::new(r.into_body().into_reader());
                    let mut reader =
                        EventReader::with_budget(input, MAX_MESSAGE, Arc::clone(&self.budget));
                    while let Ok(Some(event)) = reader.next_event() {
                        if self.stopping.load(Ordering::SeqCst) {
                            return;
                        }
                        let data = reader.data_mut();
                        if event.cut.is_none()
                            && serde_json::from_slice::<&serde_json::value::RawValue>(data).is_ok()
                        {
                            self.note_version(data);
                            self.output.write_server_message(data);
                        }
                    }
                    last_id = reader.last_event_id().map(str::to_owned).or(last_id);
                    wait = reader.retry().unwrap_or(Duration::from_secs(1));
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
        let Some(id) = self.mcp().id else {
            return;
        };
        // The agent, not `send`: a 401 here must not start a login once the client has gone.
        let ended = self
            .with_static_headers(self.session.agent().delete(self.url.as_str()))
            .header("mcp-session-id", &id)
            .config()
            .max_redirects(0)
            .build()
            .call();
        if let Err(e) = ended {
            log::debug!("bridge: ending the session: {e}");
        }
    }
}

/// Whether `outgoing` is an `initialize` request.
fn is_initialize_body(outgoing: &Outgoing) -> bool {
    !outgoing.stateless
        && outgoing.method.as_deref() == Some("initialize")
        && !outgoing.keys.is_empty()
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

/// A response's content type, lower case.
fn content_type(response: &Response<ureq::Body>) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// A reader that fails once its request is cancelled: the stream of the answer is then
/// dropped, which closes its connection (revision 2026-07-28's cancellation), at the server's
/// next bytes, keep-alive comments included.
struct Cancellable<R> {
    inner: R,
    cancelled: Option<Arc<AtomicBool>>,
}

impl<R: Read> Read for Cancellable<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self
            .cancelled
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
        {
            return Err(std::io::Error::other("the request was cancelled"));
        }
        self.inner.read(buf)
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

/// A JSON answer's body, within [`MAX_MESSAGE`] and the budget.
fn read_body(body: ureq::Body, budget: &Arc<Budget>) -> std::result::Result<Held, String> {
    let mut held = Held::new(Some(Arc::clone(budget)));
    let mut reader = body.into_reader();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = reader
            .read(&mut chunk)
            .map_err(|e| format!("the MCP server's answer could not be read: {e}"))?;
        if n == 0 {
            break;
        }
        if held.bytes().len() + n > MAX_MESSAGE {
            return Err(format!(
                "the MCP server's answer is larger than {MAX_MESSAGE} bytes"
            ));
        }
        if !held.make_room(n) {
            return Err("the bridge holds too much of the MCP server's answers at once".into());
        }
        held.bytes_mut().extend_from_slice(&chunk[..n]);
    }
    if serde_json::from_slice::<&serde_json::value::RawValue>(held.bytes()).is_err()
        && !held.bytes().trim_ascii().is_empty()
    {
        return Err("the MCP server's answer is not JSON".into());
    }
    Ok(held)
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
