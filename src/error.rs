//! The crate's one error type: which step failed, on which URL, and why.
//!
//! Server-reported OAuth errors (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 6749 §4.1.2.1) keep their
//! error code; transport failures, unparseable responses and policy refusals are kept apart so a
//! caller can decide what to do. No message ever contains a token, code, verifier or secret.

use std::fmt::{self, Write as _};

/// A specialised `Result` for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in the categories a caller makes decisions on.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The network exchange failed: connect, TLS, I/O, or an HTTP timeout.
    Transport,
    /// The server answered with an unexpected HTTP status and no OAuth error body.
    Status,
    /// The server's answer could not be parsed or broke a MUST of the spec.
    InvalidResponse,
    /// The server (or the authorization callback) reported an OAuth error code.
    OAuth,
    /// The client refused to go on for safety: insecure URL, issuer or resource mismatch,
    /// no PKCE S256, an `iss` that does not match, and the like.
    Refused,
    /// The user did not finish the authorization in time.
    Timeout,
    /// Reading or writing the token cache failed.
    Storage,
    /// The caller's input or configuration is invalid (for example an unparseable URL).
    Config,
    /// The browser could not be opened and no authorize hook was configured.
    Browser,
    /// Only a new login would help, and the session is not interactive
    /// ([`SessionBuilder::interactive`](crate::SessionBuilder::interactive)): nothing was
    /// opened or bound.
    LoginRequired,
    /// The login was cancelled ([`Session::cancel_login`](crate::Session::cancel_login)).
    Cancelled,
    /// A plain Bearer token was wanted where only a DPoP-bound one will do: the MCP server
    /// takes bound tokens only and the session does not bind
    /// ([`SessionBuilder::dpop`](crate::SessionBuilder::dpop)), or the token is bound and so
    /// cannot be handed on as a header (each request needs its own proof).
    ProofRequired,
}

/// The OAuth error codes the client acts on (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1;
/// RFC 7591 §3.2.2; RFC 8707 §2; RFC 6585 for `too_many_requests`), and any other as sent.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// `invalid_request`.
    InvalidRequest,
    /// `invalid_client`: the client's credentials were rejected.
    InvalidClient,
    /// `invalid_grant`: the code or refresh token is no longer usable; only a new
    /// authorization helps.
    InvalidGrant,
    /// `unauthorized_client`: the client may not use this grant.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `invalid_scope`.
    InvalidScope,
    /// `invalid_target`: the resource indicator was refused (RFC 8707).
    InvalidTarget,
    /// `access_denied`: the person (or the server) said no.
    AccessDenied,
    /// `invalid_client_metadata` at registration.
    InvalidClientMetadata,
    /// `invalid_redirect_uri` at registration.
    InvalidRedirectUri,
    /// `too_many_requests`: a rate limit (see [`Error::retry_after`]).
    TooManyRequests,
    /// `temporarily_unavailable` or `server_error`.
    ServerUnavailable,
    /// `invalid_token` from a resource server.
    InvalidToken,
    /// `insufficient_scope` from a resource server.
    InsufficientScope,
    /// `authorization_pending`: the person has not finished the device login yet (RFC 8628).
    AuthorizationPending,
    /// `slow_down`: poll less often (RFC 8628).
    SlowDown,
    /// `expired_token`: the device code expired before the person finished (RFC 8628).
    ExpiredToken,
    /// Any other code, as the server sent it (made printable).
    Other(String),
}

impl OAuthErrorCode {
    /// The code for `name`.
    pub fn parse(name: &str) -> OAuthErrorCode {
        use OAuthErrorCode::*;
        match name {
            "invalid_request" => InvalidRequest,
            "invalid_client" => InvalidClient,
            "invalid_grant" => InvalidGrant,
            "unauthorized_client" => UnauthorizedClient,
            "unsupported_grant_type" => UnsupportedGrantType,
            "invalid_scope" => InvalidScope,
            "invalid_target" => InvalidTarget,
            "access_denied" => AccessDenied,
            "invalid_client_metadata" => InvalidClientMetadata,
            "invalid_redirect_uri" => InvalidRedirectUri,
            "too_many_requests" => TooManyRequests,
            "temporarily_unavailable" | "server_error" => ServerUnavailable,
            "invalid_token" => InvalidToken,
            "insufficient_scope" => InsufficientScope,
            "authorization_pending" => AuthorizationPending,
            "slow_down" => SlowDown,
            "expired_token" => ExpiredToken,
            other => Other(other.to_owned()),
        }
    }
}

/// The step of the login flow that failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reading the cached token.
    TokenCheck,
    /// Refreshing an expired access token (RFC 6749 §6).
    Refresh,
    /// Protected resource metadata discovery (RFC 9728).
    ResourceDiscovery,
    /// Authorization server metadata discovery (RFC 8414, OpenID Connect Discovery).
    AuthServerDiscovery,
    /// Dynamic client registration (RFC 7591) or client selection.
    Registration,
    /// Building the authorization request and opening the browser.
    Authorization,
    /// Waiting for and validating the redirect on the loopback listener.
    Callback,
    /// Redeeming the authorization code (RFC 6749 §4.1.3, RFC 7636).
    CodeExchange,
    /// Writing or clearing the token cache.
    Storage,
    /// Configuring the session.
    Configure,
    /// A request to the MCP server.
    Request,
    /// Revoking a token (RFC 7009).
    Revocation,
    /// A grant without a browser: client credentials or JWT bearer (RFC 6749 §4.4,
    /// RFC 7523 §2.1).
    Grant,
    /// Exchanging the person's ID token for an ID-JAG at the identity provider (RFC 8693).
    TokenExchange,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::TokenCheck => "token check",
            Step::Refresh => "token refresh",
            Step::ResourceDiscovery => "protected resource metadata discovery",
            Step::AuthServerDiscovery => "authorization server metadata discovery",
            Step::Registration => "client registration",
            Step::Authorization => "authorization request",
            Step::Callback => "authorization callback",
            Step::CodeExchange => "code exchange",
            Step::Storage => "token storage",
            Step::Configure => "configuration",
            Step::Request => "MCP request",
            Step::Revocation => "token revocation",
            Step::Grant => "token grant",
            Step::TokenExchange => "token exchange",
        })
    }
}

/// The error of every fallible function in this crate.
///
/// Small (one pointer) so that `Result`s stay cheap. `Display` names the step, the URL when
/// there is one, and the reason; the underlying cause is reachable through
/// [`source()`](std::error::Error::source), and `{:#}` prints it too (each cause once, as
/// error-chain printers do).
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    step: Step,
    message: String,
    url: Option<String>,
    oauth_error: Option<String>,
    oauth_description: Option<String>,
    retry_after: Option<u64>,
    status: Option<u16>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A new error of `kind` in `step` with a human-readable `message` (no secrets).
    pub(crate) fn new(kind: ErrorKind, step: Step, message: impl Into<String>) -> Error {
        Error(Box::new(Inner {
            kind,
            step,
            message: message.into(),
            url: None,
            oauth_error: None,
            oauth_description: None,
            retry_after: None,
            status: None,
            source: None,
        }))
    }

    /// A server-reported OAuth error `code` with its optional description.
    pub(crate) fn oauth(step: Step, code: &str, description: Option<&str>) -> Error {
        let mut e = Error::new(ErrorKind::OAuth, step, "the server reported an OAuth error");
        e.0.oauth_error = Some(sanitize(code, 64));
        e.0.oauth_description = description.map(|d| sanitize(d, 200));
        e
    }

    /// Attaches an OAuth error code to an error with its own message.
    pub(crate) fn with_oauth_code(mut self, code: &str) -> Error {
        self.0.oauth_error = Some(sanitize(code, 64));
        self
    }

    /// Attaches the URL the failing request went to (query and fragment are dropped).
    pub(crate) fn with_url(mut self, url: &url::Url) -> Error {
        let mut shown = url.clone();
        shown.set_query(None);
        shown.set_fragment(None);
        self.0.url = Some(shown.to_string());
        self
    }

    /// Attaches the HTTP status of the response that failed.
    pub(crate) fn with_status(mut self, status: u16) -> Error {
        self.0.status = Some(status);
        self
    }

    /// Attaches how long the server asked to wait before trying again (`Retry-After`).
    pub(crate) fn with_retry_after(mut self, seconds: Option<u64>) -> Error {
        self.0.retry_after = seconds;
        self
    }

    /// This crate's error inside an error of a session's [`agent`](crate::Session::agent):
    /// its middleware refreshes tokens, and a refresh that fails (the authorization server
    /// refused it, say) reaches the caller as a [`ureq::Error::Io`] holding this error, kind
    /// and all. `None` for the agent's own errors (the connection failed, …).
    pub fn in_agent_error(e: &ureq::Error) -> Option<&Error> {
        match e {
            ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<Error>(),
            _ => None,
        }
    }

    /// The error of a request sent with a session's agent at `step`: this crate's own when
    /// its middleware failed (see [`in_agent_error`](Self::in_agent_error)), else a transport
    /// error with `e` as its cause.
    pub(crate) fn from_agent(e: ureq::Error, step: Step, message: &str) -> Error {
        match e {
            ureq::Error::Io(io) if io.get_ref().is_some_and(|i| i.is::<Error>()) => {
                match io.into_inner().map(|b| b.downcast::<Error>()) {
                    Some(Ok(inner)) => *inner,
                    _ => Error::new(ErrorKind::Transport, step, message),
                }
            }
            e => Error::new(ErrorKind::Transport, step, message).with_source(e),
        }
    }

    /// Attaches the underlying cause.
    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        self.0.source = Some(source.into());
        self
    }

    /// Puts `context` (a path, say) in front of the message.
    pub(crate) fn prefix_message(mut self, context: &str) -> Error {
        self.0.message = format!("{context}: {}", self.0.message);
        self
    }

    /// Re-labels the step (a step function used inside another step).
    pub(crate) fn at_step(mut self, step: Step) -> Error {
        self.0.step = step;
        self
    }

    /// The category of the failure.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The step of the flow that failed.
    pub fn step(&self) -> Step {
        self.0.step
    }

    /// The URL of the failing request, without its query, when there was one.
    pub fn url(&self) -> Option<&str> {
        self.0.url.as_deref()
    }

    /// The OAuth error code reported by the server or the callback (`invalid_grant`,
    /// `access_denied`, …), when the failure was one.
    pub fn oauth_error(&self) -> Option<&str> {
        self.0.oauth_error.as_deref()
    }

    /// The OAuth error code, typed, when the failure was one.
    pub fn oauth_code(&self) -> Option<OAuthErrorCode> {
        self.oauth_error().map(OAuthErrorCode::parse)
    }

    /// The server's `error_description`, when it sent one (control characters removed).
    pub fn oauth_description(&self) -> Option<&str> {
        self.0.oauth_description.as_deref()
    }

    /// The HTTP status of the failing response, when a server answered one.
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }

    /// How long the server asked to wait before trying again (its `Retry-After`, in seconds),
    /// when it said: a rate limit (`429`, `too_many_requests`) or an outage (`503`).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.0.retry_after.map(std::time::Duration::from_secs)
    }

    /// True when the stored grant is no longer usable and only a new authorization helps:
    /// `invalid_grant` on refresh or exchange.
    pub fn needs_reauthorization(&self) -> bool {
        self.oauth_code() == Some(OAuthErrorCode::InvalidGrant)
    }

    /// True when the authorization server rejected the client's credentials (`invalid_client`).
    pub fn is_invalid_client(&self) -> bool {
        matches!(
            self.oauth_code(),
            Some(OAuthErrorCode::InvalidClient | OAuthErrorCode::UnauthorizedClient)
        )
    }

    /// True when the user (or the authorization server) denied the authorization request.
    pub fn is_access_denied(&self) -> bool {
        self.oauth_code() == Some(OAuthErrorCode::AccessDenied)
    }
}

/// Server-supplied `text` made safe to print on a terminal or in a log line: control
/// characters (C0 with ESC, CR and LF, DEL, C1) and the invisible Unicode format characters
/// that reorder or hide text (bidi embeddings, overrides and isolates, zero-width characters,
/// BOM) are dropped. Every error's `Display` goes through it; front ends use it for the server
/// text they print (issuers, client ids, scopes).
///
/// ```
/// use mcp_oauth_client::printable;
/// assert_eq!(printable("ok\u{1b}]0;owned\u{7}\r\nINFO forged"), "ok]0;ownedINFO forged");
/// assert_eq!(printable("evil\u{202e}gpj.exe"), "evilgpj.exe");
/// assert_eq!(printable("https://as.example.com"), "https://as.example.com");
/// ```
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().all(shown) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.chars().filter(|c| shown(*c)).collect())
    }
}

/// True for characters [`printable`] keeps.
fn shown(c: char) -> bool {
    // Not control characters, not the line and paragraph separators (U+2028, U+2029: line
    // breaks to terminals and log viewers that honour them), not the invisible formatting
    // characters that reorder or hide text.
    !c.is_control()
        && !matches!(c,
            '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// Keeps server-supplied text printable and short, so it cannot forge log lines.
pub(crate) fn sanitize(text: &str, max: usize) -> String {
    text.chars().filter(|c| shown(*c)).take(max).collect()
}

/// Server-supplied text in messages is cut short and stripped of control characters.
pub(crate) fn shorten(s: &str) -> String {
    sanitize(s, 120)
}

/// Server-supplied `text` without control characters and with every occurrence of each
/// secret replaced by `[redacted]`. Control characters go first, so that a secret split by
/// them cannot reassemble when the text is sanitised later; a secret that still shows after
/// the replacement (one made of bits of `[redacted]`) empties the text.
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let printable = |s: &str| sanitize(s, usize::MAX);
    let secrets: Vec<String> = secrets
        .iter()
        .map(|s| printable(s))
        .filter(|s| !s.is_empty())
        .collect();
    let redacted = secrets
        .iter()
        .fold(printable(text), |t, s| t.replace(s.as_str(), "[redacted]"));
    if secrets.iter().any(|s| redacted.contains(s.as_str())) {
        String::new()
    } else {
        redacted
    }
}

impl fmt::Display for Error {
    /// Written whole, then made [`printable`]: whatever server text went into the message,
    /// the URL or the causes, the error prints as one clean line. `{}` is this error alone
    /// (its cause is [`source()`](std::error::Error::source), for printers that walk the
    /// chain); `{:#}` appends every cause, each once.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        self.render(&mut text)?;
        if f.alternate() {
            let mut cause = std::error::Error::source(self);
            while let Some(c) = cause {
                write!(text, ": {c}")?;
                cause = c.source();
            }
        }
        f.write_str(&printable(&text))
    }
}

impl Error {
    fn render(&self, f: &mut impl fmt::Write) -> fmt::Result {
        write!(f, "{} failed", self.0.step)?;
        if let Some(url) = &self.0.url {
            write!(f, " ({url})")?;
        }
        write!(f, ": {}", self.0.message)?;
        if let Some(code) = &self.0.oauth_error {
            write!(f, ": {code}")?;
            if let Some(d) = &self.0.oauth_description {
                write!(f, " ({d})")?;
            }
        }
        if let Some(seconds) = self.0.retry_after {
            write!(f, "; the server asks to retry after {seconds} s")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("step", &self.0.step)
            .field("url", &self.0.url)
            .field("message", &self.0.message)
            .field("oauth_error", &self.0.oauth_error)
            .field("status", &self.0.status)
            .field("retry_after", &self.0.retry_after)
            .field("source", &self.0.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_leaves_no_secret_and_no_control_character() {
        assert_eq!(
            redact("a\nb", &["", "\n"]),
            "ab",
            "control characters go, empty secrets match nothing"
        );
        // "]a" would reappear across the marker: "]]aa" -> "][redacted]a".
        assert_eq!(redact("]]aa", &["]a"]), "");
    }

    #[test]
    fn error_is_one_pointer() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn error_is_send_sync_static() {
        fn check<T: std::error::Error + Send + Sync + 'static>() {}
        check::<Error>();
    }

    #[test]
    fn display_names_step_url_and_code() {
        let url = url::Url::parse("https://as.example/token?code=SECRET").unwrap();
        let e = Error::oauth(Step::Refresh, "invalid_grant", Some("expired\nforged line"))
            .with_url(&url);
        let text = e.to_string();
        assert_eq!(
            text,
            "token refresh failed (https://as.example/token): the server reported an OAuth \
             error: invalid_grant (expiredforged line)"
        );
        assert!(e.needs_reauthorization());
        assert!(!text.contains("SECRET"));
    }

    #[test]
    fn each_cause_is_shown_once() {
        let io = std::io::Error::other("connection reset\nby peer");
        let inner =
            Error::new(ErrorKind::Transport, Step::Refresh, "the request failed").with_source(io);
        let outer = Error::new(ErrorKind::Storage, Step::Storage, "cannot save").with_source(inner);
        assert_eq!(outer.to_string(), "token storage failed: cannot save");
        assert_eq!(
            format!("{outer:#}"),
            "token storage failed: cannot save: token refresh failed: the request failed: \
             connection resetby peer"
        );
        // A printer that walks the chain, as error reporters do, sees each cause once.
        let mut chain = vec![outer.to_string()];
        let mut cause = std::error::Error::source(&outer);
        while let Some(c) = cause {
            chain.push(c.to_string());
            cause = c.source();
        }
        let whole = chain.join(" / ");
        assert_eq!(whole.matches("connection reset").count(), 1, "{whole}");
        assert_eq!(whole.matches("the request failed").count(), 1, "{whole}");
    }
}
