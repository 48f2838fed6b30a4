//! The device authorization grant (RFC 8628), for machines with no browser and nothing to
//! paste into: plain SSH, containers. The client asks the authorization server for a user
//! code (§3.1), the person enters it on another device at the verification URI (§3.3), and
//! the client polls the token endpoint until they have (§3.4, §3.5).
//!
//! The step the person sees is a value, [`DeviceStep`], handed to the session's device hook;
//! the library prints nothing.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use crate::error::{Error, ErrorKind, OAuthErrorCode, Result, Step};
use crate::scope::Scopes;
use crate::secret::Secret;
use crate::token::{ClientEndpoint, TokenSet};

/// The device code grant type (RFC 8628 §3.4).
pub use crate::client::DEVICE_CODE_GRANT;

/// The polling interval when the server names none (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL: u64 = 5;
/// The most a server may make the client wait between polls, in seconds.
pub const MAX_INTERVAL: u64 = 60;
/// How much `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: u64 = 5;
/// The longest `user_code` shown to the person (RFC 8628 §6.1 has them short: 8 characters of
/// 20 letters is its example).
pub const MAX_USER_CODE: usize = 24;

/// The longest life of a device code this client waits through, in seconds.
pub const MAX_EXPIRES_IN: u64 = 3600;

/// A device authorization response (RFC 8628 §3.2). `Debug` hides the device code.
#[non_exhaustive]
#[derive(Clone)]
pub struct DeviceAuthorization {
    /// The code the client polls with; never shown.
    pub device_code: Secret,
    /// The code the person enters (visible ASCII, at most 64 characters).
    pub user_code: String,
    /// Where the person enters it.
    pub verification_uri: Url,
    /// The same with the code in it, for a link or a QR code, when the server gives one.
    pub verification_uri_complete: Option<Url>,
    /// How long the codes live, in seconds (at most [`MAX_EXPIRES_IN`]).
    pub expires_in: u64,
    /// The polling interval, in seconds (1 to [`MAX_INTERVAL`]).
    pub interval: u64,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri.as_str())
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// Parses a device authorization response. Pure; fuzzed.
///
/// The URIs must be https (or http on loopback): the person types what they are shown into a
/// browser. The user code must be visible ASCII, since it is shown on a terminal.
///
/// # Errors
/// [`ErrorKind::InvalidResponse`] in [`Step::Authorization`] for a missing field, a URI that
/// is not a web address, or a user code with other characters.
///
/// ```
/// use mcp_oauth_client::device::parse_device_authorization_response;
/// let body = br#"{"device_code":"GmRh","user_code":"WDJB-MJHT",
///     "verification_uri":"https://example.com/device","expires_in":1800}"#;
/// let d = parse_device_authorization_response(body).unwrap();
/// assert_eq!((d.user_code.as_str(), d.interval), ("WDJB-MJHT", 5));
/// ```
pub fn parse_device_authorization_response(body: &[u8]) -> Result<DeviceAuthorization> {
    #[derive(Deserialize)]
    struct Response {
        device_code: String,
        user_code: String,
        verification_uri: String,
        verification_uri_complete: Option<String>,
        expires_in: serde_json::Number,
        interval: Option<serde_json::Number>,
    }
    let step = Step::Authorization;
    let invalid = |why: &str| Error::new(ErrorKind::InvalidResponse, step, why.to_owned());
    let r: Response = crate::http::parse_json(body, step, "device authorization response")?;
    if r.device_code.is_empty() || !r.device_code.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("the device_code is empty or not visible ASCII"));
    }
    // A code to type (RFC 8628 §6.1: short, from a small set of characters): letters,
    // digits and the separators codes use; never a sentence ("To finish, run: curl … | sh")
    // shown to the person as if it were the server's code.
    let code_ok = |c: &str| {
        (1..=MAX_USER_CODE).contains(&c.len())
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if !code_ok(&r.user_code) {
        return Err(invalid(&format!(
            "the user_code is not a short code (at most {MAX_USER_CODE} letters, digits and \
             - _ .)"
        )));
    }
    let web = |uri: &str, what: &str| -> Result<Url> {
        let url = Url::parse(uri).map_err(|_| invalid(&format!("the {what} is not a URL")))?;
        crate::address::require_secure(&url, step)?;
        if !uri.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(&format!("the {what} is not plain ASCII")));
        }
        // `https://accounts.example@evil.example/` reads as the first host and is the second.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(&format!(
                "the {what} has a user name or password in it, which would show another host \
                 than the one it leads to"
            )));
        }
        Ok(url)
    };
    let seconds =
        |n: &serde_json::Number| n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64));
    let expires_in = seconds(&r.expires_in)
        .filter(|e| *e > 0)
        .ok_or_else(|| invalid("expires_in is not a positive number"))?
        .min(MAX_EXPIRES_IN);
    let interval = r
        .interval
        .as_ref()
        .and_then(seconds)
        .unwrap_or(DEFAULT_INTERVAL)
        .clamp(1, MAX_INTERVAL);
    Ok(DeviceAuthorization {
        device_code: Secret::new(r.device_code),
        user_code: r.user_code,
        verification_uri: web(&r.verification_uri, "verification_uri")?,
        verification_uri_complete: r
            .verification_uri_complete
            .as_deref()
            .map(|u| web(u, "verification_uri_complete"))
            .transpose()?,
        expires_in,
        interval,
    })
}

/// A device authorization request (RFC 8628 §3.1, with RFC 8707 `resource`).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DeviceRequest<'a> {
    /// The authorization server's `device_authorization_endpoint` and the client (a DPoP key
    /// is not used here: the device code is not bound; the polls' token requests are).
    pub endpoint: ClientEndpoint<'a>,
    /// The scopes asked for.
    pub scope: Option<&'a Scopes>,
    /// The resource indicator.
    pub resource: Option<&'a str>,
}

impl<'a> DeviceRequest<'a> {
    /// A request at the device authorization `endpoint`, with no scope and no resource
    /// indicator.
    pub fn new(endpoint: ClientEndpoint<'a>) -> DeviceRequest<'a> {
        DeviceRequest {
            endpoint,
            scope: None,
            resource: None,
        }
    }

    /// With the scopes asked for.
    #[must_use]
    pub fn scope(self, scope: Option<&'a Scopes>) -> DeviceRequest<'a> {
        DeviceRequest { scope, ..self }
    }

    /// With the resource indicator.
    #[must_use]
    pub fn resource(self, resource: Option<&'a str>) -> DeviceRequest<'a> {
        DeviceRequest { resource, ..self }
    }
}

/// Asks for a device code and a user code.
///
/// # Errors
/// Transport failures, the server's OAuth error and an invalid response, in
/// [`Step::Authorization`].
pub fn request_device_authorization(
    agent: &ureq::Agent,
    req: &DeviceRequest<'_>,
) -> Result<DeviceAuthorization> {
    let step = Step::Authorization;
    let scope = req.scope.map(ToString::to_string).unwrap_or_default();
    let mut form = Vec::new();
    if !scope.is_empty() {
        form.push(("scope", scope.as_str()));
    }
    form.extend(req.resource.map(|r| ("resource", r)));
    let (url, response) = req.endpoint.dpop(None).post(agent, form, step)?;
    parse_device_authorization_response(&response.body).map_err(|e| e.with_url(&url))
}

/// What the person needs to finish a device login, handed to the device hook.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct DeviceStep {
    /// The code to enter.
    pub user_code: String,
    /// Where to enter it.
    pub verification_uri: Url,
    /// The same with the code in it, when the server gives one: a link, or a QR code.
    pub verification_uri_complete: Option<Url>,
    /// When the login stops waiting.
    pub deadline: Instant,
}

impl DeviceStep {
    /// The time left before the login stops waiting.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Shows a [`DeviceStep`] to the person; it must return promptly.
pub type DeviceHook = Box<dyn FnMut(&DeviceStep) + Send>;

/// Polling the token endpoint for a device login (RFC 8628 §3.4).
#[non_exhaustive]
pub struct DevicePoll<'a> {
    /// The token endpoint, the client that asked for the device code, and the key the tokens
    /// are to be bound to.
    pub endpoint: ClientEndpoint<'a>,
    /// The device code.
    pub device_code: &'a Secret,
    /// The resource indicator.
    pub resource: Option<&'a str>,
    /// The first interval, in seconds.
    pub interval: u64,
    /// When to give up.
    pub deadline: Instant,
    /// Ends the polling early ([`ErrorKind::Cancelled`]) when a message arrives or its sender
    /// goes away.
    pub cancel: &'a Receiver<()>,
}

impl<'a> DevicePoll<'a> {
    /// Polling `endpoint` with `device_code` until `deadline` or a message on `cancel`, every
    /// 5 s (RFC 8628 §3.2's default), with no resource indicator.
    pub fn new(
        endpoint: ClientEndpoint<'a>,
        device_code: &'a Secret,
        deadline: Instant,
        cancel: &'a Receiver<()>,
    ) -> DevicePoll<'a> {
        DevicePoll {
            endpoint,
            device_code,
            resource: None,
            interval: DEFAULT_INTERVAL,
            deadline,
            cancel,
        }
    }

    /// With the interval the server asked for, in seconds.
    #[must_use]
    pub fn interval(self, interval: u64) -> DevicePoll<'a> {
        DevicePoll { interval, ..self }
    }

    /// With the resource indicator.
    #[must_use]
    pub fn resource(self, resource: Option<&'a str>) -> DevicePoll<'a> {
        DevicePoll { resource, ..self }
    }
}

/// Polls until the person has approved: `authorization_pending` waits another interval,
/// `slow_down` adds five seconds to it (RFC 8628 §3.5); the first poll comes after one
/// interval.
///
/// # Errors
/// [`ErrorKind::Timeout`] at the deadline; [`ErrorKind::Cancelled`]; the server's
/// `access_denied` or `expired_token` (and any other error), in [`Step::CodeExchange`].
pub fn poll_for_tokens(agent: &ureq::Agent, poll: &DevicePoll<'_>) -> Result<TokenSet> {
    poll_for_tokens_held(agent, poll, || ()).map(|(tokens, ())| tokens)
}

/// [`poll_for_tokens`], with `hold` called just before each poll request leaves: what it
/// returns is dropped once that poll brought no tokens, and returned with the tokens when it
/// did. The session holds a [`CriticalSection`](crate::CriticalSection) this way, from the
/// request that spends the device code to the tokens stored, never across the waits between
/// polls.
///
/// # Errors
/// As [`poll_for_tokens`].
pub fn poll_for_tokens_held<G>(
    agent: &ureq::Agent,
    poll: &DevicePoll<'_>,
    mut hold: impl FnMut() -> G,
) -> Result<(TokenSet, G)> {
    let step = Step::CodeExchange;
    let mut interval = poll.interval.clamp(1, MAX_INTERVAL);
    loop {
        let now = Instant::now();
        let wait = Duration::from_secs(interval);
        if now + wait > poll.deadline {
            return Err(Error::new(
                ErrorKind::Timeout,
                step,
                "the device login was not approved in time",
            ));
        }
        match poll.cancel.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                return Err(Error::new(
                    ErrorKind::Cancelled,
                    step,
                    "the device login was cancelled",
                ));
            }
        }
        let mut form = vec![
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", poll.device_code.secret()),
        ];
        form.extend(poll.resource.map(|r| ("resource", r)));
        let held = hold();
        match poll.endpoint.request(agent, form, step) {
            Ok(tokens) => return Ok((tokens, held)),
            Err(e) => match e.oauth_code() {
                Some(OAuthErrorCode::AuthorizationPending) => {}
                Some(OAuthErrorCode::SlowDown) => {
                    interval = (interval + SLOW_DOWN_STEP).min(MAX_INTERVAL);
                    log::debug!("device login: slow_down, polling every {interval} s");
                }
                _ => return Err(e),
            },
        }
    }
}
