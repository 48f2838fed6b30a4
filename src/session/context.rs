//! What a flow starts from and what a login settles: how the flow came about (a 401, a 403,
//! nothing), what the session asks the authorization server for, a login's server, resource,
//! scopes and key, and the slot through which another thread cancels a login that waits.

use std::sync::{Arc, Mutex};

use crate::authorize::AuthorizationRequest;
use crate::callback::Canceller;
use crate::client::ClientRegistration;
use crate::discovery::AuthServerMetadata;
use crate::dpop::Dpop;
use crate::error::printable;
use crate::scope::Scopes;
use crate::token::{ClientEndpoint, TokenSet};
use crate::www_authenticate::Challenge;

use super::binding::Offered;
use super::cache::{Cache, Presented};
use super::net::Net;

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
    /// Asked for a new token although the cached one may be fresh ([`Session::refresh`]):
    /// nothing was rejected.
    ///
    /// [`Session::refresh`]: super::Session::refresh
    pub forced: bool,
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
            forced: false,
            offered: None,
        }
    }

    /// A new token wanted now, with no response of the MCP server's behind it.
    pub(crate) fn forced() -> LoginContext<'a> {
        LoginContext {
            forced: true,
            ..LoginContext::default()
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

    /// The scope the challenge asks for, when it names one.
    pub(super) fn challenged_scope(&self) -> Option<&'a str> {
        self.challenge.and_then(Challenge::scope)
    }
}

/// What the session asks the authorization server for, beside the scopes a login settles.
pub(super) struct Requested {
    /// The configured scopes.
    pub(super) scopes: Option<Scopes>,
    /// More authorization request parameters a provider wants.
    pub(super) authorize_params: Vec<(String, String)>,
    /// Leave out the RFC 8707 `resource` parameter, for servers that refuse it.
    pub(super) omit_resource: bool,
}

impl Requested {
    /// The RFC 8707 `resource` to send, unless the session leaves it out (MCP authorization
    /// requires it; some authorization servers refuse it, Microsoft Entra ID with
    /// AADSTS9010010).
    pub(super) fn resource_param<'a>(&self, resource: &'a str) -> Option<&'a str> {
        (!self.omit_resource).then_some(resource)
    }

    /// The authorization request of `login` for `client_id`, redirected to `redirect_uri`,
    /// with its `state` and PKCE `challenge`: the browser's, and the one that checks a cached
    /// client first.
    pub(super) fn authorization_request<'b>(
        &'b self,
        login: &'b Login<'_>,
        client_id: &'b str,
        redirect_uri: &'b str,
        state: &'b str,
        challenge: &'b str,
    ) -> AuthorizationRequest<'b> {
        AuthorizationRequest::new(
            &login.metadata.authorization_endpoint,
            client_id,
            redirect_uri,
            state,
            challenge,
        )
        .scope(login.scopes)
        .resource(self.resource_param(login.resource))
        .extra(&self.authorize_params)
    }

    /// Says, once per login, that the tokens will not be bound to the MCP server.
    pub(super) fn warn_omitted_resource(&self, resource: &str) {
        if self.omit_resource {
            log::warn!(
                "leaving out the resource parameter as configured: the tokens are not bound to \
                 {} (RFC 8707; the MCP specification requires it)",
                printable(resource)
            );
        }
    }
}

/// A login's settled parts: where, for what, and with which DPoP key.
#[derive(Clone, Copy)]
pub(super) struct Login<'a> {
    pub(super) metadata: &'a AuthServerMetadata,
    pub(super) resource: &'a str,
    pub(super) scopes: Option<&'a Scopes>,
    /// The key the tokens are to be bound to, when they are.
    pub(super) dpop: Option<&'a Arc<Dpop>>,
}

impl Login<'_> {
    /// The token endpoint of this login's server for `client`, with the key the tokens are
    /// to be bound to.
    pub(super) fn token_endpoint<'b>(
        &'b self,
        client: &'b ClientRegistration,
    ) -> ClientEndpoint<'b> {
        ClientEndpoint::new(&self.metadata.token_endpoint, client).dpop(self.dpop.map(|d| &**d))
    }

    /// Stores the `tokens` this login obtained with `client` for `resource` (the parameter
    /// as sent), bound to its key when they are.
    pub(super) fn keep(
        &self,
        cache: &Cache,
        resource: Option<&str>,
        client: &ClientRegistration,
        tokens: TokenSet,
    ) -> Presented {
        let record = cache.record(
            self.metadata,
            resource,
            self.scopes,
            client,
            tokens,
            self.dpop,
        );
        cache.save(record, self.dpop.cloned())
    }
}

/// Where the login waiting for a person registers what cancels it.
pub(super) type WaitSlot = Mutex<Option<Canceller>>;

/// The login waiting for a person, registered so that another thread can cancel it;
/// unregistered on drop.
pub(super) struct Waiting<'a>(&'a WaitSlot);

impl<'a> Waiting<'a> {
    pub(super) fn start(slot: &'a WaitSlot, canceller: Canceller) -> Waiting<'a> {
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(canceller);
        Waiting(slot)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// How a login waits for a person: until the timeout, cancellable through the slot.
#[derive(Clone, Copy)]
pub(super) struct Wait<'a> {
    pub(super) slot: &'a WaitSlot,
    /// How long the person has (the callback timeout).
    pub(super) timeout: std::time::Duration,
}

/// What every login reaches: the network, the cache, and what the session asks for.
#[derive(Clone, Copy)]
pub(super) struct Parts<'a> {
    pub(super) net: &'a Net,
    pub(super) cache: &'a Cache,
    pub(super) requested: &'a Requested,
}
