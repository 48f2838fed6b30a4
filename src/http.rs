//! HTTP plumbing shared by the step functions: one bounded exchange at a time.
//!
//! Transport rules of the design (OAuth 2.1 §1.5, RFC 9700 §4.11, RFC 8252 §8.3): HTTPS except for
//! loopback hosts, no redirects followed (a redirect on a token or registration request could
//! steer credentials elsewhere), every request under a timeout, every body size-capped.

use std::time::Duration;

use url::Url;

use crate::error::{Error, ErrorKind, Result, Step, redact};

/// The largest OAuth response body (metadata, registration, token) read, in bytes.
pub const OAUTH_BODY_LIMIT: u64 = 256 * 1024;

/// The time one OAuth request may take from connect to the end of its body.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The time a TCP connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A `ureq::Agent` configured the way the step functions expect: HTTP statuses returned as
/// responses (a 401's `WWW-Authenticate` must be readable), no redirects, bounded time.
///
/// Step functions also apply these settings per request, so any agent works with them; this
/// one only saves the per-request overrides.
pub fn new_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .user_agent(USER_AGENT)
        .tls_config(tls_config(None))
        .build()
        .new_agent()
}

/// The TLS settings of this crate's agents: the certificates of a CA file when one is given
/// (in place of the built-in roots, as curl's `--cacert`); else, with the feature
/// `platform-verifier`, the operating system's trust store and verifier (which knows the
/// CA of a TLS-inspecting corporate proxy); else Mozilla's roots, compiled in.
pub(crate) fn tls_config(ca: Option<&[ureq::tls::Certificate<'static>]>) -> ureq::tls::TlsConfig {
    use ureq::tls::{RootCerts, TlsConfig};
    let roots = match ca {
        Some(certs) => RootCerts::new_with_certs(certs),
        None if cfg!(feature = "platform-verifier") => RootCerts::PlatformVerifier,
        None => RootCerts::WebPki,
    };
    TlsConfig::builder().root_certs(roots).build()
}

/// The certificates of a PEM file, for [`tls_config`].
///
/// # Errors
/// [`ErrorKind::Config`] naming the file when it cannot be read or holds no certificate.
pub(crate) fn read_ca_file(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let step = Step::Configure;
    let text = crate::local::read_user_file(path, "the CA file", step)?;
    let certs: Vec<_> = ureq::tls::parse_pem(text.as_bytes())
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            step,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}

/// The variables a proxy is taken from, as ureq reads them, first found first.
const PROXY_VARIABLES: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

/// The proxy the environment names. A proxy variable set to something that is not a proxy
/// URL is an error: read silently as no proxy (ureq's way), it would send every request
/// directly, around the proxy the user meant to use.
///
/// # Errors
/// [`ErrorKind::Config`] naming the variable (not its value, which may hold a password).
pub(crate) fn env_proxy() -> Result<Option<ureq::Proxy>> {
    for name in PROXY_VARIABLES {
        let Ok(value) = std::env::var(name) else {
            continue;
        };
        if !value.trim().is_empty() && ureq::Proxy::new(value.trim()).is_err() {
            return Err(Error::new(
                ErrorKind::Config,
                Step::Configure,
                format!(
                    "the environment variable {name} is not a proxy URL (such as http://proxy.example:3128)"
                ),
            ));
        }
    }
    Ok(ureq::Proxy::try_from_env())
}

/// The `User-Agent` of every request this crate sends.
pub(crate) const USER_AGENT: &str = concat!("mcp-oauth-client/", env!("CARGO_PKG_VERSION"));

/// A response read whole, within [`OAUTH_BODY_LIMIT`].
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Retry-After` in seconds (RFC 9110 §10.2.3; the date form is not read).
    pub retry_after: Option<u64>,
    /// A `DPoP-Nonce` the server sent (RFC 9449 §8).
    pub dpop_nonce: Option<String>,
}

/// A request body for [`send`].
pub(crate) enum Body<'a> {
    /// A GET with no body.
    None,
    /// `application/x-www-form-urlencoded`.
    Form(&'a [(&'a str, &'a str)]),
    /// `application/json`.
    Json(&'a serde_json::Value),
}

/// Sends one request under the transport rules, with `headers` (`Authorization`, `DPoP`), and
/// reads the whole (capped) body.
pub(crate) fn send(
    agent: &ureq::Agent,
    url: &Url,
    body: Body<'_>,
    headers: &[(&str, &str)],
    step: Step,
) -> Result<Response> {
    crate::address::require_secure(url, step)?;
    let transport = |e: ureq::Error| transport_error(e, step, url);
    let mut response = match body {
        Body::None => with_headers(configure(agent, agent.get(url.as_str())), headers)
            .call()
            .map_err(transport)?,
        Body::Form(pairs) => with_headers(configure(agent, agent.post(url.as_str())), headers)
            .send_form(pairs.iter().copied())
            .map_err(transport)?,
        Body::Json(value) => {
            let text = serde_json::to_string(value).map_err(|e| {
                Error::new(ErrorKind::Config, step, "could not encode the request").with_source(e)
            })?;
            with_headers(configure(agent, agent.post(url.as_str())), headers)
                .content_type("application/json")
                .send(text)
                .map_err(transport)?
        }
    };
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
    let dpop_nonce = header(crate::dpop::NONCE_HEADER);
    let body = response
        .body_mut()
        .with_config()
        .limit(OAUTH_BODY_LIMIT)
        .read_to_vec()
        .map_err(transport)?;
    Ok(Response {
        status,
        body,
        retry_after,
        dpop_nonce,
    })
}

/// The status and `Location` of a GET of `url` under the transport rules, its body unread
/// (the connection is closed, not reused): for a look at what a server makes of a request
/// meant for a browser.
pub(crate) fn status_of(
    agent: &ureq::Agent,
    url: &Url,
    step: Step,
) -> Result<(u16, Option<String>)> {
    crate::address::require_secure(url, step)?;
    let response = configure(agent, agent.get(url.as_str()))
        .header("accept", "text/html")
        .call()
        .map_err(|e| transport_error(e, step, url))?;
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((response.status().as_u16(), location))
}

/// `headers` and `Accept: application/json` on a request.
fn with_headers<B>(
    mut req: ureq::RequestBuilder<B>,
    headers: &[(&str, &str)],
) -> ureq::RequestBuilder<B> {
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.header("accept", "application/json")
}

/// Applies the transport rules to one request, whatever the agent's own configuration: no
/// redirects, statuses as responses, and the agent's timeouts but never longer than ours.
fn configure<B>(agent: &ureq::Agent, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
    let timeouts = agent.config().timeouts();
    req.config()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(at_most(timeouts.global, REQUEST_TIMEOUT)))
        .timeout_connect(Some(at_most(timeouts.connect, CONNECT_TIMEOUT)))
        .build()
        .extension(OAuthExchange)
}

/// Marks a request as one of the OAuth exchanges, so that the session's bearer middleware,
/// when the same agent also carries MCP requests, leaves it alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OAuthExchange;

/// The configured timeout capped at `cap`; no timeout configured means `cap`.
fn at_most(configured: Option<Duration>, cap: Duration) -> Duration {
    configured.map_or(cap, |t| t.min(cap))
}

fn transport_error(e: ureq::Error, step: Step, url: &Url) -> Error {
    // The session's resolver refused what a host name resolved to.
    if let ureq::Error::Io(io) = &e
        && let Some(refusal) = io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<crate::address::ResolvedRefusal>())
    {
        return Error::new(ErrorKind::Refused, step, refusal.to_string()).with_url(url);
    }
    let message = match &e {
        ureq::Error::Timeout(_) => "the request timed out",
        ureq::Error::BodyExceedsLimit(_) => "the response body is larger than allowed",
        ureq::Error::HostNotFound => "the host name could not be resolved",
        ureq::Error::ConnectionFailed | ureq::Error::Io(_) => "the connection failed",
        _ => "the HTTP exchange failed",
    };
    Error::new(ErrorKind::Transport, step, message)
        .with_url(url)
        .with_source(e)
}

/// The error for a non-success response, with its URL; `sent` are the secrets the request
/// carried, removed from whatever the server echoes back.
pub(crate) fn status_error(response: &Response, step: Step, url: &Url, sent: &[&str]) -> Error {
    oauth_error(response.status, &response.body, step, sent)
        .with_url(url)
        .with_status(response.status)
        .with_retry_after(response.retry_after)
}

/// Turns a non-success response into the crate's error (RFC 6749 §5.2, RFC 7591 §3.2.2): the
/// OAuth error code and description when the body is an error object, a refusal for a
/// redirect (never followed on OAuth requests), else the bare status. Server text is kept
/// short and printable. Pure; fuzzed.
///
/// ```
/// use mcp_oauth_client::{ErrorKind, Step, internals::parse_oauth_error};
/// let e = parse_oauth_error(400, br#"{"error":"invalid_grant"}"#, Step::Refresh);
/// assert_eq!(e.oauth_error(), Some("invalid_grant"));
/// assert_eq!(parse_oauth_error(302, b"", Step::CodeExchange).kind(), ErrorKind::Refused);
/// assert_eq!(parse_oauth_error(503, b"<html>", Step::Refresh).kind(), ErrorKind::Status);
/// ```
#[doc(hidden)]
pub fn parse_oauth_error(status: u16, body: &[u8], step: Step) -> Error {
    oauth_error(status, body, step, &[])
}

/// An RFC 6749 §5.2 error object.
#[derive(serde::Deserialize)]
struct ErrorBody {
    error: String,
    error_description: Option<String>,
}

/// The error object in `body`, when it is one with a non-empty `error`.
fn error_body(body: &[u8]) -> Option<ErrorBody> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .filter(|b| !b.error.is_empty())
}

/// The OAuth error code of a response's body, when it is an error object.
pub(crate) fn error_code(response: &Response) -> Option<String> {
    error_body(&response.body).map(|b| b.error)
}

/// True when a success response is an OAuth error in disguise: some servers (GitHub's token
/// endpoint among them) answer errors with HTTP 200 and an `error` member. Reading it as the
/// error keeps the server's code and description instead of a "missing access_token".
pub(crate) fn is_error_object(response: &Response) -> bool {
    error_body(&response.body).is_some()
}

fn oauth_error(status: u16, body: &[u8], step: Step, sent: &[&str]) -> Error {
    if (300..400).contains(&status) {
        return Error::new(
            ErrorKind::Refused,
            step,
            format!(
                "the server answered with a redirect (HTTP {status}); redirects are not \
                 followed on OAuth requests"
            ),
        );
    }
    match error_body(body) {
        Some(body) => {
            let description = body.error_description.map(|d| redact(&d, sent));
            Error::oauth(step, &redact(&body.error, sent), description.as_deref())
        }
        None => Error::new(
            ErrorKind::Status,
            step,
            format!("unexpected HTTP status {status}"),
        ),
    }
}

/// Parses a JSON body into `T`, naming the step on failure.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    step: Step,
    what: &str,
) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        Error::new(ErrorKind::InvalidResponse, step, format!("invalid {what}"))
            .with_source(printable_json_error(&e))
    })
}

/// A JSON error's message, safe for error text and log lines. serde quotes the input it
/// trips on: a misplaced string in double quotes (which could be a token in the wrong place)
/// is elided to `"…"`, and control characters (from names quoted verbatim in backticks) are
/// dropped.
pub(crate) fn printable_json_error(e: &serde_json::Error) -> String {
    let mut out = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in e.to_string().chars() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    quoted = false;
                    out.push_str("…\"");
                }
                _ => {}
            }
        } else if c == '"' {
            quoted = true;
            out.push(c);
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let e = parse_oauth_error(
            400,
            br#"{"error":"invalid_grant","error_description":"expired"}"#,
            Step::Refresh,
        );
        assert_eq!(e.kind(), ErrorKind::OAuth);
        assert_eq!(e.oauth_description(), Some("expired"));
        for status in [301, 302, 303, 307, 308] {
            let e = parse_oauth_error(status, br#"{"error":"x"}"#, Step::CodeExchange);
            assert_eq!(e.kind(), ErrorKind::Refused, "{status}");
            assert!(e.to_string().contains("redirect"), "{e:#}");
        }
        for body in [
            &b""[..],
            b"<html>",
            br#"{"error":""}"#,
            br#"{"error":5}"#,
            b"[]",
        ] {
            assert_eq!(
                parse_oauth_error(500, body, Step::Refresh).kind(),
                ErrorKind::Status
            );
        }
    }

    #[test]
    fn echoed_secrets_are_redacted() {
        let body =
            br#"{"error":"bad RT1","error_description":"refresh token R\u0000T1 or RT1 is spent"}"#;
        let response = Response {
            status: 400,
            body: body.to_vec(),
            retry_after: None,
            dpop_nonce: None,
        };
        let url = Url::parse("https://as.example/token").unwrap();
        let e = status_error(&response, Step::Refresh, &url, &["RT1", ""]);
        let text = format!("{e:#} {e:?}");
        assert!(!text.contains("RT1"), "{text}");
        assert_eq!(e.oauth_error(), Some("bad [redacted]"));
    }

    #[test]
    fn json_errors_quote_no_input_string() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)] // read only to exercise the parser
        struct Doc {
            n: u64,
        }
        let e = parse_json::<Doc>(br#"{"n":"SECRET \" still"}"#, Step::Refresh, "x").unwrap_err();
        let text = format!("{e:#} {e:?}");
        assert!(
            !text.contains("SECRET") && !text.contains("still"),
            "{text}"
        );
        assert!(
            text.contains(r#"invalid type: string "…", expected u64"#),
            "{text}"
        );
    }

    #[test]
    fn timeouts_never_exceed_ours() {
        let short = Duration::from_millis(300);
        assert_eq!(at_most(Some(short), REQUEST_TIMEOUT), short);
        assert_eq!(at_most(None, REQUEST_TIMEOUT), REQUEST_TIMEOUT);
        assert_eq!(
            at_most(Some(Duration::from_secs(3600)), REQUEST_TIMEOUT),
            REQUEST_TIMEOUT
        );
    }

    #[test]
    fn json_depth_is_bounded() {
        // serde_json stops at 128 levels of nesting; deeper input is an error, not a stack
        // overflow, both for known fields and for ignored ones.
        #[derive(Debug, serde::Deserialize)]
        struct Doc {
            #[allow(dead_code)] // read only to exercise the parser
            value: Option<serde_json::Value>,
        }
        let nested =
            |depth: usize| format!(r#"{{"value":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
        assert!(parse_json::<Doc>(nested(100).as_bytes(), Step::Refresh, "x").is_ok());
        let e = parse_json::<Doc>(nested(200_000).as_bytes(), Step::Refresh, "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidResponse);
        assert!(format!("{e:#}").contains("recursion limit"), "{e:#}");
        let ignored = format!(
            r#"{{"other":{}{}}}"#,
            "[".repeat(200_000),
            "]".repeat(200_000)
        );
        assert!(parse_json::<Doc>(ignored.as_bytes(), Step::Refresh, "x").is_ok());
    }
}
