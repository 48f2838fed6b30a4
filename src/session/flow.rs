//! The flow behind a [`Session`](crate::Session): token check → refresh → discovery → client →
//! loopback listener + browser → code exchange → storage, run only as far as needed, one flow
//! at a time in a process and, through the cache lock, across processes (MCP authorization;
//! the steps' own modules cite their RFCs).
//!
//! This file holds the entry points and the locks; each part of a flow lives in the module of
//! its concept, given what it needs: [`cache`](super::cache) (the cache entry and what this
//! process holds), [`keys`](super::keys) (the DPoP key), [`refresh`](super::refresh),
//! [`servers`](super::servers) (discovery), [`clients`](super::clients) (client choice and
//! registration), and the logins ([`browser_login`](super::browser_login),
//! [`device_login`](super::device_login), [`grant_login`](super::grant_login)).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use url::Url;

use crate::address::AddressRules;
use crate::browser::AuthorizeHook;
use crate::callback::{CallbackHost, Canceller};
use crate::client::ConfiguredClient;
use crate::device::DeviceHook;
use crate::discovery::ResourceMetadata;
use crate::error::{Error, ErrorKind, Result, Step, printable};
use crate::grant::Grant;
use crate::revocation::{RevocationRequest, TokenTypeHint, revoke};
use crate::scope::{ScopeSources, Scopes, select_scopes, step_up_scopes};
use crate::storage::TokenStore;
use crate::token::ClientEndpoint;

use super::binding::{self, Offered, Policy};
use super::cache::{Cache, Owner, Presented};
use super::clients::{CallbackPlace, Clients, stale_client};
use super::context::{Login, LoginContext, Parts, Requested, Wait, WaitSlot};
use super::keys::DpopKeys;
use super::net::Net;
use super::refresh::Refresher;
use super::servers::{Discovered, LoginKind, Servers};
use super::{browser_login, device_login, grant_login};

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

/// What one flow (a refresh or a login) at a time uses; locked for the flow's length, so a
/// login waiting for the browser holds up other flows of this session, never a caller whose
/// cached token is fresh.
pub(crate) struct Flow {
    /// Shows the browser step.
    pub(crate) hook: Option<AuthorizeHook>,
    /// Shows the device step.
    pub(crate) device_hook: Option<DeviceHook>,
}

/// The session's state, shared with the agent's middleware.
pub(crate) struct Inner {
    net: Net,
    cache: Cache,
    keys: DpopKeys,
    clients: Clients,
    requested: Requested,
    /// How tokens are obtained when there are none to use or refresh.
    grant: Arc<Grant>,
    /// Whether a person may be asked to log in.
    interactive: bool,
    callback_timeout: Duration,
    flow: Mutex<Flow>,
    /// What cancels the login waiting for a person, while one does.
    waiting: WaitSlot,
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
        let lock_wait = config.callback_timeout + LOCK_WAIT_MARGIN;
        // One copy of each, shared by the cache (whose entries they own) and the logins.
        let (grant, client) = (Arc::new(config.grant), Arc::new(config.client));
        Inner {
            net: Net::new(agent, rules, config.progress),
            cache: Cache::new(
                (server_url, store),
                Owner {
                    grant: Arc::clone(&grant),
                    client: Arc::clone(&client),
                },
                lock_wait,
                config.critical,
            ),
            keys: DpopKeys::new(config.dpop),
            clients: Clients {
                configured: client,
                name: config.client_name,
                metadata: config.client_metadata,
                callback: CallbackPlace {
                    host: config.callback_host,
                    port: config.callback_port,
                    path: config.callback_path,
                },
            },
            requested: Requested {
                scopes: config.scopes,
                authorize_params: config.authorize_params,
                omit_resource: config.omit_resource,
            },
            grant,
            interactive: config.interactive,
            callback_timeout: config.callback_timeout,
            flow: Mutex::new(flow),
            waiting: Mutex::new(None),
        }
    }

    /// The agent OAuth requests go through.
    pub(crate) fn agent(&self) -> &ureq::Agent {
        self.net.agent()
    }

    /// Where tokens and clients are kept.
    pub(crate) fn store(&self) -> &dyn TokenStore {
        self.cache.store()
    }

    /// The MCP server URL.
    pub(crate) fn server_url(&self) -> &Url {
        self.cache.server_url()
    }

    /// The right to run a flow (refresh or login) in this process; held for its length.
    fn flow(&self) -> MutexGuard<'_, Flow> {
        // A panic inside a hook must not make the session unusable.
        self.flow.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refresher(&self) -> Refresher<'_> {
        Refresher {
            net: &self.net,
            cache: &self.cache,
            keys: &self.keys,
        }
    }

    fn servers(&self) -> Servers<'_> {
        Servers {
            net: &self.net,
            server_url: self.server_url(),
            clients: &self.clients,
            cache: &self.cache,
        }
    }

    fn parts(&self) -> Parts<'_> {
        Parts {
            net: &self.net,
            cache: &self.cache,
            requested: &self.requested,
        }
    }

    fn wait(&self) -> Wait<'_> {
        Wait {
            slot: &self.waiting,
            timeout: self.callback_timeout,
        }
    }

    /// After the MCP server answered 401 offering `offered`: when the token it refused is
    /// DPoP-bound and it offers `Bearer` alone, the session gets Bearer tokens from now on,
    /// unless it was told to bind ([`SessionBuilder::dpop`](crate::SessionBuilder::dpop)).
    /// Returns whether it falls back now (once per session; a Bearer token refused in turn
    /// is an error, not another login).
    pub(crate) fn fall_back_to_bearer(&self, offered: Option<Offered>) -> bool {
        let bound = self.cache.stored().is_some_and(|t| t.tokens.is_dpop());
        self.keys.fall_back(bound, offered)
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
        self.cache.forget()
    }

    /// See [`Session::logout`](crate::Session::logout).
    pub(crate) fn logout(&self) -> Result<Logout> {
        let _flow = self.flow();
        let _lock = self.cache.lock();
        let mut report = Logout::default();
        if let Some(stored) = self.cache.stored() {
            report.had_tokens = true;
            match (&stored.revocation_endpoint, self.cache.client_for(&stored)) {
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
                        if let Err(e) = self.net.check_named(endpoint, Step::Revocation) {
                            report.errors.push(e);
                            break;
                        }
                        let request = RevocationRequest::new(
                            ClientEndpoint::new(endpoint, &client),
                            token,
                            hint,
                        );
                        match revoke(self.net.agent(), &request) {
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
        self.cache.forget()?;
        Ok(report)
    }

    /// See [`Session::cancel_login`](crate::Session::cancel_login).
    pub(crate) fn cancel_login(&self) -> bool {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.as_ref().is_some_and(Canceller::cancel)
    }

    /// The cached access token when it is fresh: no flow lock, no cache lock, no request.
    fn cached_fresh(&self) -> Option<Presented> {
        self.cache
            .stored()
            .and_then(|stored| self.refresher().fresh(&stored))
    }

    /// Token check → refresh, without a browser: `Ok(None)` when only a login would help.
    /// What the bearer middleware uses.
    pub(crate) fn cached_token(&self) -> Result<Option<Presented>> {
        if let Some(token) = self.cached_fresh() {
            return Ok(Some(token));
        }
        if self.cache.stored().is_none() {
            return Ok(None);
        }
        let _flow = self.flow();
        let _lock = self.cache.lock();
        match self.cache.stored() {
            Some(stored) => {
                self.refresher()
                    .fresh_or_refreshed(stored, &LoginContext::default(), None)
            }
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
        let _lock = self.cache.lock();
        if let Some(stored) = self.cache.stored()
            && let Some(token) = self.refresher().fresh_or_refreshed(stored, ctx, None)?
        {
            return Ok(token);
        }
        self.full_login(flow, ctx, None)
    }

    /// Logs in whatever the cache holds, under the lock.
    pub(crate) fn forced_login(&self) -> Result<Presented> {
        let mut flow = self.flow();
        let _lock = self.cache.lock();
        self.full_login(&mut flow, &LoginContext::default(), None)
    }

    /// Refreshes now, even a fresh token, with what the cache holds (its token endpoint and
    /// client: no discovery); logs in when there is nothing to refresh or the grant is gone.
    pub(crate) fn refresh_now(&self) -> Result<Presented> {
        let mut flow = self.flow();
        let _lock = self.cache.lock();
        let ctx = LoginContext::forced();
        if let Some(stored) = self.cache.stored()
            && let Some(token) = self.refresher().fresh_or_refreshed(stored, &ctx, None)?
        {
            return Ok(token);
        }
        self.full_login(&mut flow, &ctx, None)
    }

    /// After a 401 or 403: the resource metadata again, then refresh or login.
    pub(crate) fn reauthorize(&self, ctx: &LoginContext<'_>) -> Result<Presented> {
        let mut flow = self.flow();
        let _lock = self.cache.lock();
        // Another thread or process may have replaced the rejected token already.
        if !ctx.step_up
            && let Some(stored) = self.cache.stored()
            && self.cache.replaced_since_served(&stored)
            && let Some(token) = self.refresher().fresh(&stored)
        {
            return Ok(token);
        }
        let prm = self.servers().resource(ctx)?;
        if !ctx.step_up
            && let Some(stored) = self.cache.stored()
            && let Some(token) = self
                .refresher()
                .fresh_or_refreshed(stored, ctx, prm.as_ref())?
        {
            return Ok(token);
        }
        self.full_login(&mut flow, ctx, Some(prm))
    }

    /// Discovery → client → the person's login (browser or device) or the grant → storage;
    /// once more with a new registration when a cached client is rejected. `prm` is the
    /// resource metadata when already looked up.
    fn full_login(
        &self,
        flow: &mut Flow,
        ctx: &LoginContext<'_>,
        prm: Option<Option<ResourceMetadata>>,
    ) -> Result<Presented> {
        let kind = match *self.grant {
            Grant::DeviceCode => LoginKind::Device,
            ref grant if grant.is_headless() => LoginKind::Grant,
            _ => LoginKind::Browser,
        };
        // The browser and the device logins need a person.
        if kind != LoginKind::Grant && !self.interactive {
            return Err(Error::new(
                ErrorKind::LoginRequired,
                Step::Authorization,
                "no usable token is cached or could be refreshed, and this session does not \
                 start a login",
            )
            .with_url(self.server_url()));
        }
        self.cache.warn_if_foreign();
        let servers = self.servers();
        let prm = match prm {
            Some(prm) => prm,
            None => servers.resource(ctx)?,
        };
        let discovered = servers.choose(prm, kind, ctx)?;
        self.requested.warn_omitted_resource(&discovered.resource);
        let scopes = self.scopes(kind, &discovered, ctx);
        let metadata = &discovered.metadata;
        // A grant's client is settled before its key: without one there is no grant.
        let grant_client = match kind {
            LoginKind::Grant => Some(grant_login::client(
                &self.grant,
                &self.clients.configured,
                metadata,
            )?),
            _ => None,
        };
        let dpop =
            self.keys
                .for_login(metadata, discovered.dpop, ctx.offered, self.server_url())?;
        self.warn_rebinding(ctx);
        let login = Login {
            metadata,
            resource: &discovered.resource,
            scopes: scopes.as_ref(),
            dpop: dpop.as_ref(),
        };
        let (net, cache, parts, wait) = (&self.net, &self.cache, self.parts(), self.wait());
        if let Some(client) = grant_client {
            return grant_login::obtain(parts, &self.grant, &login, &client);
        }
        if kind == LoginKind::Device {
            let (client, origin) = self.clients.for_device(net, cache, &login, true)?;
            return match device_login::log_in(
                parts,
                flow.device_hook.as_mut(),
                wait,
                &login,
                &client,
            ) {
                Err(e) if e.is_invalid_client() => {
                    stale_client(cache, e, origin, &metadata.issuer)?;
                    let (client, _) = self.clients.for_device(net, cache, &login, false)?;
                    device_login::log_in(parts, flow.device_hook.as_mut(), wait, &login, &client)
                }
                other => other,
            };
        }
        let reach = (net, cache, &self.requested);
        let chosen = self.clients.for_browser(reach, &login, ctx.step_up, true)?;
        let origin = chosen.origin;
        match browser_login::log_in(parts, flow.hook.as_mut(), wait, &login, chosen) {
            Err(e) if e.is_invalid_client() => {
                stale_client(cache, e, origin, &metadata.issuer)?;
                let chosen = self
                    .clients
                    .for_browser(reach, &login, ctx.step_up, false)?;
                browser_login::log_in(parts, flow.hook.as_mut(), wait, &login, chosen)
            }
            other => other,
        }
    }

    /// Says why a login starts although tokens are cached, when that is their binding: said
    /// once the login is sure to go on (a session that cannot get tokens bound the way the
    /// MCP server needs stops before, with its own error).
    fn warn_rebinding(&self, ctx: &LoginContext<'_>) {
        let Some(stored) = self.cache.stored() else {
            return;
        };
        let bound = stored.tokens.is_dpop();
        if binding::suits(self.keys.policy(), bound, ctx.offered) {
            return;
        }
        if bound {
            log::warn!("the cached tokens are DPoP-bound; logging in for a Bearer token");
        } else {
            log::warn!("the MCP server takes DPoP-bound tokens only; logging in for one");
        }
    }

    /// The scopes a `kind` login asks for. A grant without a person asks for no
    /// `offline_access`: it runs again instead of refreshing (RFC 6749 §4.4.3); a step-up asks
    /// for the union of the scopes held and the scopes challenged.
    fn scopes(
        &self,
        kind: LoginKind,
        discovered: &Discovered,
        ctx: &LoginContext<'_>,
    ) -> Option<Scopes> {
        let person = kind != LoginKind::Grant;
        let challenged = ctx.challenged_scope();
        let sources = ScopeSources::default()
            .configured(self.requested.scopes.as_ref())
            .challenged(challenged)
            .resource_supported(discovered.scopes_supported.as_deref())
            .server_supported(
                discovered
                    .metadata
                    .scopes_supported
                    .as_deref()
                    .filter(|_| person),
            );
        let scopes = select_scopes(&sources);
        if person && ctx.step_up {
            let before = self.cache.stored().map(|t| t.scopes()).unwrap_or_default();
            return Some(step_up_scopes(scopes, &before, challenged));
        }
        scopes
    }
}
