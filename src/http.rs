//! HTTP plumbing shared by the step functions: one bounded exchange at a time.
//!
//! Transport rules of the design (OAuth 2.1 §1.5, RFC 9700 §4.11, RFC 8252 §8.3): HTTPS except for
//! loopback hosts, no redirects followed (a redirect on a token or registration request could
//! steer credentials elsewhere), every request under a timeout, every body size-capped.

use std::time::Duration;

use url::Url;

use crate::error::{Error, ErrorKind, Result, Step};

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
        .user_agent(concat!("mcp-oauth-client/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// True for hosts that never leave the machine: `localhost`, 127.0.0.0/8 and `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Refuses any URL that is not HTTPS, except plain HTTP to a loopback host.
///
/// # Errors
/// [`ErrorKind::Refused`] naming the URL.
pub fn require_secure(url: &Url, step: Step) -> Result<()> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        other => Err(Error::new(
            ErrorKind::Refused,
            step,
            format!("refusing a {other}: URL; only https (or http on loopback) is allowed"),
        )
        .with_url(url)),
    }
}

/// A response read whole, within [`OAUTH_BODY_LIMIT`].
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A request body for [`send`].
pub(crate) enum Body<'a> {
    /// A GET with no body.
    None,
    /// `application/x-www-form-urlencoded`, with optional HTTP Basic client credentials.
    Form(&'a [(&'a str, &'a str)], Option<(&'a str, &'a str)>),
    /// `application/json`.
    Json(&'a serde_json::Value),
}

/// Sends one request under the transport rules and reads the whole (capped) body.
pub(crate) fn send(agent: &ureq::Agent, url: &Url, body: Body<'_>, step: Step) -> Result<Response> {
    require_secure(url, step)?;
    let transport = |e: ureq::Error| transport_error(e, step, url);
    let mut response = match body {
        Body::None => configure(agent.get(url.as_str()))
            .header("accept", "application/json")
            .call()
            .map_err(transport)?,
        Body::Form(pairs, basic) => {
            let mut req = configure(agent.post(url.as_str())).header("accept", "application/json");
            if let Some((id, secret)) = basic {
                req = req.header("authorization", basic_authorization(id, secret));
            }
            req.send_form(pairs.iter().copied()).map_err(transport)?
        }
        Body::Json(value) => {
            let text = serde_json::to_string(value).map_err(|e| {
                Error::new(ErrorKind::Config, step, "could not encode the request").with_source(e)
            })?;
            configure(agent.post(url.as_str()))
                .header("accept", "application/json")
                .content_type("application/json")
                .send(text)
                .map_err(transport)?
        }
    };
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(OAUTH_BODY_LIMIT)
        .read_to_vec()
        .map_err(transport)?;
    Ok(Response { status, body })
}

/// Applies the transport rules to one request, whatever the agent's own configuration.
fn configure<B>(req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
    req.config()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .build()
}

/// `Authorization: Basic` for client credentials, each part form-urlencoded (RFC 6749 §2.3.1).
fn basic_authorization(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

fn transport_error(e: ureq::Error, step: Step, url: &Url) -> Error {
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

/// The error for a non-success response: the OAuth error code when the body is an RFC 6749
/// §5.2 error object, else the bare status.
pub(crate) fn status_error(response: &Response, step: Step, url: &Url) -> Error {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
        error_description: Option<String>,
    }
    match serde_json::from_slice::<ErrorBody>(&response.body) {
        Ok(body) if !body.error.is_empty() => {
            Error::oauth(step, &body.error, body.error_description.as_deref()).with_url(url)
        }
        _ => Error::new(
            ErrorKind::Status,
            step,
            format!("unexpected HTTP status {}", response.status),
        )
        .with_url(url),
    }
}

/// Parses a JSON body into `T`, naming the step on failure.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    step: Step,
    what: &str,
) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        Error::new(ErrorKind::InvalidResponse, step, format!("invalid {what}")).with_source(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for (u, want) in [
            ("http://127.0.0.1:8080/", true),
            ("http://127.5.0.1/", true),
            ("http://[::1]:9/", true),
            ("http://LOCALHOST/", true),
            ("http://localhost.evil.example/", false),
            ("http://10.0.0.1/", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(u).unwrap()), want, "{u}");
        }
    }

    #[test]
    fn secure_urls() {
        let ok = |u: &str| require_secure(&Url::parse(u).unwrap(), Step::Refresh).is_ok();
        assert!(ok("https://as.example/token"));
        assert!(ok("http://127.0.0.1:1/token"));
        assert!(!ok("http://as.example/token"));
        assert!(!ok("ftp://127.0.0.1/x"));
    }

    #[test]
    fn basic_auth_encodes_parts() {
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
        assert_eq!(basic_authorization("a b", "c:d"), "Basic YStiOmMlM0Fk");
    }
}
