//! Discovery for a login: the MCP server's protected resource metadata (RFC 9728; the
//! challenge's hint first), and of the authorization servers it names the first whose
//! metadata (RFC 8414 / OpenID) can be read and offers what the login needs; or, without
//! resource metadata, the 2025-03-26 fallback. Every endpoint a server names passes the
//! session's address rules before anything is sent there.

use url::Url;

use crate::discovery::{
    self, AuthServerMetadata, ResourceMetadata, canonical_resource, discover_auth_server_metadata,
    discover_resource_metadata,
};
use crate::error::{Error, ErrorKind, Result, Step, printable};
use crate::grant;
use crate::www_authenticate::Challenge;

use super::binding::ResourceDpop;
use super::cache::Cache;
use super::clients::{Clients, no_registration};
use super::context::LoginContext;
use super::net::Net;
use super::progress::Progress;

/// The kind of login discovery is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum LoginKind {
    /// Through the browser.
    Browser,
    /// With a code entered on another device (RFC 8628).
    Device,
    /// A grant without a browser.
    Grant,
}

/// What discovery found for a login.
pub(super) struct Discovered {
    /// The authorization server's metadata.
    pub(super) metadata: AuthServerMetadata,
    /// The resource indicator (RFC 8707).
    pub(super) resource: String,
    /// The resource metadata's `scopes_supported`.
    pub(super) scopes_supported: Option<Vec<String>>,
    /// What the resource metadata says of DPoP.
    pub(super) dpop: ResourceDpop,
}

/// What discovery uses: the network, the MCP server, and what tells whether a person's login
/// has a client at an authorization server.
pub(super) struct Servers<'a> {
    pub(super) net: &'a Net,
    pub(super) server_url: &'a Url,
    pub(super) clients: &'a Clients,
    pub(super) cache: &'a Cache,
}

impl Servers<'_> {
    /// Protected resource metadata: the challenge's `resource_metadata` first.
    pub(super) fn resource(&self, ctx: &LoginContext<'_>) -> Result<Option<ResourceMetadata>> {
        let hint = ctx
            .challenge
            .and_then(Challenge::resource_metadata)
            .and_then(|u| Url::parse(u).ok());
        if let Some(hint) = &hint {
            self.net.rules().check_url(hint, Step::ResourceDiscovery)?;
        }
        discover_resource_metadata(self.net.agent(), self.server_url, hint.as_ref())
    }

    /// Authorization server metadata (or the 2025-03-26 fallback) for the resource metadata,
    /// with what the login needs of it: of several authorization servers, the first whose
    /// metadata can be read and that offers what `kind` needs (PKCE S256 and a browser login
    /// for the browser; a client for the persons' logins: a configured one, one registered
    /// before, or dynamic registration).
    pub(super) fn choose(
        &self,
        prm: Option<ResourceMetadata>,
        kind: LoginKind,
        ctx: &LoginContext<'_>,
    ) -> Result<Discovered> {
        let Some(prm) = prm else {
            return self.without_resource_metadata(kind, ctx);
        };
        let dpop = ResourceDpop::of(Some(&prm), None);
        let mut refusals: Vec<(&str, Error)> = Vec::new();
        let several = prm.authorization_servers.len() > 1;
        for issuer in &prm.authorization_servers {
            self.net.progress(Progress::AuthorizationServer {
                issuer: issuer.clone(),
            });
            match self.usable(issuer, kind) {
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
                        self.net.progress(Progress::ServerSkipped {
                            issuer: issuer.clone(),
                            reason: format!("{e:#}"),
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
            .map(|(issuer, e)| format!("{}: {e:#}", printable(issuer)))
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

    /// The 2025-03-26 way, for a server without resource metadata: authorization server
    /// metadata at its origin, else the default endpoints there.
    fn without_resource_metadata(
        &self,
        kind: LoginKind,
        ctx: &LoginContext<'_>,
    ) -> Result<Discovered> {
        let origin = self.server_url.origin().ascii_serialization();
        self.net.progress(Progress::NoResourceMetadata { origin });
        let found =
            discovery::discover_legacy_auth_server_metadata(self.net.agent(), self.server_url)?;
        let metadata = match found {
            Some(metadata) => metadata,
            None => {
                // No metadata at all: the 2025-03-26 default endpoints, for a server that asks
                // for a token. One that does not is no OAuth server.
                if !ctx.rejected && ctx.challenge.is_none() {
                    self.require_token_asked()?;
                }
                discovery::fallback_auth_server_metadata(self.server_url)
            }
        };
        self.check(&metadata, kind)?;
        Ok(Discovered {
            metadata,
            resource: canonical_resource(self.server_url),
            scopes_supported: None,
            dpop: ResourceDpop::default(),
        })
    }

    /// Refuses a server that has no OAuth metadata of any kind and does not ask for a token
    /// either (an MCP request without one is not answered 401): it offers no OAuth for MCP,
    /// and a registration at its default `/register` would only fail more obscurely.
    fn require_token_asked(&self) -> Result<()> {
        let step = Step::ResourceDiscovery;
        let ping = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "ping"});
        let answer = crate::http::send(
            self.net.agent(),
            self.server_url,
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
        .with_url(self.server_url))
    }

    /// The metadata of `issuer`, when it can be read and offers what a `kind` login needs.
    fn usable(&self, issuer: &str, kind: LoginKind) -> Result<AuthServerMetadata> {
        self.net.check_named(issuer, Step::AuthServerDiscovery)?;
        let metadata =
            discover_auth_server_metadata(self.net.agent(), issuer)?.ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidResponse,
                    Step::AuthServerDiscovery,
                    format!(
                        "no metadata found for authorization server {}",
                        printable(issuer)
                    ),
                )
            })?;
        self.check(&metadata, kind)?;
        Ok(metadata)
    }

    /// Checks an authorization server's metadata for a `kind` login: its endpoints pass the
    /// address rules; the browser needs PKCE S256 and a browser grant; a person's login needs
    /// a client there.
    fn check(&self, metadata: &AuthServerMetadata, kind: LoginKind) -> Result<()> {
        self.net.progress(Progress::ServerMetadata {
            issuer: metadata.issuer.clone(),
        });
        let browser = kind == LoginKind::Browser;
        self.check_endpoints(metadata, browser)?;
        if browser {
            metadata.require_s256()?;
            refuse_headless_only(metadata)?;
        }
        if kind != LoginKind::Grant && !self.clients.available(self.cache, metadata) {
            return Err(no_registration(metadata));
        }
        Ok(())
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
            self.net.rules().check_browser_url(&authorize, step)?;
        }
        let optional = [
            &metadata.registration_endpoint,
            &metadata.revocation_endpoint,
            &metadata.device_authorization_endpoint,
        ];
        std::iter::once(&metadata.token_endpoint)
            .chain(optional.into_iter().flatten())
            .try_for_each(|endpoint| self.net.check_named(endpoint, step))
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
