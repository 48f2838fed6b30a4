//! Token check → refresh (RFC 6749 §6): the cached access token while it is fresh, else a
//! refresh with what the cache holds (its token endpoint and client: no discovery), recorded
//! before it leaves so that an interrupted one explains the refusal that follows.

use crate::discovery::ResourceMetadata;
use crate::error::{ErrorKind, Result, Step, printable};
use crate::local::unix_now;
use crate::scope::Scopes;
use crate::storage::StoredTokens;
use crate::token::{self, ClientEndpoint, RefreshRequest};

use super::binding;
use super::cache::{Cache, Presented};
use super::context::LoginContext;
use super::keys::DpopKeys;
use super::net::Net;
use super::progress::Progress;

/// A stored access token closer than this to its expiry is refreshed first (seconds).
pub const EXPIRY_MARGIN: u64 = 60;

/// What a token check and a refresh use.
pub(super) struct Refresher<'a> {
    pub(super) net: &'a Net,
    pub(super) cache: &'a Cache,
    pub(super) keys: &'a DpopKeys,
}

impl Refresher<'_> {
    /// The stored access token when it is not close to expiry and suits the session.
    pub(super) fn fresh(&self, stored: &StoredTokens) -> Option<Presented> {
        let tokens = &stored.tokens;
        if !tokens.is_fresh(unix_now(), tokens.refresh_margin(EXPIRY_MARGIN))
            || !binding::suits(self.keys.policy(), tokens.is_dpop(), None)
        {
            return None;
        }
        let dpop = self
            .keys
            .of_stored(stored)
            .map_err(|e| log::warn!("{e:#}"))
            .ok()?;
        log::debug!(
            "token check: cached token for {} is valid",
            self.cache.server_url()
        );
        self.cache.serve(&tokens.access_token);
        Some(Presented {
            token: tokens.access_token.clone(),
            dpop,
        })
    }

    /// The stored access token when fresh, else a refreshed one; `Ok(None)` when neither (no
    /// refresh token, the grant rejected, the server moved to another authorization server,
    /// or the challenge asks for scopes the grant lacks).
    pub(super) fn fresh_or_refreshed(
        &self,
        stored: StoredTokens,
        ctx: &LoginContext<'_>,
        prm: Option<&ResourceMetadata>,
    ) -> Result<Option<Presented>> {
        if !ctx.rejected
            && !ctx.forced
            && let Some(token) = self.fresh(&stored)
        {
            return Ok(Some(token));
        }
        // A refresh keeps the tokens' binding: of no use when it is the wrong one.
        if !binding::suits(self.keys.policy(), stored.tokens.is_dpop(), ctx.offered) {
            // Said by the login, once it is sure to start (see `Inner::full_login`).
            log::debug!("the cached tokens are not bound as this session needs");
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
            .challenged_scope()
            .is_some_and(|c| !stored.scopes().contains_all(&Scopes::parse(c)));
        let Some(refresh_token) = stored.tokens.refresh_token.as_ref().filter(|_| !more_scope)
        else {
            return Ok(None);
        };
        // Without the client that obtained the grant there is nothing to refresh with.
        let Some(client) = self.cache.client_for(&stored) else {
            log::info!("the client that obtained the tokens is no longer known; logging in again");
            return Ok(None);
        };
        let dpop = match self.keys.of_stored(&stored) {
            Ok(dpop) => dpop,
            Err(e) => {
                log::info!("{e:#}; logging in again");
                return Ok(None);
            }
        };
        // The cache is a file others may have written: its endpoint passes the rules too.
        self.net
            .check_named(&stored.token_endpoint, Step::Refresh)?;
        self.net.progress(Progress::Refreshing {
            token_endpoint: stored.token_endpoint.clone(),
        });
        let held = self.cache.hold();
        let (earlier, marked) = self.cache.mark_refresh(refresh_token);
        let endpoint = ClientEndpoint::new(&stored.token_endpoint, &client).dpop(dpop.as_deref());
        let request =
            RefreshRequest::new(endpoint, refresh_token).resource(stored.resource.as_deref());
        let refreshed = token::refresh(self.net.agent(), &request);
        // Stored before anything else is done with them: a rotated refresh token lost here
        // costs the grant.
        let refreshed =
            refreshed.map(|tokens| self.cache.save(stored.clone().with_tokens(tokens), dpop));
        // Without an answer (the connection failed or timed out after the request may have
        // reached the server) the refresh did not finish either: the mark stays.
        let unanswered = refreshed
            .as_ref()
            .is_err_and(|e| matches!(e.kind(), ErrorKind::Transport | ErrorKind::Timeout));
        if marked && !unanswered {
            self.cache.unmark_refresh();
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
                log::info!("token refresh: {e:#}; logging in again");
                if e.is_invalid_client() {
                    self.cache.forget_client(&stored.issuer);
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}
