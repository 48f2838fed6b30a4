//! The session's DPoP key (RFC 9449): the one its cached tokens are bound to, or a new one for
//! a login that binds, kept with the nonces servers gave for it; and when this session binds
//! at all, which a refusal by the MCP server can end (see [`binding`](super::binding)).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use url::Url;

use crate::discovery::AuthServerMetadata;
use crate::dpop::Dpop;
use crate::error::{Error, ErrorKind, Result, Step};
use crate::jwt::SigningKey;
use crate::secret::constant_time_eq;
use crate::storage::StoredTokens;

use super::binding::{self, Offered, Policy, ResourceDpop};

/// The session's DPoP setting and key.
pub(super) struct DpopKeys {
    /// As configured ([`SessionBuilder::dpop`](crate::SessionBuilder::dpop)).
    configured: Policy,
    /// The MCP server refused a DPoP-bound token and offers `Bearer` alone: this session
    /// binds no more tokens (see [`fall_back`](Self::fall_back)).
    fallback: AtomicBool,
    /// Generated at the first login that binds tokens, or read from the tokens it bound.
    key: Mutex<Option<Arc<Dpop>>>,
}

impl DpopKeys {
    pub(super) fn new(configured: Policy) -> DpopKeys {
        DpopKeys {
            configured,
            fallback: AtomicBool::new(false),
            key: Mutex::new(None),
        }
    }

    fn key(&self) -> MutexGuard<'_, Option<Arc<Dpop>>> {
        self.key.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When this session binds tokens now: as configured, or never after a fallback.
    pub(super) fn policy(&self) -> Policy {
        if self.fallback.load(Ordering::SeqCst) {
            Policy::Never
        } else {
            self.configured
        }
    }

    /// After the MCP server answered 401 offering `offered` to a token that is `bound` or not:
    /// when it was bound and the server offers `Bearer` alone, the session gets Bearer tokens
    /// from now on, unless it was told to bind. Returns whether it falls back now (once per
    /// session; a Bearer token refused in turn is an error, not another login).
    pub(super) fn fall_back(&self, bound: bool, offered: Option<Offered>) -> bool {
        if !bound
            || self.configured != Policy::Auto
            || !offered.is_some_and(Offered::bearer_only)
            || self.fallback.swap(true, Ordering::SeqCst)
        {
            return false;
        }
        log::warn!(
            "the MCP server refused a DPoP-bound token and takes Bearer tokens only: logging in \
             again for a Bearer token"
        );
        true
    }

    /// The DPoP key `stored`'s tokens are bound to, `None` for Bearer tokens. The session's
    /// key when it is that one (keeping the nonces servers gave), else the stored key read
    /// and made the session's.
    pub(super) fn of_stored(&self, stored: &StoredTokens) -> Result<Option<Arc<Dpop>>> {
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
        let mut held = self.key();
        if let Some(dpop) = &*held
            && dpop
                .persisted_key()
                .is_some_and(|k| constant_time_eq(k.secret().as_bytes(), key.secret().as_bytes()))
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
        *held = Some(Arc::clone(&dpop));
        Ok(Some(dpop))
    }

    /// The DPoP key of a new login at the server of `metadata` for the MCP server at
    /// `server_url`: the session's (a new one the first time) where the tokens are to be bound
    /// (see [`binding::binds`]); `resource` is what the resource metadata says of DPoP, which
    /// the schemes a 401 `offered` outweigh.
    pub(super) fn for_login(
        &self,
        metadata: &AuthServerMetadata,
        resource: ResourceDpop,
        offered: Option<Offered>,
        server_url: &Url,
    ) -> Result<Option<Arc<Dpop>>> {
        let resource = match offered {
            Some(_) => ResourceDpop::of(None, offered),
            None => resource,
        };
        let binds = binding::binds(self.policy(), metadata.supports_dpop("ES256"), resource)
            .map_err(|e| e.with_url(server_url))?;
        if !binds {
            return Ok(None);
        }
        let mut held = self.key();
        if let Some(dpop) = &*held {
            return Ok(Some(Arc::clone(dpop)));
        }
        let dpop = Arc::new(Dpop::generate()?);
        *held = Some(Arc::clone(&dpop));
        Ok(Some(dpop))
    }
}
