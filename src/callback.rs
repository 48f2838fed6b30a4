//! The loopback redirect listener (RFC 8252 §7.3, §8.3) and the authorization response checks
//! (RFC 6749 §4.1.2, RFC 9207, MCP authorization).
//!
//! The listener binds 127.0.0.1 only and serves `/callback`. Each connection is read on its own
//! thread, at most [`MAX_CALLBACK_REQUEST`] bytes within two seconds, at most 64 at once; a
//! connection beyond that closes the oldest one being read, so clients that connect and stay
//! idle, or send a byte a second, cannot hold the port however many they are. Junk, oversized,
//! non-GET and wrong-`Host` requests, favicon fetches and responses with a wrong or missing
//! `state` get an error page and do not end the wait; the first response with the right
//! `state` does. The `iss` parameter is checked before the code is released (RFC 9207 §2.4).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use crate::error::{Error, ErrorKind, Result, Step};
use crate::secret::{Secret, constant_time_eq};

/// The largest callback request read (request line and headers), in bytes.
pub const MAX_CALLBACK_REQUEST: usize = 8 * 1024;

/// How long one connection may take to send its request head, in total.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// How long writing a page may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The most connections read at the same time; a new one beyond that closes the oldest.
const MAX_IN_FLIGHT: usize = 64;

/// How long a refused connection is drained before it is closed.
const LINGER: Duration = Duration::from_millis(200);

/// How long accepting pauses after a failed accept (out of file descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Query parameters whose values never appear in `Debug` output.
const SECRET_PARAMS: [&str; 4] = ["code", "state", "access_token", "id_token"];

/// The path of the redirect URI.
pub const CALLBACK_PATH: &str = "/callback";

/// The host name in the redirect URI. The listener binds 127.0.0.1 in both cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallbackHost {
    /// `http://127.0.0.1:PORT/callback` (RFC 8252 §7.3 recommends the IP literal).
    #[default]
    Ip,
    /// `http://localhost:PORT/callback`, for servers that only accept that spelling.
    Localhost,
}

/// A parsed HTTP request as it reached the callback port. `Debug` hides the values of `code`
/// and `state`.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackRequest {
    /// The request method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The decoded query parameters.
    pub params: Vec<(String, String)>,
    /// The `Host` header, when present.
    pub host: Option<String>,
}

impl std::fmt::Debug for CallbackRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let params: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(k, v)| {
                let shown = if SECRET_PARAMS.contains(&k.as_str()) {
                    "[redacted]"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("CallbackRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("params", &params)
            .field("host", &self.host)
            .finish()
    }
}

/// Why a callback request was not accepted as an HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackParseError {
    /// The headers did not end within [`MAX_CALLBACK_REQUEST`] bytes.
    TooLarge,
    /// The bytes stop before the blank line that ends the headers.
    Incomplete,
    /// The request line or a header is malformed, or `Host` is repeated.
    Malformed,
}

/// Parses the raw bytes of an HTTP/1.x request head as read from the callback socket: the
/// request line and headers up to the blank line (anything after it is ignored).
///
/// # Errors
/// [`CallbackParseError`] for oversized, incomplete or malformed input; never panics.
///
/// ```
/// use mcp_oauth_client::parse_callback_request;
/// let r = parse_callback_request(
///     b"GET /callback?code=abc&state=xyz HTTP/1.1\r\nHost: 127.0.0.1:8765\r\n\r\n",
/// ).unwrap();
/// assert_eq!(r.path, "/callback");
/// assert_eq!(r.params[0], ("code".to_string(), "abc".to_string()));
/// ```
pub fn parse_callback_request(raw: &[u8]) -> Result<CallbackRequest, CallbackParseError> {
    let Some(end) = head_end(raw) else {
        return Err(if raw.len() > MAX_CALLBACK_REQUEST {
            CallbackParseError::TooLarge
        } else {
            CallbackParseError::Incomplete
        });
    };
    if end > MAX_CALLBACK_REQUEST {
        return Err(CallbackParseError::TooLarge);
    }
    let head = std::str::from_utf8(&raw[..end - 4]).map_err(|_| CallbackParseError::Malformed)?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().ok_or(CallbackParseError::Malformed)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(CallbackParseError::Malformed);
    };
    if method.is_empty() || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(CallbackParseError::Malformed);
    }
    let mut host = None;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(CallbackParseError::Malformed)?;
        if name.eq_ignore_ascii_case("host") {
            // RFC 9112 §3.2: more than one Host header is a bad request.
            if host.replace(value.trim().to_owned()).is_some() {
                return Err(CallbackParseError::Malformed);
            }
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    Ok(CallbackRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        params,
        host,
    })
}

/// The length of the request head including its closing blank line, when it is complete.
fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// What an authorization response must match. `Debug` hides the `state`.
#[derive(Clone, Copy)]
pub struct CallbackExpectation<'a> {
    /// The `state` sent on the authorization request.
    pub state: &'a str,
    /// The issuer of the authorization server the request went to.
    pub issuer: &'a str,
    /// The server advertised `authorization_response_iss_parameter_supported` (RFC 9207 §3).
    pub iss_required: bool,
}

impl std::fmt::Debug for CallbackExpectation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackExpectation")
            .field("state", &"[redacted]")
            .field("issuer", &self.issuer)
            .field("iss_required", &self.iss_required)
            .finish()
    }
}

/// The verdict on one authorization response.
#[derive(Debug)]
pub enum CallbackOutcome {
    /// The right `state` and a code: redeem it.
    Code(Secret),
    /// The right `state` and an error (or an `iss` mismatch): the flow ends with this error.
    Failed(Error),
    /// Not the response we wait for (no or wrong `state`): answer and keep waiting.
    Ignored(&'static str),
}

/// Checks an authorization response's parameters (RFC 6749 §4.1.2, §10.12; RFC 9207 §2.4).
///
/// The `state` is compared in constant time. The `iss` table, with no normalisation:
/// present → must equal the issuer; absent → an error when the server advertised it. An
/// `error_description` that echoes the `state` or a `code` has them removed.
pub fn validate_callback(
    params: &[(String, String)],
    expect: &CallbackExpectation<'_>,
) -> CallbackOutcome {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get("state") {
        Some(s) if constant_time_eq(s.as_bytes(), expect.state.as_bytes()) => {}
        Some(_) => return CallbackOutcome::Ignored("the state does not match this login"),
        None => return CallbackOutcome::Ignored("the request carries no state"),
    }
    let refuse =
        |msg: &str| CallbackOutcome::Failed(Error::new(ErrorKind::Refused, Step::Callback, msg));
    match get("iss") {
        Some(iss) if iss != expect.issuer => {
            return refuse(
                "the authorization response's iss is not the expected issuer (RFC 9207 mix-up defence)",
            );
        }
        None if expect.iss_required => {
            return refuse(
                "the authorization server advertises RFC 9207 but its response has no iss",
            );
        }
        _ => {}
    }
    if let Some(code) = get("error") {
        let secrets = [expect.state, get("code").unwrap_or("")];
        let description = get("error_description").map(|d| crate::http::redact(d, &secrets));
        return CallbackOutcome::Failed(Error::oauth(
            Step::Callback,
            &crate::http::redact(code, &secrets),
            description.as_deref(),
        ));
    }
    match get("code") {
        Some(code) if !code.is_empty() => CallbackOutcome::Code(Secret::new(code)),
        _ => refuse("the authorization response has neither code nor error"),
    }
}

/// The loopback listener that receives the authorization response.
#[derive(Debug)]
pub struct CallbackListener {
    listener: TcpListener,
    redirect_uri: Url,
}

/// A request for the callback path that passed the HTTP checks, waiting for the verdict on its
/// `state` from the thread that holds the expectation.
struct Candidate {
    stream: TcpStream,
    params: Vec<(String, String)>,
}

/// The connections being read, oldest first. At most [`MAX_IN_FLIGHT`]: a new connection
/// beyond that closes the oldest, so connections that are opened and left idle (or fed a byte
/// at a time) can delay the real redirect by one eviction at most, never lock it out.
#[derive(Default)]
struct Reading {
    open: Mutex<VecDeque<(u64, TcpStream)>>,
    next_id: AtomicU64,
}

impl Reading {
    /// A slot for `stream`, closing the oldest connection being read when all are taken.
    /// `None` when the stream cannot be registered (no file descriptor for a clone).
    fn admit(self: &Arc<Self>, stream: &TcpStream) -> Option<Slot> {
        let handle = stream.try_clone().ok()?;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() >= MAX_IN_FLIGHT
            && let Some((_, oldest)) = open.pop_front()
        {
            // Its reader's read returns at once and the thread ends.
            let _ = oldest.shutdown(std::net::Shutdown::Both);
        }
        open.push_back((id, handle));
        Some(Slot {
            reading: Arc::clone(self),
            id,
        })
    }
}

/// One connection's place in [`Reading`], given back on drop.
struct Slot {
    reading: Arc<Reading>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.reading.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|(id, _)| *id != self.id);
    }
}

impl CallbackListener {
    /// Binds 127.0.0.1 on `port` (0 picks a free one).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the port cannot be bound.
    pub fn bind(host: CallbackHost, port: u16) -> Result<CallbackListener> {
        let listener =
            TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    Step::Callback,
                    format!("cannot listen on 127.0.0.1:{port}"),
                )
                .with_source(e)
            })?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
        let name = match host {
            CallbackHost::Ip => "127.0.0.1",
            CallbackHost::Localhost => "localhost",
        };
        let redirect_uri =
            Url::parse(&format!("http://{name}:{port}{CALLBACK_PATH}")).map_err(|e| {
                Error::new(ErrorKind::Config, Step::Callback, "bad redirect URI").with_source(e)
            })?;
        Ok(CallbackListener {
            listener,
            redirect_uri,
        })
    }

    /// The redirect URI this listener answers, `http://127.0.0.1:PORT/callback`.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.redirect_uri.port().unwrap_or(0)
    }

    /// Waits up to `timeout` for the authorization response, answering every request with a
    /// page, and returns the code. Connections are read concurrently (at most 64 at once, the
    /// oldest closed for a new one, each for at most two seconds), so slow, idle or junk
    /// clients cannot hold the wait. The port is
    /// released when this returns.
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`] when no valid response came in time; the OAuth error of an error
    /// response (`access_denied`, …); [`ErrorKind::Refused`] for an `iss` mismatch.
    pub fn wait(self, expect: &CallbackExpectation<'_>, timeout: Duration) -> Result<Secret> {
        let deadline = Instant::now() + timeout;
        let (tx, rx) = mpsc::channel();
        let port = self.port();
        let acceptor = Acceptor::start(self.listener, tx, port)?;
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(candidate) => {
                    if let Some(result) = decide(candidate, expect) {
                        break result;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    break Err(Error::new(
                        ErrorKind::Timeout,
                        Step::Callback,
                        format!(
                            "no authorization response reached {} within {} s",
                            self.redirect_uri,
                            timeout.as_secs()
                        ),
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    break Err(Error::new(
                        ErrorKind::Config,
                        Step::Callback,
                        "the callback listener stopped",
                    ));
                }
            }
        };
        drop(acceptor);
        for mut late in rx.try_iter() {
            respond(&mut late.stream, 400, &page::failure(FINISHED));
        }
        result
    }
}

/// The page text for a response that arrives after the wait ended.
const FINISHED: &str = "No sign-in is waiting for this response any more.";

/// The thread that accepts connections while a wait lasts; dropping it stops the thread and
/// closes the listening socket.
struct Acceptor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Acceptor {
    fn start(listener: TcpListener, tx: Sender<Candidate>, port: u16) -> Result<Acceptor> {
        let addr = listener.local_addr().map_err(io_error)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("mcp-oauth-callback-accept".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || accept_loop(&listener, &tx, port, &stop)
            })
            .map_err(io_error)?;
        Ok(Acceptor {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // accept() blocks: a connection of our own wakes it to see the flag. Should even that
        // fail, the thread ends with the next connection instead of hanging this one.
        let woke = TcpStream::connect_timeout(&self.addr, WRITE_TIMEOUT).is_ok();
        if let Some(thread) = self.thread.take()
            && woke
        {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until `stop`, handing each to a reader thread.
fn accept_loop(listener: &TcpListener, tx: &Sender<Candidate>, port: u16, stop: &AtomicBool) {
    let reading = Arc::new(Reading::default());
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match stream {
            Ok(stream) => dispatch(stream, tx, port, &reading),
            Err(e) => {
                // Out of file descriptors, say: back off instead of spinning.
                log::debug!("callback accept failed: {e}");
                std::thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// Reads one connection on its own thread (closing the oldest one being read when all slots
/// are taken), or answers `503` when it cannot be registered.
fn dispatch(mut stream: TcpStream, tx: &Sender<Candidate>, port: u16, reading: &Arc<Reading>) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Some(slot) = reading.admit(&stream) else {
        respond(
            &mut stream,
            503,
            &page::failure("Too many requests at once. Please try again."),
        );
        return;
    };
    let tx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("mcp-oauth-callback".into())
        .spawn(move || {
            let _slot = slot;
            read_candidate(stream, port, &tx);
        });
    if let Err(e) = spawned {
        log::debug!("cannot start a callback reader: {e}");
    }
}

/// Reads and screens one request; a candidate goes to the waiting thread, anything else gets
/// its error page here.
fn read_candidate(mut stream: TcpStream, port: u16, tx: &Sender<Candidate>) {
    let raw = read_head(&mut stream);
    match screen(&raw, port) {
        Ok(params) => {
            if let Err(mpsc::SendError(mut late)) = tx.send(Candidate { stream, params }) {
                respond(&mut late.stream, 400, &page::failure(FINISHED));
            }
        }
        Err((status, message)) => {
            log::debug!("callback request refused with {status}");
            respond(&mut stream, status, &page::failure(message));
            linger(stream);
        }
    }
}

/// Closes a connection whose request was not read to the end: the write side first, then a
/// short, bounded read of what is left, so that the client gets the page instead of a reset.
fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(LINGER));
    let _ = std::io::copy(&mut (&mut stream).take(64 * 1024), &mut std::io::sink());
}

/// The HTTP checks on one request head: well-formed, `GET`, the callback path and a `Host`
/// naming this listener. Returns the query parameters, or the status and message to answer.
fn screen(raw: &[u8], port: u16) -> Result<Vec<(String, String)>, (u16, &'static str)> {
    let request = parse_callback_request(raw).map_err(|e| match e {
        CallbackParseError::TooLarge => (431, "The request was too large."),
        CallbackParseError::Incomplete => (408, "The request did not arrive in time."),
        CallbackParseError::Malformed => (400, "This was not a valid request."),
    })?;
    if request.method != "GET" {
        return Err((405, "Only GET is served here."));
    }
    if request.path != CALLBACK_PATH {
        return Err((404, "Nothing is served at this path."));
    }
    if !host_allowed(request.host.as_deref(), port) {
        return Err((400, "Unexpected Host header."));
    }
    Ok(request.params)
}

/// The verdict on a candidate, answered on its connection; `Some` ends the wait.
fn decide(mut candidate: Candidate, expect: &CallbackExpectation<'_>) -> Option<Result<Secret>> {
    let stream = &mut candidate.stream;
    match validate_callback(&candidate.params, expect) {
        CallbackOutcome::Code(code) => {
            respond(stream, 200, &page::success());
            Some(Ok(code))
        }
        CallbackOutcome::Failed(e) => {
            let reason = match e.oauth_error() {
                Some(code) => format!("The authorization server answered: {code}."),
                None => "The authorization response did not pass the security checks.".into(),
            };
            respond(stream, 400, &page::failure(&reason));
            Some(Err(e))
        }
        CallbackOutcome::Ignored(why) => {
            // A stale tab, a second login, or a forgery: the person (and the front end) learn
            // that it was refused and that the login goes on.
            log::warn!(
                "refused an authorization response that does not belong to this login ({why}); \
                 still waiting for the browser"
            );
            respond(stream, 400, &page::not_this_login());
            None
        }
    }
}

/// True for `127.0.0.1:PORT` and `localhost:PORT` (any case), the names this listener serves.
fn host_allowed(host: Option<&str>, port: u16) -> bool {
    host.is_some_and(|h| {
        h == format!("127.0.0.1:{port}") || h.eq_ignore_ascii_case(&format!("localhost:{port}"))
    })
}

fn io_error(e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Config,
        Step::Callback,
        "the callback listener failed",
    )
    .with_source(e)
}

/// Reads up to the end of the request head: at most [`MAX_CALLBACK_REQUEST`] + 1 KiB, within
/// [`READ_TIMEOUT`] in total however slowly the bytes come.
fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while buf.len() <= MAX_CALLBACK_REQUEST {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                // Only the new bytes (and the three before them) can complete the head.
                let from = buf.len().saturating_sub(3);
                buf.extend_from_slice(&chunk[..n]);
                if head_end(&buf[from..]).is_some() {
                    break;
                }
            }
        }
    }
    buf
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn respond(stream: &mut TcpStream, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Bad Request",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'\r\n\
         X-Frame-Options: DENY\r\n\
         X-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\n\
         Cache-Control: no-store\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}

/// The pages shown in the user's browser.
mod page {
    use super::html_escape as escape;

    /// The close-the-tab line under most pages.
    const CLOSE: &str = "You can close this tab and return to your program.";

    fn page(title: &str, message: &str, accent: &str) -> String {
        page_with(title, message, CLOSE, accent)
    }

    fn page_with(title: &str, message: &str, next: &str, accent: &str) -> String {
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>\
             body{{font-family:system-ui,sans-serif;background:#f6f7f9;color:#1d2330;\
             display:flex;align-items:center;justify-content:center;min-height:100vh;margin:0}}\
             main{{background:#fff;border-radius:12px;padding:2rem 2.5rem;max-width:28rem;\
             box-shadow:0 2px 12px rgba(0,0,0,.08);border-top:6px solid {accent}}}\
             h1{{font-size:1.3rem;margin:0 0 .6rem}}p{{margin:.3rem 0;line-height:1.5}}\
             </style></head><body><main><h1>{title}</h1><p>{message}</p>\
             <p>{next}</p></main></body></html>",
            title = escape(title),
            message = escape(message),
            next = escape(next),
        )
    }

    pub(super) fn success() -> String {
        page(
            "Signed in",
            "The authorization was received; your program is finishing the sign-in.",
            "#1a7f37",
        )
    }

    pub(super) fn failure(reason: &str) -> String {
        page("Sign-in did not complete", reason, "#cf222e")
    }

    /// For a response whose `state` is not the one of the login under way.
    pub(super) fn not_this_login() -> String {
        page_with(
            "Not the sign-in in progress",
            "This response does not belong to the login in progress. It may come from an \
             older tab or from another program's sign-in; it was not used.",
            "Close this tab. If your program is still waiting, finish the sign-in in the tab \
             it opened most recently, or start the login again from your program.",
            "#9a6700",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    const EXPECT: CallbackExpectation<'static> = CallbackExpectation {
        state: "st",
        issuer: "https://as.example.com",
        iss_required: false,
    };

    #[test]
    fn parses_requests_and_rejects_junk() {
        let r =
            parse_callback_request(b"GET /callback?code=a%20b&state=s HTTP/1.1\r\nHOST: x\r\n\r\n")
                .unwrap();
        assert_eq!(r.params, params("code=a+b&state=s"));
        assert_eq!(r.host.as_deref(), Some("x"));
        for junk in [
            &b"\xff\xfe\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET /a HTTP/1.1 extra\r\n\r\n",
            b"GET a HTTP/1.1\r\n\r\n",
            b"GET /a HTTP/2\r\n\r\n",
            b"GET /a HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
        ] {
            assert_eq!(
                parse_callback_request(junk),
                Err(CallbackParseError::Malformed)
            );
        }
        let big = vec![b'a'; MAX_CALLBACK_REQUEST + 1];
        assert_eq!(
            parse_callback_request(&big),
            Err(CallbackParseError::TooLarge)
        );
        for partial in [&b""[..], b"GET /callback?code=c HTTP/1.1\r\nHost: x\r\n"] {
            assert_eq!(
                parse_callback_request(partial),
                Err(CallbackParseError::Incomplete)
            );
        }
        // A head that ends past the limit is too large even when the blank line came.
        let mut long = b"GET /callback?x=".to_vec();
        long.resize(MAX_CALLBACK_REQUEST, b'a');
        long.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert_eq!(
            parse_callback_request(&long),
            Err(CallbackParseError::TooLarge)
        );
        // Bytes after the head (a body) are not looked at.
        let r =
            parse_callback_request(b"GET /callback HTTP/1.1\r\nHost: h\r\n\r\n\xff\xff").unwrap();
        assert_eq!(r.host.as_deref(), Some("h"));
    }

    #[test]
    fn screening_answers_each_kind_of_bad_request() {
        let ok = b"GET /callback?code=c&state=s HTTP/1.1\r\nHost: 127.0.0.1:7\r\n\r\n";
        assert_eq!(screen(ok, 7).unwrap(), params("code=c&state=s"));
        let localhost = b"GET /callback HTTP/1.1\r\nHost: LOCALHOST:7\r\n\r\n";
        assert!(screen(localhost, 7).is_ok());
        let status = |raw: &[u8]| screen(raw, 7).unwrap_err().0;
        assert_eq!(
            status(b"POST /callback HTTP/1.1\r\nHost: 127.0.0.1:7\r\n\r\n"),
            405
        );
        assert_eq!(
            status(b"GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1:7\r\n\r\n"),
            404
        );
        assert_eq!(
            status(b"GET /callback HTTP/1.1\r\nHost: 127.0.0.1:8\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"GET /callback HTTP/1.1\r\nHost: evil.example:7\r\n\r\n"),
            400
        );
        assert_eq!(status(b"GET /callback HTTP/1.0\r\n\r\n"), 400);
        assert_eq!(status(b"GET /callback HTTP/1.1\r\nHo"), 408);
        assert_eq!(status(&[b'x'; MAX_CALLBACK_REQUEST + 2]), 431);
        assert_eq!(status(b"\x16\x03\x01\x02\x00\r\n\r\n"), 400);
    }

    #[test]
    fn debug_hides_code_and_state() {
        let r = parse_callback_request(
            b"GET /callback?code=SECRETCODE&state=SECRETSTATE&iss=x HTTP/1.1\r\n\r\n",
        )
        .unwrap();
        let shown = format!("{r:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("iss"), "{shown}");
        let expect = CallbackExpectation {
            state: "SECRETSTATE",
            ..EXPECT
        };
        assert!(!format!("{expect:?}").contains("SECRET"));
    }

    #[test]
    fn an_echoed_state_or_code_is_removed_from_the_error() {
        let q = "error=server_error&state=st&code=CODE1&error_description=bad+st+and+CODE1";
        match validate_callback(&params(q), &EXPECT) {
            CallbackOutcome::Failed(e) => {
                let text = format!("{e} {e:?}");
                assert_eq!(e.oauth_description(), Some("bad [redacted] and [redacted]"));
                assert!(!text.contains("CODE1"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn state_is_checked_first() {
        assert!(matches!(
            validate_callback(&params("code=c&state=other"), &EXPECT),
            CallbackOutcome::Ignored(_)
        ));
        assert!(matches!(
            validate_callback(&params("code=c"), &EXPECT),
            CallbackOutcome::Ignored(_)
        ));
        match validate_callback(&params("code=c&state=st"), &EXPECT) {
            CallbackOutcome::Code(c) => assert_eq!(c.secret(), "c"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_are_reported_with_their_code() {
        match validate_callback(&params("error=access_denied&state=st"), &EXPECT) {
            CallbackOutcome::Failed(e) => assert!(e.is_access_denied()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rfc9207_iss_table() {
        let required = CallbackExpectation {
            iss_required: true,
            ..EXPECT
        };
        let is_code = |q: &str, e: &CallbackExpectation<'_>| {
            matches!(validate_callback(&params(q), e), CallbackOutcome::Code(_))
        };
        // Advertised and present and equal: accepted.
        assert!(is_code(
            "code=c&state=st&iss=https%3A%2F%2Fas.example.com",
            &required
        ));
        // Advertised and absent: refused.
        assert!(!is_code("code=c&state=st", &required));
        // Not advertised and absent: accepted.
        assert!(is_code("code=c&state=st", &EXPECT));
        // Present and different, advertised or not, no normalisation: refused.
        for iss in [
            "https://evil.example.com",
            "https://as.example.com/",
            "HTTPS://as.example.com",
        ] {
            let q = format!(
                "code=c&state=st&iss={}",
                url::form_urlencoded::byte_serialize(iss.as_bytes()).collect::<String>()
            );
            assert!(!is_code(&q, &EXPECT), "{iss}");
            assert!(!is_code(&q, &required), "{iss}");
        }
        // A mismatched iss wins over an error parameter.
        match validate_callback(&params("error=access_denied&state=st&iss=x"), &EXPECT) {
            CallbackOutcome::Failed(e) => assert_eq!(e.kind(), ErrorKind::Refused),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pages_escape_text() {
        let p = page::failure("<script>alert('x')</script>");
        assert!(!p.contains("<script>"));
        assert!(p.contains("&lt;script&gt;"));
    }
}
