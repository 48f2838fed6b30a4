//! The flow behind a [`Session`](crate::Session): token check → refresh → discovery → client →
//! loopback listener + browser → code exchange → storage, run only as far as needed, one flow
//! at a time in a process and, through the cache lock, across processes (MCP authorization;
//! the steps' own modules cite their RFCs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use url::Url;

use crate::address::AddressRules;
use crate::authorize::{AuthorizationRequest, ClientCheck, build_authorization_url, check_client};
use crate::browser::{AuthorizeHook, BrowserStep, open_browser};
use crate::callback::{CallbackExpectation, CallbackHost, CallbackListener, Canceller};
use crate::client_auth::{AuthMethod, choose_auth_method};
use crate::device::{
    DeviceHook, DevicePoll, DeviceRequest, DeviceStep, poll_for_tokens_held,
    request_device_authorization,
};
use crate::discovery::{
    self, AuthServerMetadata, ResourceMetadata, canonical_resource, discover_auth_server_metadata,
    discover_resource_metadata,
};
use crate::dpop::Dpop;
use crate::error::{Error, ErrorKind, OAuthErrorCode, Result, Step, printable};
use crate::grant::{self, Grant, GrantRequest, TokenExchange};
use crate::jwt::SigningKey;
use crate::local::unix_now;
use crate::pkce::PkceVerifier;
use crate::registration::{ClientRegistration, ConfiguredClient, RegistrationRequest, register};
use crate::revocation::{RevocationRequest, TokenTypeHint, revoke};
use crate::scope::{ScopeSources, Scopes, select_scopes, step_up_scopes};
use crate::secret::Secret;
use crate::storage::{CacheLock, FORMAT_VERSION, RefreshMark, StoredTokens, TokenStore};
use crate::token::{self, CodeExchange, RefreshRequest, TokenSet};
use crate::www_authenticate::Challenge;

use super::binding::{self, Offered, Policy, ResourceDpop};
use super::progress::Progress;

/// A stored access token closer than this to its expiry is refreshed first (seconds).
pub const EXPIRY_MARGIN: u64 = 60;

/// What [`Session::logout`](crate::Session::logout) did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Logout {
    /// There were cached tokens for this server.
    pub had_tokens: bool,
    /// The tokens the authorization server accepted to revoke, refresh token first.
    pub revoked: Vec<TokenTypeHint>,
    /// Revocations that failed (the local state is cleared all the same).
    pub errors: Vec<Error>,
}

/// How much longer than the callback timeout a process waits for another one's lock.
const LOCK_WAIT_MARGIN: Duration = Duration::from_secs(30);

/// The session's options.
pub(crate) struct Config {
    pub(crate) scopes: Option<Scopes>,
    pub(crate) client_name: String,
    pub(crate) client_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub(crate) callback_port: Option<u16>,
    pub(crate) callback_host: CallbackHost,
    /// The redirect URI's path (default [`CALLBACK_PATH`](crate::callback::CALLBACK_PATH)).
    pub(crate) callback_path: String,
    /// More authorization request parameters a provider wants.
    pub(crate) authorize_params: Vec<(String, String)>,
    /// Leave out the RFC 8707 `resource` parameter, for servers that refuse it.
    pub(crate) omit_resource: bool,
    pub(crate) callback_timeout: Duration,
    pub(crate) client: ConfiguredClient,
    pub(crate) interactive: bool,
    /// How tokens are obtained when there are none to use or refresh.
    pub(crate) grant: Grant,
    /// When to bind tokens to a DPoP key.
    pub(crate) dpop: Policy,
    /// Told when a token request's answer must reach the store.
    pub(crate) critical: super::critical::Critical,
    /// Told each step of a login, refresh or grant.
    pub(crate) progress: Option<super::progress::ProgressHook>,
}

/// An access token as it is presented to the MCP server, with the DPoP key it is bound to
/// when it is.
#[derive(Clone)]
pub(crate) struct Presented {
    pub(crate) token: Secret,
    pub(crate) dpop: Option<Arc<Dpop>>,
}

/// What every caller reads, locked for a moment at a time.
struct State {
    /// The last tokens this process obtained, for when the cache cannot be written.
    tokens: Option<StoredTokens>,
    /// A fingerprint of the last access token handed out, to tell after a 401 whether the
    /// cache already holds a newer one.
    served: Option<[u8; 32]>,
    /// The session's DPoP key, with the nonces servers gave for it: generated at the first
    /// login that binds tokens, or read from the tokens it bound.
    dpop: Option<Arc<Dpop>>,
}

/// What one flow (a refresh or a login) at a time uses; locked for the flow's length, so a
/// login waiting for the browser holds up other flows of this session, never a caller whose
/// cached token is fresh.
pub(crate) struct Flow {
    /// Shows the browser step.
    pub(crate) hook: Option<AuthorizeHook>,
    /// Shows the device step.
    pub(crate) device_hook: Option<DeviceHook>,
}

/// The login waiting for the browser, registered so that another thread can cancel it;
/// unregistered on drop.
struct Waiting<'a>(&'a Mutex<Option<Canceller>>);

impl<'a> Waiting<'a> {
    fn start(slot: &'a Mutex<Option<Canceller>>, canceller: Canceller) -> Waiting<'a> {
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(canceller);
        Waiting(slot)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Refuses a browser login at a server whose metadata lists grants, only grants without a
/// browser among them, and not `authorization_code`: the browser would show an error page
/// and the login wait for nothing. (A list without either kind proves nothing: some servers
/// list only part of what they take.)
fn refuse_headless_only(metadata: &AuthServerMetadata) -> Result<()> {
    let Some(grants) = &metadata.grant_types_supported else {
        return Ok(());
    };
    let has = |g: &str| grants.iter().any(|x| x == g);
    let headless = has("client_credentials") || has(grant::JWT_BEARER);
    if has("authorization_code") || !headless {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Config,
        Step::AuthServerDiscovery,
        format!(
            "authorization server {} offers no browser login, only {}; configure that grant \
             (SessionBuilder::client_credentials, jwt_bearer or identity_assertion)",
            printable(&metadata.issuer),
            printable(&grants.join(", "))
        ),
    ))
}

/// The error of a login at an authorization server without dynamic registration and with no
/// client configured or registered there.
fn no_registration(metadata: &AuthServerMetadata) -> Error {
    Error::new(
        ErrorKind::Config,
        Step::Registration,
        format!(
            "authorization server {} offers no dynamic registration; configure a client_id",
            printable(&metadata.issuer)
        ),
    )
}

/// What discovery found for a login.
struct Discovered {
    /// The authorization server's metadata.
    metadata: AuthServerMetadata,
    /// The resource indicator (RFC 8707).
    resource: String,
    /// The resource metadata's `scopes_supported`.
    scopes_supported: Option<Vec<String>>,
    /// What the resource metadata says of DPoP.
    dpop: ResourceDpop,
}

/// A login's settled parts: where, for what, and with which DPoP key.
#[derive(Clone, Copy)]
struct Login<'a> {
    metadata: &'a AuthServerMetadata,
    resource: &'a str,
    scopes: Option<&'a Scopes>,
    /// The key the tokens are to be bound to, when they are.
    dpop: Option<&'a Arc<Dpop>>,
}

/// The kind of login discovery is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LoginKind {
    /// Through the browser.
    Browser,
    /// With a code entered on another device (RFC 8628).
    Device,
    /// A grant without a browser.
    Grant,
}

/// SHA-256 of a token: compared, never shown.
fn fingerprint(token: &Secret) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.secret().as_bytes()).into()
}

/// The session's state, shared with the agent's middleware.
pub(crate) struct Inner {
    server_url: Url,
    config: Config,
    /// Where tokens and clients are kept.
    store: Arc<dyn TokenStore>,
    /// The agent for OAuth requests: the session's bearer agent (which leaves OAuth exchanges
    /// alone), or one the caller brought.
    agent: ureq::Agent,
    /// Where the servers may send the client.
    rules: Arc<AddressRules>,
    state: Mutex<State>,
    flow: Mutex<Flow>,
    /// What cancels the login waiting for the browser, while one does.
    waiting: Mutex<Option<Canceller>>,
    /// The MCP server refused a DPoP-bound token and offers `Bearer` alone: this session
    /// binds no more tokens (see [`Inner::fall_back_to_bearer`]).
    bearer_fallback: AtomicBool,
}

/// Where the client of a login came from, which decides what a rejection of it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientOrigin {
    /// The user's client id, or a client ID metadata document URL.
    Configured,
    /// A registration kept from an earlier login.
    Cached,
    /// Registered for this login.
    Registered,
}

/// The client of a login and the listener on one of its redirect URIs.
struct ChosenClient {
    client: ClientRegistration,
    listener: CallbackListener,
    origin: ClientOrigin,
}

impl ChosenClient {
    fn new(
        client: ClientRegistration,
        listener: CallbackListener,
        origin: ClientOrigin,
    ) -> ChosenClient {
        ChosenClient {
            client,
            listener,
            origin,
        }
    }
}

/// How a flow came about.
#[derive(Default, Clone, Copy)]
pub(crate) struct LoginContext<'a> {
    /// The Bearer challenge of a 401 or 403, when one was seen.
    pub challenge: Option<&'a Challenge>,
    /// The MCP server rejected the cached access token: do not trust its expiry, and look at
    /// its resource metadata again (it may have moved to another authorization server).
    pub rejected: bool,
    /// A 403 `insufficient_scope`: authorize again with the union of the scopes.
    pub step_up: bool,
    /// The token schemes the 401 or 403 offered, when one was seen.
    pub offered: Option<Offered>,
}

impl<'a> LoginContext<'a> {
    /// After a 401: the token was rejected.
    pub(crate) fn unauthorized(challenge: Option<&'a Challenge>) -> LoginContext<'a> {
        LoginContext {
            challenge,
            rejected: true,
            step_up: false,
            offered: None,
        }
    }

    /// With the token schemes the response's challenges offered.
    pub(crate) fn offering(self, offered: Option<Offered>) -> LoginContext<'a> {
        LoginContext { offered, ..self }
    }

    /// After a 403 `insufficient_scope`: more scope is needed.
    pub(crate) fn step_up(challenge: Option<&'a Challenge>) -> LoginContext<'a> {
        LoginContext {
            step_up: true,
            ..LoginContext::unauthorized(challenge)
        }
    }
}

impl Inner {
    /// A session's flow state, nothing requested yet.
    pub(crate) fn new(
        server_url: Url,
        config: Config,
        store: Arc<dyn TokenStore>,
        agent: ureq::Agent,
        flow: Flow,
        rules: Arc<AddressRules>,
    ) -> Inner {
        Inner {
            server_url,
            config,
            store,
            agent,
            rules,
            state: Mutex::new(State {
                tokens: None,
                served: None,
                dpop: None,
            }),
            flow: Mutex::new(flow),
            waiting: Mutex::new(None),
            bearer_fallback: AtomicBool::new(false),
        }
    }

    /// The agent OAuth requests go through.
    pub(crate) fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// Where tokens and clients are kept.
    pub(crate) fn store(&self) -> &dyn TokenStore {
        &*self.store
    }

    /// The MCP server URL.
    pub(crate) fn server_url(&self) -> &Url {
        &self.server_url
    }

    /// The in-memory state, for a moment; never held across I/O of the flow.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The right to run a flow (refresh or login) in this process; held for its length.
    fn flow(&self) -> MutexGuard<'_, Flow> {
        // A panic inside a hook must not make the session unusable.
        self.flow.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the front end and the log about a step.
    fn progress(&self, event: Progress) {
        super::progress::report(self.config.progress.as_ref(), event);
    }

    /// When this session binds tokens now: as configured, or never after a fallback.
    fn policy(&self) -> Policy {
        if self.bearer_fallback.load(Ordering::SeqCst) {
            Policy::Never
        } else {
            self.config.dpop
        }
    }

    /// After the MCP server answered 401 offering `offered`: when the token it refused is
    /// DPoP-bound and it offers `Bearer` alone, the session gets Bearer tokens from now on,
    /// unless it was told to bind ([`SessionBuilder::dpop`](crate::SessionBuilder::dpop)).
    /// Returns whether it falls back now (once per session; a Bearer token refused in turn
    /// is an error, not another login).
    pub(crate) fn fall_back_to_bearer(&self, offered: Option<Offered>) -> bool {
        let bound = self.stored_tokens().is_some_and(|t| t.tokens.is_dpop());
        if !bound
            || self.config.dpop != Policy::Auto
            || !offered.is_some_and(Offered::bearer_only)
            || self.bearer_fallback.swap(true, Ordering::SeqCst)
        {
            return false;
        }
        log::warn!(
            "the MCP server refused a DPoP-bound token and takes Bearer tokens only: logging in \
             again for a Bearer token"
        );
        true
    }

    /// See [`Session::access_token`](crate::Session::access_token).
    pub(crate) fn access_token(&self) -> Result<Presented> {
        if let Some(token) = self.cached_fresh() {
            return Ok(token);
        }
        let mut flow = self.flow();
        self.login_if_needed(&mut flow, &LoginContext::default())
    }

    /// See [`Session::clear`](crate::Session::clear).
    pub(crate) fn clear(&self) -> Result<()> {
        self.forget()
    }

    /// Forgets this server's tokens, in memory and on disk; tokens another identity obtained
    /// stay.
    fn forget(&self) -> Result<()> {
        {
            let mut state = self.state();
            state.tokens = None;
            state.served = None;
        }
        if let Ok(Some(other)) = self.store.load_tokens(&self.server_url)
            && !self.is_ours(&other)
        {
            log::info!("the cached tokens belong to another identity; leaving them");
            return Ok(());
        }
        self.store.clear(&self.server_url)
    }

    /// See [`Session::logout`](crate::Session::logout).
    pub(crate) fn logout(&self) -> Result<Logout> {
        let _flow = self.flow();
        let _lock = self.cache_lock();
        let mut report = Logout::default();
        if let Some(stored) = self.stored_tokens() {
            report.had_tokens = true;
            match (&stored.revocation_endpoint, self.client_for(&stored)) {
                (Some(endpoint), Some(client)) => {
                    let tokens = [
                        (
                            stored.tokens.refresh_token.as_ref(),
                            TokenTypeHint::RefreshToken,
                        ),
                        (
                            Some(&stored.tokens.access_token),
                            TokenTypeHint::AccessToken,
                        ),
                    ];
                    for (token, hint) in tokens {
                        let Some(token) = token else { continue };
                        if let Err(e) = self.check_named(endpoint, Step::Revocation) {
                            report.errors.push(e);
                            break;
                        }
                        let request = RevocationRequest {
                            revocation_endpoint: endpoint,
                            token,
                            hint,
                            client: &client,
                        };
                        match revoke(&self.agent, &request) {
                            Ok(()) => report.revoked.push(hint),
                            Err(e) => report.errors.push(e),
                        }
                    }
                }
                (None, _) => log::info!("{} has no revocation endpoint", printable(&stored.issuer)),
                (Some(_), None) => {
                    log::warn!("the client of these tokens is unknown; not revoking")
                }
            }
        }
        self.forget()?;
        Ok(report)
    }

    /// See [`Session::cancel_login`](crate::Session::cancel_login).
    pub(crate) fn cancel_login(&self) -> bool {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.as_ref().is_some_and(Canceller::cancel)
    }

    /// The cached access token when it is fresh: no flow lock, no cache lock, no request.
    fn cached_fresh(&self) -> Option<Presented> {
        self.stored_tokens().and_then(|stored| self.fresh(&stored))
    }

    /// Token check → refresh, without a browser: `Ok(None)` when only a login would help.
    /// What the bearer middleware uses.
    pub(crate) fn cached_token(&self) -> Result<Option<Presented>> {
        if let Some(token) = self.cached_fresh() {
            return Ok(Some(token));
        }
        if self.stored_tokens().is_none() {
            return Ok(None);
        }
        let _flow = self.flow();
        let _lock = self.cache_lock();
        match self.stored_tokens() {
            Some(stored) => self.fresh_or_refreshed(stored, &LoginContext::default(), None),
            None => Ok(None),
        }
    }

    /// Token check → refresh → login, under the flow lock. The rest runs under the cache
    /// entry's cross-process lock, re-reading the cache first: another thread or process may
    /// have refreshed or logged in meanwhile.
    fn login_if_needed(&self, flow: &mut Flow, ctx: &LoginContext<'_>) -> Result<Presented> {
        if let Some(token) = self.cached_fresh() {
            return Ok(token);
        }
        let _lock = self.cache_lock();
        if let Some(stored) = self.stored_tokens()
            && let Some(token) = self.fresh_or_refreshed(stored, ctx, None)?
        {
            return Ok(token);
        }
        self.full_login(flow, ctx, None)
    }

    /// Logs in whatever the cache holds, under the lock.
    pub(crate) fn forced_login(&self) -> Result<Presented> {
        let mut flow = self.flow();
        let _lock = self.cache_lock();
        self.full_login(&mut flow, &LoginContext::default(), None)
    }

    /// Refreshes now, even a fresh token, with what the cache holds (its token endpoint and
    /// client: no discovery); logs in when there is nothing to refresh or the grant is gone.
    pub(crate) fn refresh_now(&self) -> Result<Presented> {
        let mut flow = self.flow();
        let _lock = self.cache_lock();
        let ctx = LoginContext::unauthorized(None);
        if let Some(stored) = self.stored_tokens()
            && let Some(token) = self.fresh_or_refreshed(stored, &ctx, None)?
        {
            return Ok(token);
        }
        self.full_login(&mut flow, &ctx, None)
    }

    /// After a 401 or 403: the resource metadata again, then refresh or login.
    pub(crate) fn reauthorize(&self, ctx: &LoginContext<'_>) -> Result<Presented> {
        let mut flow = self.flow();
        let _lock = self.cache_lock();
        // Another thread or process may have replaced the rejected token already.
        if !ctx.step_up
            && let Some(stored) = self.stored_tokens()
            && self
                .state()
                .served
                .is_some_and(|served| served != fingerprint(&stored.tokens.access_token))
            && let Some(token) = self.fresh(&stored)
        {
            return Ok(token);
        }
        let prm = self.discover_resource(ctx)?;
        if !ctx.step_up
            && let Some(stored) = self.stored_tokens()
            && let Some(token) = self.fresh_or_refreshed(stored, ctx, prm.as_ref())?
        {
            return Ok(token);
        }
        self.full_login(&mut flow, ctx, Some(prm))
    }

    /// The stored access token when it is not close to expiry.
    fn fresh(&self, stored: &StoredTokens) -> Option<Presented> {
        let tokens = &stored.tokens;
        if !tokens.is_fresh(unix_now(), tokens.refresh_margin(EXPIRY_MARGIN))
            || !binding::suits(self.policy(), tokens.is_dpop(), None)
        {
            return None;
        }
        let dpop = self.binding(stored).map_err(|e| log::warn!("{e}")).ok()?;
        log::debug!("token check: cached token for {} is valid", self.server_url);
        self.state().served = Some(fingerprint(&tokens.access_token));
        Some(Presented {
            token: tokens.access_token.clone(),
            dpop,
        })
    }

    /// The DPoP key `stored`'s tokens are bound to, `None` for Bearer tokens. The session's
    /// key when it is that one (keeping the nonces servers gave), else the stored key read
    /// and made the session's.
    fn binding(&self, stored: &StoredTokens) -> Result<Option<Arc<Dpop>>> {
        if !stored.tokens.is_dpop() {
            return Ok(None);
        }
        let step = Step::TokenCheck;
        let key = stored.dpop_key.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Storage,
                step,
                "the cached tokens are DPoP-bound but their key is missing",
            )
        })?;
        let mut state = self.state();
        if let Some(dpop) = &state.dpop
            && dpop.persisted_key().is_some_and(|k| {
                crate::secret::constant_time_eq(k.secret().as_bytes(), key.secret().as_bytes())
            })
        {
            return Ok(Some(Arc::clone(dpop)));
        }
        let dpop = Arc::new(Dpop::new(SigningKey::from_persisted(key, step).map_err(
            |e| {
                Error::new(
                    ErrorKind::Storage,
                    step,
                    "the cached DPoP key is not readable",
                )
                .with_source(e)
            },
        )?));
        state.dpop = Some(Arc::clone(&dpop));
        Ok(Some(dpop))
    }

    /// The DPoP key of a new login at the server of `metadata`: the session's (a new one the
    /// first time) where the tokens are to be bound (see [`binding::binds`]); `resource` is
    /// what the resource metadata says of DPoP, which the schemes a 401 offered outweigh.
    fn login_dpop(
        &self,
        metadata: &AuthServerMetadata,
        resource: ResourceDpop,
        ctx: &LoginContext<'_>,
    ) -> Result<Option<Arc<Dpop>>> {
        let resource = match ctx.offered {
            Some(_) => ResourceDpop::of(None, ctx.offered),
            None => resource,
        };
        let binds = binding::binds(self.policy(), metadata.supports_dpop("ES256"), resource)
            .map_err(|e| e.with_url(&self.server_url))?;
        if !binds {
            return Ok(None);
        }
        let mut state = self.state();
        if let Some(dpop) = &state.dpop {
            return Ok(Some(Arc::clone(dpop)));
        }
        let dpop = Arc::new(Dpop::generate()?);
        state.dpop = Some(Arc::clone(&dpop));
        Ok(Some(dpop))
    }

    /// What new tokens are stored with: the key they are bound to, when they are.
    fn bound_key(tokens: &TokenSet, dpop: Option<&Arc<Dpop>>) -> Option<Secret> {
        dpop.filter(|_| tokens.is_dpop())
            .and_then(|d| d.persisted_key().cloned())
    }

    /// The cross-process lock of this server's cache entry, held until dropped. Waits as
    /// long as another process's login may take. Without it (a read-only cache, say) the flow
    /// goes on unlocked: this process still gets its token.
    fn cache_lock(&self) -> Option<CacheLock> {
        let wait = self.config.callback_timeout + LOCK_WAIT_MARGIN;
        match self.store.lock(&self.server_url, wait) {
            Ok(lock) => Some(lock),
            Err(e) => {
                log::warn!("going on without the cache lock: {e}");
                None
            }
        }
    }

    /// The stored access token when fresh, else a refreshed one; `Ok(None)` when neither (no
    /// refresh token, the grant rejected, the server moved to another authorization server,
    /// or the challenge asks for scopes the grant lacks).
    fn fresh_or_refreshed(
        &self,
        stored: StoredTokens,
        ctx: &LoginContext<'_>,
        prm: Option<&ResourceMetadata>,
    ) -> Result<Option<Presented>> {
        if !ctx.rejected
            && let Some(token) = self.fresh(&stored)
        {
            return Ok(Some(token));
        }
        // A refresh keeps the tokens' binding: of no use when it is the wrong one.
        if !binding::suits(self.policy(), stored.tokens.is_dpop(), ctx.offered) {
            if stored.tokens.is_dpop() {
                log::warn!("the cached tokens are DPoP-bound; logging in for a Bearer token");
            } else {
                log::warn!("the MCP server takes DPoP-bound tokens only; logging in for one");
            }
            return Ok(None);
        }
        if let Some(prm) = prm
            && !prm.authorization_servers.contains(&stored.issuer)
        {
            log::info!(
                "the resource now names authorization server {}; logging in there",
                printable(&prm.authorization_servers[0])
            );
            return Ok(None);
        }
        let more_scope = ctx
            .challenge
            .and_then(Challenge::scope)
            .is_some_and(|c| !stored.scopes().contains_all(&Scopes::parse(c)));
        let Some(refresh_token) = stored.tokens.refresh_token.as_ref().filter(|_| !more_scope)
        else {
            return Ok(None);
        };
        // Without the client that obtained the grant there is nothing to refresh with.
        let Some(client) = self.client_for(&stored) else {
            log::info!("the client that obtained the tokens is no longer known; logging in again");
            return Ok(None);
        };
        let dpop = match self.binding(&stored) {
            Ok(dpop) => dpop,
            Err(e) => {
                log::info!("{e}; logging in again");
                return Ok(None);
            }
        };
        // The cache is a file others may have written: its endpoint passes the rules too.
        self.check_named(&stored.token_endpoint, Step::Refresh)?;
        self.progress(Progress::Refreshing {
            token_endpoint: stored.token_endpoint.clone(),
        });
        let held = self.config.critical.hold();
        let (earlier, marked) = self.mark_refresh(refresh_token);
        let refreshed = token::refresh(
            &self.agent,
            &RefreshRequest {
                token_endpoint: &stored.token_endpoint,
                refresh_token,
                client: &client,
                resource: stored.resource.as_deref(),
                dpop: dpop.as_deref(),
            },
        );
        // Stored before anything else is done with them: a rotated refresh token lost here
        // costs the grant.
        let refreshed = refreshed.map(|tokens| self.save(stored.clone().with_tokens(tokens), dpop));
        // Without an answer (the connection failed or timed out after the request may have
        // reached the server) the refresh did not finish either: the mark stays.
        let unanswered = refreshed
            .as_ref()
            .is_err_and(|e| matches!(e.kind(), ErrorKind::Transport | ErrorKind::Timeout));
        if marked
            && !unanswered
            && let Err(e) = self.store.save_refresh_mark(&self.server_url, None)
        {
            log::debug!("{e}");
        }
        drop(held);
        match refreshed {
            Ok(presented) => Ok(Some(presented)),
            Err(e) if e.needs_reauthorization() || e.is_invalid_client() => {
                if e.needs_reauthorization()
                    && let Some(earlier) = earlier
                {
                    log::warn!(
                        "the refresh token was refused after an earlier refresh with it (started \
                         {} s ago) did not finish: its process was probably stopped once the \
                         authorization server had replaced the refresh token, and the grant \
                         is gone; a new login is needed",
                        unix_now().saturating_sub(earlier.started)
                    );
                }
                log::info!("token refresh: {e}; logging in again");
                if e.is_invalid_client() {
                    self.forget_client(&stored.issuer);
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Records, before a refresh request presenting `refresh_token` leaves, that it began
    /// (see [`RefreshMark`]); removed once an answer is handled, so only a refresh cut off in
    /// between, or left without an answer, leaves it. Returns the mark an earlier, unfinished
    /// refresh with the same token left (it explains a refusal: the server had probably
    /// rotated the token when that process stopped), and whether this one was recorded.
    fn mark_refresh(&self, refresh_token: &Secret) -> (Option<RefreshMark>, bool) {
        let earlier = self
            .store
            .load_refresh_mark(&self.server_url)
            .unwrap_or_else(|e| {
                log::debug!("{e}");
                None
            })
            .filter(|m| m.presented(refresh_token));
        let mark = earlier
            .clone()
            .unwrap_or_else(|| RefreshMark::new(refresh_token, unix_now()));
        let marked = match self.store.save_refresh_mark(&self.server_url, Some(&mark)) {
            Ok(()) => true,
            Err(e) => {
                log::debug!("the refresh is not recorded as begun: {e}");
                false
            }
        };
        (earlier, marked)
    }

    /// The stored tokens of this server: the cache file, else what this process holds. Tokens
    /// another identity obtained (see [`is_ours`](Self::is_ours)) are not this session's.
    fn stored_tokens(&self) -> Option<StoredTokens> {
        let held = || self.state().tokens.clone();
        match self.store.load_tokens(&self.server_url) {
            Ok(Some(t)) if self.is_ours(&t) => return Some(t),
            Ok(Some(_)) => {
                log::debug!("the cached tokens of this server belong to another grant or client");
            }
            Ok(None) => {}
            Err(e) => {
                log::warn!("ignoring the cached tokens: {e}");
                // What this process holds is whole: put it back.
                if let Some(t) = held()
                    && let Err(e) = self.store.save_tokens(&self.server_url, &t)
                {
                    log::warn!("the tokens are not cached: {e}");
                }
            }
        }
        held()
    }

    /// Whether `stored` was obtained the way this session obtains tokens: by its grant and,
    /// for a grant without a browser, by its configured client. A service and a person
    /// sharing a cache directory must not get each other's tokens.
    fn is_ours(&self, stored: &StoredTokens) -> bool {
        let grant = &self.config.grant;
        let stored_grant = stored.grant.as_deref();
        // A person's tokens serve either personal login (`None`: files of earlier versions).
        let personal = |g: Option<&str>| {
            g.is_none_or(|g| {
                [Grant::AuthorizationCode.name(), Grant::DeviceCode.name()].contains(&g)
            })
        };
        if grant.is_personal() {
            return personal(stored_grant);
        }
        if stored_grant != Some(grant.name()) {
            return false;
        }
        match &self.config.client.client_id {
            None => true,
            Some(id) => *id == stored.client_id,
        }
    }

    /// The client that obtained `stored`: the configured one, or the cached registration.
    fn client_for(&self, stored: &StoredTokens) -> Option<ClientRegistration> {
        let configured =
            self.config
                .client
                .issued(&stored.issuer, &stored.client_id, stored.auth_method);
        if configured.is_some() {
            return configured;
        }
        self.stored_client(&stored.issuer)
            .filter(|c| c.client_id == stored.client_id)
    }

    /// The client registration cached for `issuer`, unless unreadable or its secret expired.
    fn stored_client(&self, issuer: &str) -> Option<ClientRegistration> {
        self.store
            .load_client(issuer)
            .unwrap_or_else(|e| {
                log::warn!("ignoring the cached client: {e}");
                None
            })
            .filter(|c| !c.secret_expired(unix_now()))
    }

    fn forget_client(&self, issuer: &str) {
        if let Err(e) = self.store.remove_client(issuer) {
            log::warn!("{e}");
        }
    }

    /// Discovery → client → browser → exchange → storage; once more with a new registration
    /// when a cached client is rejected. `prm` is the resource metadata when already looked up.
    fn full_login(
        &self,
        flow: &mut Flow,
        ctx: &LoginContext<'_>,
        prm: Option<Option<ResourceMetadata>>,
    ) -> Result<Presented> {
        if self.config.grant.is_headless() {
            self.warn_if_foreign();
            return self.grant_login(ctx, prm);
        }
        // The browser and the device logins need a person.
        if !self.config.interactive {
            return Err(Error::new(
                ErrorKind::LoginRequired,
                Step::Authorization,
                "no usable token is cached or could be refreshed, and this session does not \
                 start a login",
            )
            .with_url(&self.server_url));
        }
        self.warn_if_foreign();
        let prm = match prm {
            Some(prm) => prm,
            None => self.discover_resource(ctx)?,
        };
        let device = matches!(self.config.grant, Grant::DeviceCode);
        let kind = if device {
            LoginKind::Device
        } else {
            LoginKind::Browser
        };
        let Discovered {
            metadata,
            resource,
            scopes_supported: prm_scopes,
            dpop: resource_dpop,
        } = self.discover_server(prm, kind, ctx)?;
        let dpop = self.login_dpop(&metadata, resource_dpop, ctx)?;
        self.warn_omitted_resource(&resource);
        let challenged = ctx.challenge.and_then(Challenge::scope);
        let mut scopes = select_scopes(&ScopeSources {
            configured: self.config.scopes.as_ref(),
            challenged,
            resource_supported: prm_scopes.as_deref(),
            server_supported: metadata.scopes_supported.as_deref(),
        });
        if ctx.step_up {
            let before = self.stored_tokens().map(|t| t.scopes()).unwrap_or_default();
            scopes = Some(step_up_scopes(scopes, &before, challenged));
        }
        let scopes = scopes.as_ref();
        if device {
            let (client, origin) = self.device_client(&metadata, scopes, true)?;
            let login = Login {
                metadata: &metadata,
                resource: &resource,
                scopes,
                dpop: dpop.as_ref(),
            };
            return match self.device_authorize(flow, &login, &client) {
                Err(e) if e.is_invalid_client() => {
                    self.stale_client(e, origin, &metadata.issuer)?;
                    let (client, _) = self.device_client(&metadata, scopes, false)?;
                    self.device_authorize(flow, &login, &client)
                }
                other => other,
            };
        }
        let chosen = self.choose_client(&metadata, scopes, &resource, true)?;
        let origin = chosen.origin;
        let login = Login {
            metadata: &metadata,
            resource: &resource,
            scopes,
            dpop: dpop.as_ref(),
        };
        match self.authorize(flow, &login, chosen) {
            Err(e) if e.is_invalid_client() => {
                self.stale_client(e, origin, &metadata.issuer)?;
                let chosen = self.choose_client(&metadata, scopes, &resource, false)?;
                self.authorize(flow, &login, chosen)
            }
            other => other,
        }
    }

    /// After the authorization server rejected the client of a login: `Ok` (try once more,
    /// with a new registration) when it was a registration kept from an earlier login, which
    /// the server may have forgotten (servers with in-memory client stores lose them on
    /// restart); else the error. A client registered moments ago or configured by the user
    /// would fail the same way again.
    fn stale_client(&self, e: Error, origin: ClientOrigin, issuer: &str) -> Result<()> {
        match origin {
            ClientOrigin::Cached => {
                log::info!("{e}; the cached client is not accepted any more: registering anew");
                self.forget_client(issuer);
                Ok(())
            }
            ClientOrigin::Registered => Err(e.prefix_message(
                "the authorization server rejected the client it registered moments ago",
            )),
            ClientOrigin::Configured => {
                Err(e.prefix_message("the authorization server rejected the configured client"))
            }
        }
    }

    /// The client of a device login: the configured one, the cached registration when it has
    /// the device grant (unless `reuse_client` is false), or a new registration for it.
    fn device_client(
        &self,
        metadata: &AuthServerMetadata,
        scopes: Option<&Scopes>,
        reuse_client: bool,
    ) -> Result<(ClientRegistration, ClientOrigin)> {
        if let Some(client) = self.config.client.for_server(metadata) {
            return Ok((client, ClientOrigin::Configured));
        }
        let cached = self
            .stored_client(&metadata.issuer)
            .filter(ClientRegistration::allows_device_flow);
        if reuse_client && let Some(client) = cached {
            return Ok((client, ClientOrigin::Cached));
        }
        let client = self.register_client(metadata, scopes, None)?;
        Ok((client, ClientOrigin::Registered))
    }

    /// Device authorization → the device step → polling → storage (RFC 8628).
    fn device_authorize(
        &self,
        flow: &mut Flow,
        login: &Login<'_>,
        client: &ClientRegistration,
    ) -> Result<Presented> {
        let Login {
            metadata,
            resource,
            scopes,
            dpop,
        } = *login;
        let endpoint = metadata
            .device_authorization_endpoint
            .as_deref()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    Step::AuthServerDiscovery,
                    format!(
                        "authorization server {} offers no device login (no \
                         device_authorization_endpoint)",
                        printable(&metadata.issuer)
                    ),
                )
            })?;
        let device = request_device_authorization(
            &self.agent,
            &DeviceRequest {
                endpoint,
                client,
                scope: scopes,
                resource: self.resource_param(resource),
            },
        )?;
        let lifetime = Duration::from_secs(device.expires_in).min(self.config.callback_timeout);
        let step = DeviceStep {
            user_code: device.user_code.clone(),
            verification_uri: device.verification_uri.clone(),
            verification_uri_complete: device.verification_uri_complete.clone(),
            deadline: Instant::now() + lifetime,
        };
        let hook = flow.device_hook.as_mut().ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                Step::Authorization,
                "a device login needs a hook that shows the code (SessionBuilder::device_login)",
            )
        })?;
        hook(&step);
        self.progress(Progress::WaitingForDevice {
            verification_uri: step.verification_uri.clone(),
        });
        let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
        let waiting = Waiting::start(
            &self.waiting,
            Canceller::new(move || cancel.send(()).is_ok()),
        );
        let polled = poll_for_tokens_held(
            &self.agent,
            &DevicePoll {
                token_endpoint: &metadata.token_endpoint,
                client,
                device_code: &device.device_code,
                resource: self.resource_param(resource),
                dpop: dpop.map(|d| &**d),
                interval: device.interval,
                deadline: step.deadline,
                cancel: &cancelled,
            },
            || self.config.critical.hold(),
        );
        drop(waiting);
        let (tokens, held) = polled?;
        let record = self.record(metadata, resource, scopes, client, tokens, dpop);
        let presented = self.save(record, dpop.cloned());
        drop(held);
        Ok(presented)
    }

    /// Protected resource metadata: the challenge's `resource_metadata` first.
    fn discover_resource(&self, ctx: &LoginContext<'_>) -> Result<Option<ResourceMetadata>> {
        let hint = ctx
            .challenge
            .and_then(Challenge::resource_metadata)
            .and_then(|u| Url::parse(u).ok());
        if let Some(hint) = &hint {
            self.rules.check_url(hint, Step::ResourceDiscovery)?;
        }
        discover_resource_metadata(&self.agent, &self.server_url, hint.as_ref())
    }

    /// Checks a URL a server named against the session's address rules.
    fn check_named(&self, url: &str, step: Step) -> Result<()> {
        self.rules
            .check_url(&crate::address::parse_endpoint(url, step)?, step)
    }

    /// Every endpoint of the metadata passes the address rules; with `browser`, there must
    /// be an authorization endpoint.
    fn check_endpoints(&self, metadata: &AuthServerMetadata, browser: bool) -> Result<()> {
        let step = Step::AuthServerDiscovery;
        if browser && metadata.authorization_endpoint.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidResponse,
                step,
                format!(
                    "authorization server {} has no authorization_endpoint for a browser login",
                    printable(&metadata.issuer)
                ),
            ));
        }
        if !metadata.authorization_endpoint.is_empty() {
            let authorize = crate::address::parse_endpoint(&metadata.authorization_endpoint, step)?;
            self.rules.check_browser_url(&authorize, step)?;
        }
        let optional = [
            &metadata.registration_endpoint,
            &metadata.revocation_endpoint,
            &metadata.device_authorization_endpoint,
        ];
        std::iter::once(&metadata.token_endpoint)
            .chain(optional.into_iter().flatten())
            .try_for_each(|endpoint| self.check_named(endpoint, step))
    }

    /// Authorization server metadata (or the 2025-03-26 fallback) for the resource metadata,
    /// with what the login needs of it: of several authorization servers, the first whose
    /// metadata can be read and that offers what `kind` needs (PKCE S256 and a browser login
    /// for the browser; a client for the persons' logins: a configured one, one registered
    /// before, or dynamic registration).
    fn discover_server(
        &self,
        prm: Option<ResourceMetadata>,
        kind: LoginKind,
        ctx: &LoginContext<'_>,
    ) -> Result<Discovered> {
        let Some(prm) = prm else {
            let origin = self.server_url.origin().ascii_serialization();
            self.progress(Progress::NoResourceMetadata { origin });
            let metadata = match discovery::discover_legacy_auth_server_metadata(
                &self.agent,
                &self.server_url,
            )? {
                Some(metadata) => metadata,
                None => {
                    // No metadata at all: the 2025-03-26 default endpoints, for a server
                    // that asks for a token. One that does not is no OAuth server.
                    if !ctx.rejected && ctx.challenge.is_none() {
                        self.require_token_asked()?;
                    }
                    discovery::fallback_auth_server_metadata(&self.server_url)
                }
            };
            self.check_server(&metadata, kind)?;
            return Ok(Discovered {
                metadata,
                resource: canonical_resource(&self.server_url),
                scopes_supported: None,
                dpop: ResourceDpop::default(),
            });
        };
        let dpop = ResourceDpop::of(Some(&prm), None);
        let mut refusals: Vec<(&str, Error)> = Vec::new();
        let several = prm.authorization_servers.len() > 1;
        for issuer in &prm.authorization_servers {
            self.progress(Progress::AuthorizationServer {
                issuer: issuer.clone(),
            });
            match self.usable_server(issuer, kind) {
                Ok(metadata) => {
                    if several {
                        log::info!(
                            "authorization server {} chosen, of {}",
                            printable(issuer),
                            prm.authorization_servers.len()
                        );
                    }
                    return Ok(Discovered {
                        metadata,
                        resource: prm.resource,
                        scopes_supported: prm.scopes_supported,
                        dpop,
                    });
                }
                Err(e) => {
                    if several {
                        self.progress(Progress::ServerSkipped {
                            issuer: issuer.clone(),
                            reason: e.to_string(),
                        });
                    }
                    refusals.push((issuer, e));
                }
            }
        }
        // One server: its own error. Several: the first one's, naming the others'.
        let mut refusals = refusals.into_iter();
        let (issuer, first) = refusals
            .next()
            .expect("the metadata names an authorization server");
        let rest: Vec<String> = refusals
            .map(|(issuer, e)| format!("{}: {e}", printable(issuer)))
            .collect();
        if rest.is_empty() {
            return Err(first);
        }
        Err(first.prefix_message(&format!(
            "none of the {} authorization servers of the resource can be used ({}); {}",
            rest.len() + 1,
            rest.join("; "),
            printable(issuer)
        )))
    }

    /// Refuses a server that has no OAuth metadata of any kind and does not ask for a token
    /// either (an MCP request without one is not answered 401): it offers no OAuth for MCP,
    /// and a registration at its default `/register` would only fail more obscurely.
    fn require_token_asked(&self) -> Result<()> {
        let step = Step::ResourceDiscovery;
        let ping = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "ping"});
        let answer = crate::http::send(
            &self.agent,
            &self.server_url,
            crate::http::Body::Json(&ping),
            &[],
            step,
        )?;
        if answer.status == 401 {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::InvalidResponse,
            step,
            format!(
                "this server does not offer OAuth for MCP: it has no protected resource metadata \
                 (RFC 9728) and no authorization server metadata (RFC 8414), and answers an MCP \
                 request without a token with HTTP {} instead of 401",
                answer.status
            ),
        )
        .with_url(&self.server_url))
    }

    /// The metadata of `issuer`, when it can be read and offers what a `kind` login needs.
    fn usable_server(&self, issuer: &str, kind: LoginKind) -> Result<AuthServerMetadata> {
        self.check_named(issuer, Step::AuthServerDiscovery)?;
        let metadata = discover_auth_server_metadata(&self.agent, issuer)?.ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidResponse,
                Step::AuthServerDiscovery,
                format!(
                    "no metadata found for authorization server {}",
                    printable(issuer)
                ),
            )
        })?;
        self.check_server(&metadata, kind)?;
        Ok(metadata)
    }

    /// Checks an authorization server's metadata for a `kind` login: its endpoints pass the
    /// address rules; the browser needs PKCE S256 and a browser grant; a person's login needs
    /// a client there.
    fn check_server(&self, metadata: &AuthServerMetadata, kind: LoginKind) -> Result<()> {
        self.progress(Progress::ServerMetadata {
            issuer: metadata.issuer.clone(),
        });
        let browser = kind == LoginKind::Browser;
        self.check_endpoints(metadata, browser)?;
        if browser {
            metadata.require_s256()?;
            refuse_headless_only(metadata)?;
        }
        let has_client = self.config.client.for_server(metadata).is_some()
            || metadata.registration_endpoint.is_some()
            || self.stored_client(&metadata.issuer).is_some();
        if kind != LoginKind::Grant && !has_client {
            return Err(no_registration(metadata));
        }
        Ok(())
    }

    /// Browser → callback → exchange → storage, with a chosen client and its listener.
    fn authorize(
        &self,
        flow: &mut Flow,
        login: &Login<'_>,
        chosen: ChosenClient,
    ) -> Result<Presented> {
        let Login {
            metadata,
            resource,
            scopes,
            dpop,
        } = *login;
        let ChosenClient {
            client,
            mut listener,
            ..
        } = chosen;
        let verifier = PkceVerifier::generate()?;
        let state_value = crate::secret::random_token(32, Step::Authorization)?;
        let redirect_uri = listener.redirect_uri().to_string();
        let url = build_authorization_url(&AuthorizationRequest {
            authorization_endpoint: &metadata.authorization_endpoint,
            client_id: &client.client_id,
            redirect_uri: &redirect_uri,
            scope: scopes,
            state: &state_value,
            code_challenge: &verifier.challenge(),
            resource: self.resource_param(resource),
            extra: &self.config.authorize_params,
        })?;
        let launch_url = listener.launch_url(&url)?;
        let timeout = self.config.callback_timeout;
        let step = BrowserStep::new(
            url,
            launch_url,
            listener.redirect_uri().clone(),
            Instant::now() + timeout,
            listener.paster(),
        );
        self.progress(Progress::WaitingForBrowser {
            redirect_uri: listener.redirect_uri().clone(),
        });
        match flow.hook.as_mut() {
            Some(hook) => hook(&step),
            None => open_browser(&step.launch_url)?,
        }
        let waiting = Waiting::start(&self.waiting, listener.canceller());
        let code = listener.wait(
            &CallbackExpectation {
                state: &state_value,
                issuer: &metadata.issuer,
                iss_required: metadata.authorization_response_iss_parameter_supported,
            },
            step.remaining(),
        );
        drop(waiting);
        let code = code?;
        self.progress(Progress::Exchanging);
        let held = self.config.critical.hold();
        let tokens = token::exchange_code(
            &self.agent,
            &CodeExchange {
                token_endpoint: &metadata.token_endpoint,
                code: &code,
                verifier: &verifier,
                redirect_uri: &redirect_uri,
                client: &client,
                resource: self.resource_param(resource),
                dpop: dpop.map(|d| &**d),
            },
        )?;
        let record = self.record(metadata, resource, scopes, &client, tokens, dpop);
        let presented = self.save(record, dpop.cloned());
        drop(held);
        Ok(presented)
    }

    /// The RFC 8707 `resource` to send, unless the session leaves it out (MCP authorization
    /// requires it; some authorization servers refuse it, Microsoft Entra ID with
    /// AADSTS9010010).
    fn resource_param<'a>(&self, resource: &'a str) -> Option<&'a str> {
        (!self.config.omit_resource).then_some(resource)
    }

    /// Says, once per login, that the tokens will not be bound to the MCP server.
    fn warn_omitted_resource(&self, resource: &str) {
        if self.config.omit_resource {
            log::warn!(
                "leaving out the resource parameter as configured: the tokens are not bound to \
                 {} (RFC 8707; the MCP specification requires it)",
                printable(resource)
            );
        }
    }

    /// What is stored of new tokens.
    fn record(
        &self,
        metadata: &AuthServerMetadata,
        resource: &str,
        scopes: Option<&Scopes>,
        client: &ClientRegistration,
        tokens: TokenSet,
        dpop: Option<&Arc<Dpop>>,
    ) -> StoredTokens {
        StoredTokens {
            version: FORMAT_VERSION,
            server_url: canonical_resource(&self.server_url),
            issuer: metadata.issuer.clone(),
            token_endpoint: metadata.token_endpoint.clone(),
            revocation_endpoint: metadata.revocation_endpoint.clone(),
            resource: self.resource_param(resource).map(str::to_owned),
            requested_scope: scopes.map(ToString::to_string),
            client_id: client.client_id.clone(),
            auth_method: client.auth_method,
            grant: Some(self.config.grant.name().to_owned()),
            dpop_key: Self::bound_key(&tokens, dpop),
            tokens,
        }
    }

    /// A login without a browser: discovery → the configured client → the grant (client
    /// credentials, JWT bearer, or token exchange at the identity provider then JWT bearer)
    /// → storage. Nothing is bound or opened; a rejected grant is not tried again (a workload
    /// identity token the server refuses would be refused again).
    fn grant_login(
        &self,
        ctx: &LoginContext<'_>,
        prm: Option<Option<ResourceMetadata>>,
    ) -> Result<Presented> {
        let step = Step::Grant;
        let prm = match prm {
            Some(prm) => prm,
            None => self.discover_resource(ctx)?,
        };
        let Discovered {
            metadata,
            resource,
            scopes_supported: prm_scopes,
            dpop: resource_dpop,
        } = self.discover_server(prm, LoginKind::Grant, ctx)?;
        self.warn_omitted_resource(&resource);
        // No `offline_access`: these grants run again instead of refreshing (RFC 6749 §4.4.3).
        let scopes = select_scopes(&ScopeSources {
            configured: self.config.scopes.as_ref(),
            challenged: ctx.challenge.and_then(Challenge::scope),
            resource_supported: prm_scopes.as_deref(),
            server_supported: None,
        });
        let client = match (&self.config.grant, self.config.client.for_server(&metadata)) {
            (_, Some(client)) => client,
            // A JWT bearer assertion may be the only credential (RFC 7523 §3.1).
            (Grant::JwtBearer(_), None) => {
                ClientRegistration::configured(&metadata.issuer, "", None, AuthMethod::None)
            }
            (_, None) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    step,
                    "this grant needs a configured client (SessionBuilder::client_id)",
                ));
            }
        };
        let dpop = self.login_dpop(&metadata, resource_dpop, ctx)?;
        let request = GrantRequest {
            token_endpoint: &metadata.token_endpoint,
            client: &client,
            scope: scopes.as_ref(),
            resource: self.resource_param(&resource),
            dpop: dpop.as_deref(),
        };
        self.progress(Progress::Granting {
            token_endpoint: metadata.token_endpoint.clone(),
        });
        let held = self.config.critical.hold();
        let tokens = match &self.config.grant {
            Grant::ClientCredentials => grant::client_credentials(&self.agent, &request)?,
            Grant::JwtBearer(assertion) => {
                grant::jwt_bearer(&self.agent, &request, &assertion.read(step)?)?
            }
            Grant::IdentityAssertion(ia) => {
                let idp_client = ia.idp_client.clone().unwrap_or_else(|| {
                    ClientRegistration::configured("", "", None, AuthMethod::None)
                });
                log::info!(
                    "token exchange at the identity provider {}",
                    printable(&ia.idp_token_endpoint)
                );
                let id_jag = grant::exchange_for_id_jag(
                    &self.agent,
                    &TokenExchange {
                        token_endpoint: &ia.idp_token_endpoint,
                        client: &idp_client,
                        subject_token: &ia.id_token.read(Step::TokenExchange)?,
                        audience: &metadata.issuer,
                        resource: &resource,
                        scope: scopes.as_ref(),
                    },
                )?;
                grant::jwt_bearer(&self.agent, &request, &id_jag.token)?
            }
            Grant::AuthorizationCode | Grant::DeviceCode => {
                return Err(Error::new(
                    ErrorKind::Config,
                    step,
                    "a person's login has no form without a person",
                ));
            }
        };
        let presented = self.save(
            self.record(
                &metadata,
                &resource,
                scopes.as_ref(),
                &client,
                tokens,
                dpop.as_ref(),
            ),
            dpop,
        );
        drop(held);
        Ok(presented)
    }

    /// The client for this login and a listener on a redirect URI it may use: the configured
    /// client, a client ID metadata document, the cached registration (on a port it
    /// registered, unless `reuse_client` is false), or a new registration.
    fn choose_client(
        &self,
        metadata: &AuthServerMetadata,
        scopes: Option<&Scopes>,
        resource: &str,
        reuse_client: bool,
    ) -> Result<ChosenClient> {
        let host = self.config.callback_host;
        let path = &self.config.callback_path;
        let bind = |port: Option<u16>| CallbackListener::bind_at(host, port.unwrap_or(0), path);
        if let Some(client) = self.config.client.for_server(metadata) {
            let listener = bind(self.config.callback_port)?;
            return Ok(ChosenClient::new(
                client,
                listener,
                ClientOrigin::Configured,
            ));
        }
        if reuse_client && let Some(found) = self.cached_client(metadata) {
            match self.check_cached_client(metadata, &found, scopes, resource) {
                ClientCheck::Unknown(status) => {
                    log::info!(
                        "authorization server {} does not know the cached client {} any more \
                         (its authorization endpoint answered HTTP {status}): registering anew",
                        printable(&metadata.issuer),
                        printable(&found.client.client_id)
                    );
                    self.forget_client(&metadata.issuer);
                }
                ClientCheck::Known | ClientCheck::Unsure => return Ok(found),
            }
        }
        let listener = bind(self.config.callback_port)?;
        let redirect_uri = listener.redirect_uri().to_string();
        let client = self.register_client(metadata, scopes, Some(&redirect_uri))?;
        Ok(ChosenClient::new(
            client,
            listener,
            ClientOrigin::Registered,
        ))
    }

    /// A new dynamic registration (RFC 7591) with `redirect_uri`, or for the device grant
    /// without one; cached for later logins.
    fn register_client(
        &self,
        metadata: &AuthServerMetadata,
        scopes: Option<&Scopes>,
        redirect_uri: Option<&str>,
    ) -> Result<ClientRegistration> {
        let endpoint = metadata
            .registration_endpoint
            .as_deref()
            .ok_or_else(|| no_registration(metadata))?;
        let request = RegistrationRequest {
            client_name: &self.config.client_name,
            redirect_uri,
            auth_method: choose_auth_method(metadata, false),
            scope: scopes,
            extra: self.config.client_metadata.as_ref(),
        };
        let client = match register(&self.agent, endpoint, &metadata.issuer, &request) {
            // Some servers accept only their own scopes at registration (resource scopes live
            // elsewhere); `scope` is optional there (RFC 7591 §2), so try once without it.
            Err(e)
                if e.oauth_code() == Some(OAuthErrorCode::InvalidClientMetadata)
                    && scopes.is_some() =>
            {
                log::info!("{e}; registering again without a scope");
                let request = RegistrationRequest {
                    scope: None,
                    ..request
                };
                register(&self.agent, endpoint, &metadata.issuer, &request)?
            }
            other => other?,
        };
        self.progress(Progress::Registered {
            client_id: client.client_id.clone(),
            issuer: metadata.issuer.clone(),
        });
        if let Err(e) = self.store.save_client(&client) {
            log::warn!("the client registration is not cached: {e}");
        }
        Ok(client)
    }

    /// Whether the authorization server still knows a cached client, asked before the browser
    /// is sent there: servers that keep clients in memory forget them when they restart, and
    /// answer the browser with an error page instead of a redirect (RFC 6749 §4.1.2.1), so the
    /// login would wait for nothing.
    fn check_cached_client(
        &self,
        metadata: &AuthServerMetadata,
        found: &ChosenClient,
        scopes: Option<&Scopes>,
        resource: &str,
    ) -> ClientCheck {
        let step = Step::Authorization;
        let (Ok(verifier), Ok(state)) = (
            PkceVerifier::generate(),
            crate::secret::random_token(32, step),
        ) else {
            return ClientCheck::Unsure;
        };
        let redirect_uri = found.listener.redirect_uri().to_string();
        check_client(
            &self.agent,
            &AuthorizationRequest {
                authorization_endpoint: &metadata.authorization_endpoint,
                client_id: &found.client.client_id,
                redirect_uri: &redirect_uri,
                scope: scopes,
                state: &state,
                code_challenge: &verifier.challenge(),
                resource: self.resource_param(resource),
                extra: &self.config.authorize_params,
            },
        )
    }

    /// The cached registration for this issuer with a listener on one of its registered
    /// loopback redirect URIs, when one of them can be bound.
    fn cached_client(&self, metadata: &AuthServerMetadata) -> Option<ChosenClient> {
        let client = self.stored_client(&metadata.issuer)?;
        let host = self.config.callback_host;
        client.redirect_uris.iter().find_map(|uri| {
            let uri = Url::parse(uri).ok()?;
            let port = uri.port()?;
            if self.config.callback_port.is_some_and(|p| p != port) {
                return None;
            }
            let listener =
                CallbackListener::bind_at(host, port, &self.config.callback_path).ok()?;
            (listener.redirect_uri() == &uri)
                .then(|| ChosenClient::new(client.clone(), listener, ClientOrigin::Cached))
        })
    }

    /// Says, as a login starts, that its tokens will replace cached ones another identity
    /// obtained (a service and a person sharing a cache directory).
    fn warn_if_foreign(&self) {
        if let Ok(Some(other)) = self.store.load_tokens(&self.server_url)
            && !self.is_ours(&other)
        {
            log::warn!(
                "replacing the cached tokens another identity obtained for {} (a {} grant); \
                 give each identity its own cache directory to keep both",
                self.server_url,
                printable(other.grant.as_deref().unwrap_or("browser"))
            );
        }
    }

    /// Stores the tokens (keeping them in memory when the cache cannot be written) and returns
    /// the access token.
    /// Nothing comes between the answer and the write (see
    /// [`CriticalSection`](super::CriticalSection)): not even a look at what the write replaces.
    /// `dpop` is the key the tokens were requested with: the one they are bound to (not
    /// whatever key the session holds by now, which another thread may have changed).
    fn save(&self, stored: StoredTokens, dpop: Option<Arc<Dpop>>) -> Presented {
        if let Err(e) = self.store.save_tokens(&self.server_url, &stored) {
            log::warn!("the tokens are not cached: {e}");
        }
        let access = stored.tokens.access_token.clone();
        let mut state = self.state();
        state.served = Some(fingerprint(&access));
        let dpop = dpop.filter(|_| stored.dpop_key.is_some());
        state.tokens = Some(stored);
        Presented {
            token: access,
            dpop,
        }
    }
}
