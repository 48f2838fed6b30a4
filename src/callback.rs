//! The loopback redirect listener (RFC 8252 §7.3, §8.3) and the authorization response checks
//! (RFC 6749 §4.1.2, RFC 9207, MCP authorization).
//!
//! The listener binds 127.0.0.1 only, serves `/callback`, and reads every request under a size
//! and time bound. A request with a wrong or missing `state`, a favicon fetch or junk gets an
//! answer and does not end the wait; the first response with the right `state` does. The `iss`
//! parameter is checked before the code is released (RFC 9207 §2.4).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use url::Url;

use crate::error::{Error, ErrorKind, Result, Step};
use crate::secret::{Secret, constant_time_eq};

/// The largest callback request read (request line and headers), in bytes.
pub const MAX_CALLBACK_REQUEST: usize = 8 * 1024;

/// How long one connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

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

/// A parsed HTTP request as it reached the callback port.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Why a callback request was not accepted as an HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackParseError {
    /// The headers did not end within [`MAX_CALLBACK_REQUEST`] bytes.
    TooLarge,
    /// The request line or a header is malformed.
    Malformed,
}

/// Parses the raw bytes of an HTTP/1.x request head as read from the callback socket.
///
/// # Errors
/// [`CallbackParseError`] for oversized or malformed input; never panics.
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
    if raw.len() > MAX_CALLBACK_REQUEST {
        return Err(CallbackParseError::TooLarge);
    }
    let text = std::str::from_utf8(raw).map_err(|_| CallbackParseError::Malformed)?;
    let head = text
        .split("\r\n\r\n")
        .next()
        .ok_or(CallbackParseError::Malformed)?;
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
            host = Some(value.trim().to_owned());
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

/// The query parameters of a redirect URL pasted by the user (headless logins).
///
/// # Errors
/// [`ErrorKind::Config`] when `pasted` is not a URL.
pub fn callback_params_from_url(pasted: &str) -> Result<Vec<(String, String)>> {
    let url = Url::parse(pasted.trim()).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            Step::Callback,
            "the pasted text is not a URL",
        )
        .with_source(e)
    })?;
    Ok(url.query_pairs().into_owned().collect())
}

/// What an authorization response must match.
#[derive(Debug, Clone, Copy)]
pub struct CallbackExpectation<'a> {
    /// The `state` sent on the authorization request.
    pub state: &'a str,
    /// The issuer of the authorization server the request went to.
    pub issuer: &'a str,
    /// The server advertised `authorization_response_iss_parameter_supported` (RFC 9207 §3).
    pub iss_required: bool,
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
/// present → must equal the issuer; absent → an error when the server advertised it.
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
        return CallbackOutcome::Failed(Error::oauth(
            Step::Callback,
            code,
            get("error_description"),
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
    /// page, and returns the code. The port is released when this returns.
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`] when no valid response came in time; the OAuth error of an error
    /// response (`access_denied`, …); [`ErrorKind::Refused`] for an `iss` mismatch.
    pub fn wait(self, expect: &CallbackExpectation<'_>, timeout: Duration) -> Result<Secret> {
        let deadline = Instant::now() + timeout;
        self.listener.set_nonblocking(true).map_err(io_error)?;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Some(result) = self.serve(stream, expect) {
                        return result;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            Step::Callback,
                            format!(
                                "no authorization response reached {} within {} s",
                                self.redirect_uri,
                                timeout.as_secs()
                            ),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => log::debug!("callback accept failed: {e}"),
            }
        }
    }

    /// Answers one connection; `Some` ends the wait.
    fn serve(
        &self,
        mut stream: TcpStream,
        expect: &CallbackExpectation<'_>,
    ) -> Option<Result<Secret>> {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
        let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
        let raw = read_head(&mut stream);
        let request = match parse_callback_request(&raw) {
            Ok(r) => r,
            Err(_) => {
                respond(
                    &mut stream,
                    400,
                    &page::failure("This was not a valid request."),
                );
                return None;
            }
        };
        if request.method != "GET" {
            respond(&mut stream, 405, &page::failure("Only GET is served here."));
            return None;
        }
        if request.path != CALLBACK_PATH {
            respond(
                &mut stream,
                404,
                &page::failure("Nothing is served at this path."),
            );
            return None;
        }
        if !self.host_allowed(request.host.as_deref()) {
            respond(&mut stream, 400, &page::failure("Unexpected Host header."));
            return None;
        }
        match validate_callback(&request.params, expect) {
            CallbackOutcome::Code(code) => {
                respond(&mut stream, 200, &page::success());
                Some(Ok(code))
            }
            CallbackOutcome::Failed(e) => {
                let reason = match e.oauth_error() {
                    Some(code) => format!("The authorization server answered: {code}."),
                    None => "The authorization response did not pass the security checks.".into(),
                };
                respond(&mut stream, 400, &page::failure(&reason));
                Some(Err(e))
            }
            CallbackOutcome::Ignored(why) => {
                log::debug!("callback request ignored: {why}");
                respond(
                    &mut stream,
                    400,
                    &page::failure("This response does not belong to the login in progress."),
                );
                None
            }
        }
    }

    fn host_allowed(&self, host: Option<&str>) -> bool {
        let port = self.port();
        match host {
            Some(h) => {
                h == format!("127.0.0.1:{port}")
                    || h.eq_ignore_ascii_case(&format!("localhost:{port}"))
            }
            None => false,
        }
    }
}

fn io_error(e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Config,
        Step::Callback,
        "the callback listener failed",
    )
    .with_source(e)
}

/// Reads up to the end of the request head, [`MAX_CALLBACK_REQUEST`] + 1 bytes at most.
fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let start = Instant::now();
    while buf.len() <= MAX_CALLBACK_REQUEST && start.elapsed() < READ_TIMEOUT {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
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

    fn page(title: &str, message: &str, accent: &str) -> String {
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
             <p>You can close this tab and return to your program.</p></main></body></html>",
            title = escape(title),
            message = escape(message),
        )
    }

    pub(super) fn success() -> String {
        page(
            "Signed in",
            "The authorization was received. mcp-oauth-client has finished signing you in.",
            "#1a7f37",
        )
    }

    pub(super) fn failure(reason: &str) -> String {
        page("Sign-in did not complete", reason, "#cf222e")
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
            &b""[..],
            b"\xff\xfe",
            b"GET\r\n\r\n",
            b"GET /a HTTP/1.1 extra\r\n\r\n",
            b"GET a HTTP/1.1\r\n\r\n",
            b"GET /a HTTP/2\r\n\r\n",
            b"GET /a HTTP/1.1\r\nno colon\r\n\r\n",
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

    #[test]
    fn pasted_url_params() {
        let p = callback_params_from_url(" http://127.0.0.1:1/callback?code=c&state=s\n").unwrap();
        assert_eq!(p, params("code=c&state=s"));
        assert!(callback_params_from_url("no url").is_err());
    }
}
