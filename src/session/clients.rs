//! The client of a login (MCP authorization's "Client registration"): the configured client
//! or client ID metadata document, a registration kept from an earlier login (checked at the
//! authorization endpoint first: servers forget clients when they restart), or a new dynamic
//! registration (RFC 7591); with a callback listener on a redirect URI the client may use.

use std::sync::Arc;

use url::Url;

use crate::authorize::{ClientCheck, check_client};
use crate::callback::{CallbackHost, CallbackListener};
use crate::client::{ClientRegistration, ConfiguredClient, choose_auth_method};
use crate::discovery::AuthServerMetadata;
use crate::error::{Error, ErrorKind, OAuthErrorCode, Result, Step, printable};
use crate::pkce::PkceVerifier;
use crate::registration::{RegistrationRequest, register};
use crate::scope::Scopes;

use super::cache::Cache;
use super::context::{Login, Requested};
use super::net::Net;
use super::progress::Progress;

/// Where the callback listener binds.
pub(super) struct CallbackPlace {
    pub(super) host: CallbackHost,
    /// A fixed port, else any free one (or one the cached client registered).
    pub(super) port: Option<u16>,
    /// The redirect URI's path (default [`CALLBACK_PATH`](crate::callback::CALLBACK_PATH)).
    pub(super) path: String,
}

impl CallbackPlace {
    fn bind(&self, port: Option<u16>) -> Result<CallbackListener> {
        CallbackListener::bind_at(self.host, port.unwrap_or(0), &self.path)
    }
}

/// Where the client of a login came from, which decides what a rejection of it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientOrigin {
    /// The user's client id, or a client ID metadata document URL.
    Configured,
    /// A registration kept from an earlier login.
    Cached,
    /// Registered for this login.
    Registered,
}

/// The client of a browser login and the listener on one of its redirect URIs.
pub(super) struct ChosenClient {
    pub(super) client: ClientRegistration,
    pub(super) listener: CallbackListener,
    pub(super) origin: ClientOrigin,
}

/// The error of a login at an authorization server without dynamic registration and with no
/// client configured or registered there.
pub(super) fn no_registration(metadata: &AuthServerMetadata) -> Error {
    Error::new(
        ErrorKind::Config,
        Step::Registration,
        format!(
            "authorization server {} offers no dynamic registration; configure a client_id",
            printable(&metadata.issuer)
        ),
    )
}

/// After the authorization server rejected the client of a login: `Ok` (try once more, with a
/// new registration) when it was a registration kept from an earlier login, which the server
/// may have forgotten (servers with in-memory client stores lose them on restart); else the
/// error. A client registered moments ago or configured by the user would fail the same way
/// again.
pub(super) fn stale_client(
    cache: &Cache,
    e: Error,
    origin: ClientOrigin,
    issuer: &str,
) -> Result<()> {
    match origin {
        ClientOrigin::Cached => {
            log::info!("{e:#}; the cached client is not accepted any more: registering anew");
            cache.forget_client(issuer);
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

/// The session's client settings.
pub(super) struct Clients {
    /// A pre-registered client or a client ID metadata document.
    pub(super) configured: Arc<ConfiguredClient>,
    /// The client name sent on registration.
    pub(super) name: String,
    /// More client metadata sent on registration.
    pub(super) metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub(super) callback: CallbackPlace,
}

impl Clients {
    /// Whether a person's login at the server of `metadata` has a client: a configured one,
    /// one registered before, or dynamic registration.
    pub(super) fn available(&self, cache: &Cache, metadata: &AuthServerMetadata) -> bool {
        self.configured.for_server(metadata).is_some()
            || metadata.registration_endpoint.is_some()
            || cache.client(&metadata.issuer).is_some()
    }

    /// The client for a browser login and a listener on a redirect URI it may use: the
    /// configured client, a client ID metadata document, the cached registration (on a port it
    /// registered, unless `reuse_client` is false), or a new registration. The cached client
    /// is checked at the authorization endpoint first, unless this is a `step_up` and it
    /// obtained the tokens the MCP server just took (a 403 for more scope says they are
    /// valid, so the server knows the client): a server counts every request to that
    /// endpoint, and a step-up must cost one.
    pub(super) fn for_browser(
        &self,
        (net, cache, requested): (&Net, &Cache, &Requested),
        login: &Login<'_>,
        step_up: bool,
        reuse_client: bool,
    ) -> Result<ChosenClient> {
        let metadata = login.metadata;
        if let Some(client) = self.configured.for_server(metadata) {
            return Ok(ChosenClient {
                client,
                listener: self.callback.bind(self.callback.port)?,
                origin: ClientOrigin::Configured,
            });
        }
        if reuse_client && let Some(found) = self.cached(cache, metadata) {
            let vouched = step_up
                && cache.stored().is_some_and(|t| {
                    t.issuer == metadata.issuer && t.client_id == found.client.client_id
                });
            if vouched {
                return Ok(found);
            }
            match check_cached(net, requested, login, &found) {
                ClientCheck::Unknown(status) => {
                    log::info!(
                        "authorization server {} does not know the cached client {} any more \
                         (its authorization endpoint answered HTTP {status}): registering anew",
                        printable(&metadata.issuer),
                        printable(&found.client.client_id)
                    );
                    cache.forget_client(&metadata.issuer);
                }
                ClientCheck::Known | ClientCheck::Unsure => return Ok(found),
            }
        }
        let listener = self.callback.bind(self.callback.port)?;
        let redirect_uri = listener.redirect_uri().to_string();
        let client = self.register(net, cache, metadata, login.scopes, Some(&redirect_uri))?;
        Ok(ChosenClient {
            client,
            listener,
            origin: ClientOrigin::Registered,
        })
    }

    /// The client of a device login: the configured one, the cached registration when it has
    /// the device grant (unless `reuse_client` is false), or a new registration for it.
    pub(super) fn for_device(
        &self,
        net: &Net,
        cache: &Cache,
        login: &Login<'_>,
        reuse_client: bool,
    ) -> Result<(ClientRegistration, ClientOrigin)> {
        let metadata = login.metadata;
        if let Some(client) = self.configured.for_server(metadata) {
            return Ok((client, ClientOrigin::Configured));
        }
        let cached = cache
            .client(&metadata.issuer)
            .filter(ClientRegistration::allows_device_flow);
        if reuse_client && let Some(client) = cached {
            return Ok((client, ClientOrigin::Cached));
        }
        let client = self.register(net, cache, metadata, login.scopes, None)?;
        Ok((client, ClientOrigin::Registered))
    }

    /// A new dynamic registration (RFC 7591) with `redirect_uri`, or for the device grant
    /// without one; cached for later logins.
    fn register(
        &self,
        net: &Net,
        cache: &Cache,
        metadata: &AuthServerMetadata,
        scopes: Option<&Scopes>,
        redirect_uri: Option<&str>,
    ) -> Result<ClientRegistration> {
        let endpoint = metadata
            .registration_endpoint
            .as_deref()
            .ok_or_else(|| no_registration(metadata))?;
        let request = RegistrationRequest::new(&self.name, choose_auth_method(metadata, false))
            .redirect_uri(redirect_uri)
            .scope(scopes)
            .extra(self.metadata.as_ref());
        let client = match register(net.agent(), endpoint, &metadata.issuer, &request) {
            // Some servers accept only their own scopes at registration (resource scopes live
            // elsewhere); `scope` is optional there (RFC 7591 §2), so try once without it.
            Err(e)
                if e.oauth_code() == Some(OAuthErrorCode::InvalidClientMetadata)
                    && scopes.is_some() =>
            {
                log::info!("{e:#}; registering again without a scope");
                let request = request.scope(None);
                register(net.agent(), endpoint, &metadata.issuer, &request)?
            }
            other => other?,
        };
        net.progress(Progress::Registered {
            client_id: client.client_id.clone(),
            issuer: metadata.issuer.clone(),
        });
        cache.keep_client(&client);
        Ok(client)
    }

    /// The cached registration for this issuer with a listener on one of its registered
    /// loopback redirect URIs, when one of them can be bound.
    fn cached(&self, cache: &Cache, metadata: &AuthServerMetadata) -> Option<ChosenClient> {
        let client = cache.client(&metadata.issuer)?;
        client.redirect_uris.iter().find_map(|uri| {
            let uri = Url::parse(uri).ok()?;
            let port = uri.port()?;
            if self.callback.port.is_some_and(|p| p != port) {
                return None;
            }
            let listener = self.callback.bind(Some(port)).ok()?;
            (listener.redirect_uri() == &uri).then(|| ChosenClient {
                client: client.clone(),
                listener,
                origin: ClientOrigin::Cached,
            })
        })
    }
}

/// Whether the authorization server still knows a cached client, asked before the browser is
/// sent there: servers that keep clients in memory forget them when they restart, and answer
/// the browser with an error page instead of a redirect (RFC 6749 §4.1.2.1), so the login
/// would wait for nothing.
fn check_cached(
    net: &Net,
    requested: &Requested,
    login: &Login<'_>,
    found: &ChosenClient,
) -> ClientCheck {
    let step = Step::Authorization;
    let (Ok(verifier), Ok(state)) = (
        PkceVerifier::generate(),
        crate::secret::random_token(32, step),
    ) else {
        return ClientCheck::Unsure;
    };
    let redirect_uri = found.listener.redirect_uri().to_string();
    let challenge = verifier.challenge();
    let request = requested.authorization_request(
        login,
        &found.client.client_id,
        &redirect_uri,
        &state,
        &challenge,
    );
    check_client(net.agent(), &request)
}
