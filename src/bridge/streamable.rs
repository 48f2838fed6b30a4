//! A message's exchange with the server over Streamable HTTP (every revision from 2025-03-26
//! on): the POST with its revision's headers, the answer written back (JSON or an event
//! stream), the retry of a 2026-07-28 tool call whose headers the server refused, the server's
//! own event stream of a session, and the session's end.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use ureq::http::Response;

use super::budget::{Budget, Held};
use super::headers::{content_type, routing_headers, screen_tools};
use super::legacy;
use super::message::{self, Kind, Message, id_from_prefix};
use super::sse::{Cut, EventReader};
use super::{
    HEADER_MISMATCH, MAX_MESSAGE, Outgoing, STREAM_IDLE_TIMEOUT, Shared, Transport, UNANSWERED,
    lock,
};
use crate::error::{Error, ErrorKind, OAuthErrorCode, Result, Step, printable};

impl Shared {
    /// Sends a request to the server: through the session's flows (a 401 logs in, a 403
    /// steps up), unless the server refused a newly obtained token before; then with the
    /// cached token only, a 401 being an error.
    pub(super) fn send(
        &self,
        build: impl FnMut(&ureq::Agent) -> std::result::Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>> {
        let mut build = build;
        if self.refused.load(Ordering::SeqCst) {
            let response = build(self.session.agent())
                .map_err(|e| Error::from_agent(e, Step::Request, "the MCP request failed"))?;
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
                "bridge: {e:#}; no more logins are started: later requests are sent with the \
                 cached token only"
            );
        }
        sent
    }

    /// A request to the server with the headers of `outgoing`'s revision and the static
    /// ones; redirects are not followed (they would carry the session's headers elsewhere).
    pub(super) fn request<B>(
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

    pub(super) fn with_static_headers<B>(
        &self,
        req: ureq::RequestBuilder<B>,
    ) -> ureq::RequestBuilder<B> {
        let mut req = req;
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        req
    }

    /// Sends one message the way its revision and the transport say, and writes what comes
    /// back.
    pub(super) fn forward(shared: &Arc<Shared>, outgoing: &Outgoing) {
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
    pub(super) fn post(&self, outgoing: &Outgoing) -> Result<Response<ureq::Body>> {
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
    pub(super) fn remember_session(&self, response: &Response<ureq::Body>) {
        let id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned);
        lock(&self.mcp).id = id;
    }

    /// Writes the messages of a POST's answer; errors for the requests it leaves unanswered.
    pub(super) fn answer(&self, outgoing: &Outgoing, response: Response<ureq::Body>) {
        let status = response.status().as_u16();
        let content_type = content_type(&response);
        let mut cut = None;
        if (200..300).contains(&status)
            && content_type.starts_with("text/event-stream")
            && outgoing.keys.is_empty()
        {
            // A notification or a client's answer takes no stream (servers answer 202): one
            // read to its end would hold the input behind it, which keeps such messages in
            // order. Dropped unread.
            log::debug!("bridge: an event stream in answer to a message without an id dropped");
        } else if (200..300).contains(&status) && content_type.starts_with("text/event-stream") {
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
            if Message::parse(&body).is_ok_and(|m| m.kind == Kind::Response) {
                if self.retry_after_header_mismatch(outgoing, &body) {
                    return;
                }
                self.deliver(outgoing, &mut body);
            } else {
                self.learn_from_refused_probe(outgoing, status);
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
        let why = cut.map_or_else(
            || "the MCP server's answer ended without a response to this request".to_owned(),
            not_kept,
        );
        self.fail(&outgoing.keys, &why);
    }

    /// A 2026-07-28 request refused with HTTP 404 or 405 and no JSON-RPC error, before any
    /// session, under [`Transport::Auto`]: the URL takes no POST, so the server is neither of
    /// 2026-07-28 nor of Streamable HTTP. Its client falls back to `initialize` next, which then
    /// goes straight to the HTTP+SSE transport instead of being refused once more.
    fn learn_from_refused_probe(&self, outgoing: &Outgoing, status: u16) {
        if !outgoing.stateless || !matches!(status, 404 | 405) || self.mcp().id.is_some() {
            return;
        }
        let mut transport = lock(&self.transport);
        if *transport == Transport::Auto {
            log::info!(
                "bridge: the server answers a POST with HTTP {status}: it is not of revision \
                 2026-07-28; the next messages try the HTTP+SSE transport of 2024-11-05"
            );
            *transport = Transport::Sse;
        }
    }

    /// Writes one message of an answer to `outgoing`: a `tools/list` answer of 2026-07-28
    /// without the tools whose argument headers break the rules, whose headers are kept.
    pub(super) fn deliver(&self, outgoing: &Outgoing, bytes: &mut [u8]) {
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
    pub(super) fn retry_after_header_mismatch(&self, outgoing: &Outgoing, body: &[u8]) -> bool {
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

    /// Writes each whole JSON event of a server's own stream (only those of type `only`, when
    /// given) as a message, until the stream ends or the bridge stops.
    pub(super) fn relay<R: std::io::BufRead>(
        &self,
        reader: &mut EventReader<R>,
        only: Option<&str>,
    ) {
        while let Ok(Some(event)) = reader.next_event() {
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            if event.cut.is_some() || only.is_some_and(|only| event.event != only) {
                continue;
            }
            let data = reader.data_mut();
            if serde_json::from_slice::<&serde_json::value::RawValue>(data).is_ok() {
                self.note_version(data);
                self.output.write_server_message(data);
            }
        }
    }

    /// Keeps the protocol version an `initialize` result agreed to.
    pub(super) fn note_version(&self, bytes: &[u8]) {
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
            .filter(|v| message::could_be_revision(v));
        if let Some(version) = version {
            lock(&self.mcp).protocol_version = Some(version);
        }
    }

    /// Writes each event of an answer's stream as a message until every request of
    /// `outgoing` has its response, or the stream ends; stops early when the client cancels.
    /// Returns why an event was cut, when one was.
    pub(super) fn read_stream(&self, body: ureq::Body, outgoing: &Outgoing) -> Option<Cut> {
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
            if cancelled || !answering(self) {
                break;
            }
            let event = match reader.next_event() {
                Ok(Some(event)) => event,
                Ok(None) | Err(_) => break,
            };
            if event.cut.is_some() {
                // Answered with its own id when its start names one.
                let id = id_from_prefix(reader.data()).map(|id| id.to_string());
                let why = event.cut.map(not_kept).unwrap_or_default();
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
    pub(super) fn start_get_stream(shared: &Arc<Shared>) {
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
            log::warn!("bridge: cannot start the event stream thread: {e:#}");
        }
    }

    /// The server's own messages (revisions 2025-03-26 to 2025-11-25): the GET stream,
    /// reopened with `Last-Event-ID` after a drop (waiting what the stream asked, or one
    /// second, doubling up to 30); given up when the server offers none (405) or the bridge
    /// is stopping. It never starts a login: a stream refused with 401 waits for the token a
    /// request's login brings.
    pub(super) fn get_stream(&self) {
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
                    self.relay(&mut reader, None);
                    last_id = reader.last_event_id().map(str::to_owned).or(last_id);
                    wait = reader.retry().unwrap_or(Duration::from_secs(1));
                }
                Ok(r) if matches!(r.status().as_u16(), 404 | 405) => {
                    log::debug!("bridge: the server offers no event stream");
                    return;
                }
                Ok(r) => log::debug!("bridge: event stream HTTP {}", r.status()),
                Err(e) => log::debug!("bridge: event stream: {e:#}"),
            }
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }

    /// Ends the MCP session (a DELETE), when the server gave one.
    pub(super) fn end_session(&self) {
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
            log::debug!("bridge: ending the session: {e:#}");
        }
    }
}

/// Whether `outgoing` is an `initialize` request.
fn is_initialize_body(outgoing: &Outgoing) -> bool {
    !outgoing.stateless
        && outgoing.method.as_deref() == Some("initialize")
        && !outgoing.keys.is_empty()
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

/// Why an answer of the server's was not kept, as its request's error says.
fn not_kept(cut: Cut) -> String {
    match cut {
        Cut::TooLarge => format!("the MCP server's answer is larger than {MAX_MESSAGE} bytes"),
        Cut::NoRoom => "the bridge holds too much of the MCP server's answers at once".to_owned(),
    }
}

/// A JSON answer's body, within [`MAX_MESSAGE`] and the budget.
fn read_body(body: ureq::Body, budget: &Arc<Budget>) -> std::result::Result<Held, String> {
    let mut held = Held::new(Some(Arc::clone(budget)));
    let mut reader = body.into_reader();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = reader
            .read(&mut chunk)
            .map_err(|e| format!("the MCP server's answer could not be read: {e:#}"))?;
        if n == 0 {
            break;
        }
        if held.bytes().len() + n > MAX_MESSAGE {
            return Err(not_kept(Cut::TooLarge));
        }
        if !held.make_room(n) {
            return Err(not_kept(Cut::NoRoom));
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
