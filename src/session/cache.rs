//! The session's view of the token cache: this server's entry and which of its tokens are
//! this session's, the registrations kept per authorization server, what this process holds
//! when the cache cannot be written, the refresh marks, and the cross-process lock.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use url::Url;

use crate::client::{ClientRegistration, ConfiguredClient};
use crate::discovery::{AuthServerMetadata, canonical_resource};
use crate::dpop::Dpop;
use crate::error::{Result, printable};
use crate::grant::Grant;
use crate::local::unix_now;
use crate::scope::Scopes;
use crate::secret::Secret;
use crate::storage::{CacheLock, FORMAT_VERSION, RefreshMark, StoredTokens, TokenStore};
use crate::token::TokenSet;

use super::critical::{self, Critical};

/// An access token as it is presented to the MCP server, with the DPoP key it is bound to
/// when it is.
#[derive(Clone)]
pub(crate) struct Presented {
    pub(crate) token: Secret,
    pub(crate) dpop: Option<Arc<Dpop>>,
}

/// What this process holds beside the cache, locked for a moment at a time.
#[derive(Default)]
struct Held {
    /// The last tokens this process obtained, for when the cache cannot be written.
    tokens: Option<StoredTokens>,
    /// A fingerprint of the last access token handed out, to tell after a 401 whether the
    /// cache already holds a newer one.
    served: Option<[u8; 32]>,
}

/// SHA-256 of a token: compared, never shown.
fn fingerprint(token: &Secret) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.secret().as_bytes()).into()
}

/// Whose tokens a session takes: those obtained by its grant and, for a grant without a
/// browser, by its configured client. A service and a person sharing a cache directory must
/// not get each other's tokens.
pub(super) struct Owner {
    pub(super) grant: Arc<Grant>,
    pub(super) client: Arc<ConfiguredClient>,
}

/// One MCP server's entry of the token cache, as this session sees it.
pub(super) struct Cache {
    server_url: Url,
    store: Arc<dyn TokenStore>,
    owner: Owner,
    /// How long to wait for another process's lock: as long as its login may take.
    lock_wait: Duration,
    /// Told when a token request's answer must reach the store.
    critical: Critical,
    held: Mutex<Held>,
}

impl Cache {
    /// The entry of `server_url` in `store`, for a session of `owner`.
    pub(super) fn new(
        (server_url, store): (Url, Arc<dyn TokenStore>),
        owner: Owner,
        lock_wait: Duration,
        critical: Critical,
    ) -> Cache {
        let held = Mutex::default();
        Cache {
            server_url,
            store,
            owner,
            lock_wait,
            critical,
            held,
        }
    }

    /// The MCP server URL the entry is kept under.
    pub(super) fn server_url(&self) -> &Url {
        &self.server_url
    }

    /// Where tokens and clients are kept.
    pub(super) fn store(&self) -> &dyn TokenStore {
        &*self.store
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the time from a token request until its answer is stored (see
    /// [`CriticalSection`](super::CriticalSection)); ends when dropped.
    pub(super) fn hold(&self) -> critical::Held {
        self.critical.hold()
    }

    /// The cross-process lock of this entry, held until dropped. Waits as long as another
    /// process's login may take. Without it (a read-only cache, say) the flow goes on
    /// unlocked: this process still gets its token.
    pub(super) fn lock(&self) -> Option<CacheLock> {
        match self.store.lock(&self.server_url, self.lock_wait) {
            Ok(lock) => Some(lock),
            Err(e) => {
                log::warn!("going on without the cache lock: {e:#}");
                None
            }
        }
    }

    /// The stored tokens of this server: the cache file, else what this process holds. Tokens
    /// another identity obtained (see [`is_ours`](Self::is_ours)) are not this session's.
    pub(super) fn stored(&self) -> Option<StoredTokens> {
        let held = || self.held().tokens.clone();
        match self.store.load_tokens(&self.server_url) {
            Ok(Some(t)) if self.is_ours(&t) => return Some(t),
            Ok(Some(_)) => {
                log::debug!("the cached tokens of this server belong to another grant or client");
            }
            Ok(None) => {}
            Err(e) => {
                log::warn!("ignoring the cached tokens: {e:#}");
                // What this process holds is whole: put it back.
                if let Some(t) = held()
                    && let Err(e) = self.store.save_tokens(&self.server_url, &t)
                {
                    log::warn!("the tokens are not cached: {e:#}");
                }
            }
        }
        held()
    }

    /// Whether `stored` was obtained the way this session obtains tokens (see [`Owner`]).
    pub(super) fn is_ours(&self, stored: &StoredTokens) -> bool {
        let stored_grant = stored.grant.as_deref();
        // A person's tokens serve either personal login (`None`: files of earlier versions).
        let personal = |g: Option<&str>| {
            g.is_none_or(|g| {
                [Grant::AuthorizationCode.name(), Grant::DeviceCode.name()].contains(&g)
            })
        };
        if self.owner.grant.is_personal() {
            return personal(stored_grant);
        }
        if stored_grant != Some(self.owner.grant.name()) {
            return false;
        }
        match &self.owner.client.client_id {
            None => true,
            Some(id) => *id == stored.client_id,
        }
    }

    /// The client that obtained `stored`: the configured one, or the cached registration.
    pub(super) fn client_for(&self, stored: &StoredTokens) -> Option<ClientRegistration> {
        let configured =
            self.owner
                .client
                .issued(&stored.issuer, &stored.client_id, stored.auth_method);
        if configured.is_some() {
            return configured;
        }
        self.client(&stored.issuer)
            .filter(|c| c.client_id == stored.client_id)
    }

    /// The client registration cached for `issuer`, unless unreadable or its secret expired.
    pub(super) fn client(&self, issuer: &str) -> Option<ClientRegistration> {
        self.store
            .load_client(issuer)
            .unwrap_or_else(|e| {
                log::warn!("ignoring the cached client: {e:#}");
                None
            })
            .filter(|c| !c.secret_expired(unix_now()))
    }

    /// Keeps a new registration for later logins.
    pub(super) fn keep_client(&self, client: &ClientRegistration) {
        if let Err(e) = self.store.save_client(client) {
            log::warn!("the client registration is not cached: {e:#}");
        }
    }

    /// Forgets the registration cached for `issuer`.
    pub(super) fn forget_client(&self, issuer: &str) {
        if let Err(e) = self.store.remove_client(issuer) {
            log::warn!("{e:#}");
        }
    }

    /// Records, before a refresh request presenting `refresh_token` leaves, that it began
    /// (see [`RefreshMark`]); removed by [`unmark_refresh`](Self::unmark_refresh) once an
    /// answer is handled, so only a refresh cut off in between, or left without an answer,
    /// leaves it. Returns the mark an earlier, unfinished refresh with the same token left
    /// (it explains a refusal: the server had probably rotated the token when that process
    /// stopped), and whether this one was recorded.
    pub(super) fn mark_refresh(&self, refresh_token: &Secret) -> (Option<RefreshMark>, bool) {
        let earlier = self
            .store
            .load_refresh_mark(&self.server_url)
            .unwrap_or_else(|e| {
                log::debug!("{e:#}");
                None
            })
            .filter(|m| m.presented(refresh_token));
        let mark = earlier
            .clone()
            .unwrap_or_else(|| RefreshMark::new(refresh_token, unix_now()));
        let marked = match self.store.save_refresh_mark(&self.server_url, Some(&mark)) {
            Ok(()) => true,
            Err(e) => {
                log::debug!("the refresh is not recorded as begun: {e:#}");
                false
            }
        };
        (earlier, marked)
    }

    /// Removes the mark of a refresh whose answer was handled.
    pub(super) fn unmark_refresh(&self) {
        if let Err(e) = self.store.save_refresh_mark(&self.server_url, None) {
            log::debug!("{e:#}");
        }
    }

    /// Notes that `access` is handed out now.
    pub(super) fn serve(&self, access: &Secret) {
        self.held().served = Some(fingerprint(access));
    }

    /// Whether `stored` holds another access token than the last one handed out: another
    /// thread or process replaced the one a server rejected.
    pub(super) fn replaced_since_served(&self, stored: &StoredTokens) -> bool {
        self.held()
            .served
            .is_some_and(|served| served != fingerprint(&stored.tokens.access_token))
    }

    /// What is stored of new tokens obtained at the server of `metadata` for `resource` (the
    /// parameter as sent, `None` when left out) by `client`, bound to `dpop` when they are.
    pub(super) fn record(
        &self,
        metadata: &AuthServerMetadata,
        resource: Option<&str>,
        scopes: Option<&Scopes>,
        client: &ClientRegistration,
        tokens: TokenSet,
        dpop: Option<&Arc<Dpop>>,
    ) -> StoredTokens {
        let dpop_key = dpop
            .filter(|_| tokens.is_dpop())
            .and_then(|d| d.persisted_key().cloned());
        StoredTokens {
            version: FORMAT_VERSION,
            server_url: canonical_resource(&self.server_url),
            issuer: metadata.issuer.clone(),
            token_endpoint: metadata.token_endpoint.clone(),
            revocation_endpoint: metadata.revocation_endpoint.clone(),
            resource: resource.map(str::to_owned),
            requested_scope: scopes.map(ToString::to_string),
            client_id: client.client_id.clone(),
            auth_method: client.auth_method,
            grant: Some(self.owner.grant.name().to_owned()),
            dpop_key,
            tokens,
        }
    }

    /// Stores the tokens (keeping them in memory when the cache cannot be written) and returns
    /// the access token.
    /// Nothing comes between the answer and the write (see
    /// [`CriticalSection`](super::CriticalSection)): not even a look at what the write replaces.
    /// `dpop` is the key the tokens were requested with: the one they are bound to (not
    /// whatever key the session holds by now, which another thread may have changed).
    pub(super) fn save(&self, stored: StoredTokens, dpop: Option<Arc<Dpop>>) -> Presented {
        if let Err(e) = self.store.save_tokens(&self.server_url, &stored) {
            log::warn!("the tokens are not cached: {e:#}");
        }
        let access = stored.tokens.access_token.clone();
        let mut held = self.held();
        held.served = Some(fingerprint(&access));
        let dpop = dpop.filter(|_| stored.dpop_key.is_some());
        held.tokens = Some(stored);
        Presented {
            token: access,
            dpop,
        }
    }

    /// Forgets this server's tokens, in memory and on disk; tokens another identity obtained
    /// stay.
    pub(super) fn forget(&self) -> Result<()> {
        {
            let mut held = self.held();
            held.tokens = None;
            held.served = None;
        }
        if let Ok(Some(other)) = self.store.load_tokens(&self.server_url)
            && !self.is_ours(&other)
        {
            log::info!("the cached tokens belong to another identity; leaving them");
            return Ok(());
        }
        self.store.clear(&self.server_url)
    }

    /// Says, as a login starts, that its tokens will replace cached ones another identity
    /// obtained (a service and a person sharing a cache directory).
    pub(super) fn warn_if_foreign(&self) {
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
}
