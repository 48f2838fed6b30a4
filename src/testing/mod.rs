//! An embedded OAuth 2.1 authorization server with an OAuth-protected MCP endpoint, for tests.
//!
//! [`TestServer`] is a small but real HTTP/1.1 server on `127.0.0.1` (an ephemeral port, never
//! any other address). It plays both roles an MCP client meets when it logs in:
//!
//! * the **protected resource**: an MCP endpoint at `/mcp` that demands a bearer token, answers
//!   `401` with a `WWW-Authenticate` challenge pointing at its Protected Resource Metadata
//!   (RFC 9728), and with a valid token speaks a little JSON-RPC (`initialize`, `ping`,
//!   `tools/list`, and an `echo` tool);
//! * the **authorization server**: RFC 8414 metadata, dynamic client registration (RFC 7591),
//!   an `/authorize` endpoint that approves at once (no login page) and redirects with a code,
//!   a `/token` endpoint with PKCE S256 (RFC 7636), refresh tokens with rotation, resource
//!   indicators (RFC 8707), and token revocation (RFC 7009).
//!
//! It is meant for integration tests, demos, and for people testing their own programs built on
//! this crate: every request is recorded ([`TestServer::requests`]), any endpoint can be made to
//! fail on purpose ([`TestServer::set_fault`]), and [`ServerConfig`] switches between the
//! discovery layouts real servers use. Because `/authorize` redirects immediately, a test can
//! drive the whole login by following the redirect itself instead of opening a browser.
//!
//! The server is not hardened for the open Internet and must only be used for testing.
//! It stops when the [`TestServer`] is dropped.
//!
//! # Example
//!
//! ```no_run
//! use mcp_oauth_client::testing::{Fault, Route, TestServer};
//!
//! let server = TestServer::start()?;
//! println!("MCP endpoint: {}", server.mcp_url());
//!
//! // Make the next token request fail once, as a flaky server would.
//! server.set_fault(Route::Token, Fault::oauth_error(503, "temporarily_unavailable").times(1));
//!
//! // ... run the program under test against `server.mcp_url()` ...
//!
//! for request in server.requests() {
//!     println!("{} {} ({:?})", request.method, request.path, request.route);
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

mod assertion;
mod config;
mod device;
mod dpop;
mod fault;
mod grants;
mod http;
mod issue;
mod legacy_sse;
mod mcp;
mod metadata;
mod oauth;
mod record;
mod route;
mod server;
mod state;
mod stateless;
mod user_agent;
mod util;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Duration;

pub use config::{AsMetadataPaths, McpDpop, ServerConfig};
pub use fault::Fault;
pub use record::RecordedRequest;
pub use route::Route;
pub use state::NonceChallenges;
pub use user_agent::{HeadlessBrowser, MAX_HOPS, Visit, follow_redirects};

use state::Shared;

/// A running test server: an OAuth 2.1 authorization server plus an MCP endpoint it protects.
///
/// Start it with [`TestServer::start`] or [`TestServer::start_with`]; it listens on
/// `127.0.0.1` on a port chosen by the OS, serving each connection on its own thread.
/// Dropping it stops accepting connections and closes the open ones.
///
/// All methods take `&self`, and the type is `Send + Sync`, so it can be shared with the code
/// under test (for example in an `Arc`).
pub struct TestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with [`ServerConfig::default`].
    ///
    /// # Errors
    ///
    /// Fails if no local port can be bound or the accept thread cannot be spawned.
    pub fn start() -> std::io::Result<TestServer> {
        TestServer::start_with(ServerConfig::default())
    }

    /// Starts a server with the given configuration.
    ///
    /// # Errors
    ///
    /// Fails if no local port can be bound or the accept thread cannot be spawned.
    pub fn start_with(config: ServerConfig) -> std::io::Result<TestServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(addr.port(), config));
        let accept = thread::Builder::new()
            .name(format!("test-server-{}", addr.port()))
            .spawn({
                let shared = Arc::clone(&shared);
                move || server::accept_loop(&listener, &shared)
            })?;
        log::debug!("test server listening on {addr}");
        Ok(TestServer {
            shared,
            addr,
            accept: Some(accept),
        })
    }

    /// The server's root URL, `http://127.0.0.1:PORT/`.
    pub fn base_url(&self) -> url::Url {
        self.shared.base.clone()
    }

    /// The MCP endpoint, `http://127.0.0.1:PORT/mcp`.
    ///
    /// This is also the `resource` the Protected Resource Metadata advertises (unless
    /// [`ServerConfig::prm_resource_override`] says otherwise).
    pub fn mcp_url(&self) -> url::Url {
        self.shared.mcp_url.clone()
    }

    /// The authorization server's issuer identifier: the base URL without its trailing slash
    /// followed by [`ServerConfig::issuer_path`], e.g. `http://127.0.0.1:PORT` or
    /// `http://127.0.0.1:PORT/tenant1`.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// Every request received so far, in order of arrival (including ones that were answered
    /// with a fault or a 404). A request is recorded before it is answered.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().log.clone()
    }

    /// Forgets every registered client, code and token, as an authorization server that keeps
    /// them in memory does when it restarts.
    pub fn forget_everything(&self) {
        let mut state = self.shared.lock();
        state.clients.clear();
        state.codes.clear();
        state.access_tokens.clear();
        state.refresh_tokens.clear();
        state.device_codes.clear();
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// Makes requests to `route` fail with `fault`, replacing any fault already set on it.
    ///
    /// The fault applies before any normal handling (for [`Route::Mcp`], even before the token
    /// is checked), to every request whose [`Route::of_path`] is `route`.
    pub fn set_fault(&self, route: Route, fault: Fault) {
        self.shared.lock().faults.insert(route, fault);
    }

    /// Removes every fault set with [`TestServer::set_fault`].
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Sets the lifetime (`expires_in`, in seconds) of access tokens issued from now on.
    ///
    /// Zero or a negative value issues tokens that are already expired, which is handy for
    /// testing refresh logic.
    pub fn set_access_token_lifetime(&self, secs: i64) {
        self.shared.lock().access_token_lifetime = secs;
    }

    /// Requires the MCP endpoint's tokens to carry every one of these space-separated scopes;
    /// a valid token lacking one gets `403` with `error="insufficient_scope"`. `None` removes the
    /// requirement.
    pub fn set_required_scope(&self, scope: Option<String>) {
        self.shared.lock().required_scope = scope;
    }

    /// The tokens clients asked to revoke at the revocation endpoint, in order, including ones
    /// the server did not know.
    pub fn revoked_tokens(&self) -> Vec<String> {
        self.shared.lock().revoked.clone()
    }

    /// How many token families were revoked because a rotated-away refresh token was presented
    /// again ([`ServerConfig::strict_refresh_reuse`]).
    pub fn family_revocations(&self) -> usize {
        self.shared.lock().family_revocations
    }

    /// How many clients registered through dynamic client registration (or
    /// [`add_client`](Self::add_client)).
    pub fn registered_clients(&self) -> usize {
        self.shared.lock().clients.len()
    }

    /// Registers a client out of band, as an administrator would: `auth_method` is
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` (with its public `jwk`)
    /// or `none`. Such a client can use every grant the server has, client credentials too
    /// (a confidential one); it has no redirect URIs.
    pub fn add_client(
        &self,
        client_id: &str,
        auth_method: &str,
        secret: Option<&str>,
        jwk: Option<serde_json::Value>,
    ) {
        self.shared.lock().clients.insert(
            client_id.to_owned(),
            state::Client {
                secret: secret.map(str::to_owned),
                auth_method: auth_method.to_owned(),
                redirect_uris: Vec::new(),
                jwk,
            },
        );
    }

    /// Replaces the DPoP nonces the token and MCP endpoints require
    /// ([`ServerConfig::dpop_nonces`]): the ones clients hold go stale.
    pub fn rotate_dpop_nonces(&self) {
        self.shared.lock().dpop_nonces = state::DpopNonces::new();
    }

    /// How many `use_dpop_nonce` challenges each endpoint has sent.
    pub fn nonce_challenges(&self) -> NonceChallenges {
        self.shared.lock().nonce_challenges
    }
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("base_url", &self.shared.base.as_str())
            .field("issuer", &self.shared.issuer)
            .finish_non_exhaustive()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.close_connections();
        // The accept loop is blocked in accept(); a connection wakes it so it sees the flag.
        // If even that fails, leave the thread behind rather than risk hanging here.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok();
        if let Some(accept) = self.accept.take()
            && woke
        {
            let _ = accept.join();
        }
        log::debug!("test server on {} stopped", self.addr);
    }
}
