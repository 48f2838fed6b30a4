//! `Session`: one MCP server, the whole flow run in order and only as far as needed.
//!
//! token check → refresh → discovery → client → loopback listener + browser → code exchange →
//! storage (MCP authorization, all revisions this crate implements; see the crate docs).

mod binding;
mod browser_login;
mod builder;
mod cache;
mod clients;
mod context;
mod critical;
mod device_login;
mod flow;
mod grant_login;
mod keys;
mod net;
mod progress;
mod refresh;
mod request;
mod servers;

use std::sync::Arc;

use url::Url;

pub use builder::{DEFAULT_CALLBACK_TIMEOUT, DEFAULT_CLIENT_NAME, SessionBuilder};
pub use critical::CriticalSection;
pub use flow::Logout;
pub use progress::Progress;
pub use refresh::EXPIRY_MARGIN;
pub use request::{MAX_AUTHORIZATIONS, MCP_RESPONSE_TIMEOUT};

use crate::error::{Error, ErrorKind, Result, Step};
use crate::secret::Secret;
use crate::storage::{FileTokenStorage, TokenStore};
use context::LoginContext;
use flow::Inner;

/// A login to one OAuth-protected MCP server.
///
/// `Send + Sync`: share it between threads; concurrent callers wait for one flow.
///
/// # Example
/// ```no_run
/// let session = mcp_oauth_client::Session::builder("https://mcp.example.com/mcp")
///     .scopes("files:read")
///     .build()?;
/// let header = session.authorization_header()?; // logs in on first use
/// # Ok::<(), mcp_oauth_client::Error>(())
/// ```
pub struct Session {
    inner: Arc<Inner>,
    /// The file store, when the session uses one.
    file: Option<FileTokenStorage>,
    /// The agent for MCP requests: adds the bearer token for the server's origin.
    mcp_agent: ureq::Agent,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("server_url", &self.inner.server_url().as_str())
            .field("store", &self.inner.store())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A builder for the MCP server at `server_url` with every option at its default.
    pub fn builder(server_url: impl Into<String>) -> SessionBuilder {
        SessionBuilder::new(server_url.into())
    }

    /// A session with every default (FastMCP's `auth="oauth"`).
    ///
    /// # Errors
    /// As [`SessionBuilder::build`].
    pub fn new(server_url: impl Into<String>) -> Result<Session> {
        Session::builder(server_url).build()
    }

    /// The MCP server URL.
    pub fn server_url(&self) -> &Url {
        self.inner.server_url()
    }

    /// Where the session keeps tokens and client registrations.
    pub fn store(&self) -> &dyn TokenStore {
        self.inner.store()
    }

    /// The file store, when the session keeps its tokens in files (the default); `None` with
    /// a [`token_store`](SessionBuilder::token_store) of another kind.
    pub fn file_store(&self) -> Option<&FileTokenStorage> {
        self.file.as_ref()
    }

    /// A valid access token: the cached one, else a refreshed one, else one from a new login
    /// through the browser.
    ///
    /// # Errors
    /// The error of the step that failed; see [`Error::step`].
    pub fn access_token(&self) -> Result<Secret> {
        self.inner.access_token().map(|p| p.token)
    }

    /// `Bearer <access token>`, for an `Authorization` header.
    ///
    /// # Errors
    /// As [`access_token`](Self::access_token); [`ErrorKind::ProofRequired`] when the token is
    /// bound to a DPoP key: a header alone cannot carry it, use
    /// [`request_headers`](Self::request_headers) or the session's [`agent`](Self::agent).
    pub fn authorization_header(&self) -> Result<String> {
        let presented = self.inner.access_token()?;
        if presented.dpop.is_some() {
            return Err(Error::new(
                ErrorKind::ProofRequired,
                Step::Request,
                "the token is DPoP-bound: each request needs its own proof \
                 (Session::request_headers, or the session's agent)",
            ));
        }
        Ok(format!("Bearer {}", presented.token.secret()))
    }

    /// The headers that authorize one `method` request to `url` (on the MCP server), for
    /// callers with their own HTTP client: `Authorization` (`Bearer`, or `DPoP` for a
    /// DPoP-bound token) and, for a bound token, a fresh `DPoP` proof (RFC 9449 §7.1).
    /// Logs in on first use, like [`access_token`](Self::access_token).
    ///
    /// # Errors
    /// As [`access_token`](Self::access_token); [`ErrorKind::Config`] for a `url` that does
    /// not parse.
    pub fn request_headers(&self, method: &str, url: &str) -> Result<Vec<(&'static str, Secret)>> {
        let url = crate::address::parse_endpoint(url, Step::Request).map_err(|e| {
            Error::new(ErrorKind::Config, Step::Request, "invalid URL").with_source(e)
        })?;
        request::authorization_headers(&self.inner.access_token()?, method, &url)
    }

    /// Handles a 401 from the MCP server: the cached access token was not accepted. Reads the
    /// `WWW-Authenticate` value (its `resource_metadata` and `scope`), looks at the resource
    /// metadata again, then refreshes (same authorization server, no new scope) or logs in
    /// again, and returns the new access token.
    ///
    /// # Errors
    /// As [`access_token`](Self::access_token).
    pub fn on_unauthorized(&self, www_authenticate: Option<&str>) -> Result<Secret> {
        let challenges = www_authenticate
            .map(crate::www_authenticate::parse_www_authenticate)
            .unwrap_or_default();
        let offered = binding::Offered::of(&challenges);
        let challenge = challenges.iter().find(|c| c.is_token_scheme());
        if self.inner.fall_back_to_bearer(offered) {
            log::debug!("falling back to Bearer tokens");
        }
        self.inner
            .reauthorize(&LoginContext::unauthorized(challenge).offering(offered))
            .map(|p| p.token)
    }

    /// Handles a 403 `insufficient_scope` from the MCP server (step-up): authorizes again
    /// with the union of the scopes asked for before and the challenged ones.
    ///
    /// # Errors
    /// As [`access_token`](Self::access_token).
    pub fn on_insufficient_scope(&self, www_authenticate: &str) -> Result<Secret> {
        let challenges = crate::www_authenticate::parse_www_authenticate(www_authenticate);
        let offered = binding::Offered::of(&challenges);
        let challenge = challenges.iter().find(|c| c.is_token_scheme());
        self.inner
            .reauthorize(&LoginContext::step_up(challenge).offering(offered))
            .map(|p| p.token)
    }

    /// An agent for requests to the MCP server. Its middleware adds `Authorization: Bearer`
    /// with the cached (or refreshed) token to every request for the server's origin, and to
    /// no other (for a DPoP-bound token, `Authorization: DPoP` and a fresh proof; the nonces
    /// the server sends are kept for the next proofs); it never starts a browser login: a 401
    /// does, through [`send`](Self::send) or [`on_unauthorized`](Self::on_unauthorized). HTTP
    /// error statuses are responses, not errors, so a 401's `WWW-Authenticate` can be read.
    /// When the middleware's refresh fails, the request fails with a [`ureq::Error::Io`] that
    /// holds this crate's error: [`Error::in_agent_error`] finds it, kind and all
    /// ([`send`](Self::send) returns it as it is).
    pub fn agent(&self) -> &ureq::Agent {
        &self.mcp_agent
    }

    /// Sends a request built by `build` (with the [`agent`](Self::agent) it is given) and
    /// handles authorization: on 401 it runs the flow and sends the request again; on 403
    /// `insufficient_scope` it steps up. A ureq body can be sent only once, so the request is
    /// rebuilt for each attempt. At most [`MAX_AUTHORIZATIONS`](crate::MAX_AUTHORIZATIONS) flows run for one request.
    ///
    /// # Errors
    /// The flow's error; a [`Step::Request`] error when the request itself fails, when the
    /// server still answers 401 to a new token, or keeps answering 403 `insufficient_scope`.
    ///
    /// # Example
    /// ```no_run
    /// # let session = mcp_oauth_client::Session::new("https://mcp.example.com/mcp")?;
    /// let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    /// let response = session.send(|agent| {
    ///     agent.post(session.server_url().as_str())
    ///         .header("accept", "application/json, text/event-stream")
    ///         .content_type("application/json")
    ///         .send(body)
    /// })?;
    /// # Ok::<(), mcp_oauth_client::Error>(())
    /// ```
    pub fn send(
        &self,
        build: impl FnMut(
            &ureq::Agent,
        ) -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        request::send(&self.inner, &self.mcp_agent, build)
    }

    /// Logs in through the browser even when a valid token is cached, and stores the result.
    ///
    /// # Errors
    /// As [`access_token`](Self::access_token).
    pub fn login(&self) -> Result<Secret> {
        self.inner.forced_login().map(|p| p.token)
    }

    /// Refreshes the access token now, even if the cached one is still valid, with the token
    /// endpoint and client the cache holds (no discovery); logs in when there is nothing to
    /// refresh or the grant was rejected.
    ///
    /// # Errors
    /// As [`access_token`](Self::access_token).
    pub fn refresh(&self) -> Result<Secret> {
        self.inner.refresh_now().map(|p| p.token)
    }

    /// Cancels the login of this session that waits for the browser, from another thread:
    /// its caller gets [`ErrorKind::Cancelled`] and the cache is left as it was. Returns
    /// whether a login was waiting.
    pub fn cancel_login(&self) -> bool {
        self.inner.cancel_login()
    }

    /// Logs out: revokes the refresh and access tokens at the authorization server when it has
    /// a `revocation_endpoint` (RFC 7009), then forgets them here and on disk. The local state
    /// is cleared even when revocation fails; the report says what happened.
    ///
    /// # Errors
    /// [`ErrorKind::Storage`] when the cache cannot be cleared.
    pub fn logout(&self) -> Result<Logout> {
        self.inner.logout()
    }

    /// Forgets this server's tokens, here and on disk (see [`FileTokenStorage::clear`]).
    ///
    /// # Errors
    /// [`ErrorKind::Storage`] when a file cannot be removed.
    pub fn clear(&self) -> Result<()> {
        self.inner.clear()
    }
}
