//! Discovery: protected resource metadata (RFC 9728) and authorization server metadata
//! (RFC 8414, OpenID Connect Discovery 1.0), in the order the MCP authorization spec sets.
//!
//! - Resource metadata: the `resource_metadata` URL of a 401 challenge when there was one, then
//!   `/.well-known/oauth-protected-resource{path}`, then `/.well-known/oauth-protected-resource`.
//!   Its `resource` must identify the MCP server (same origin, path prefix), else the flow stops.
//! - Authorization server metadata for issuer `https://as/t`: `/.well-known/oauth-authorization-server/t`,
//!   `/.well-known/openid-configuration/t`, `/t/.well-known/openid-configuration`; without a path
//!   the first two. The document's `issuer` must equal the issuer string exactly.
//! - A 4xx moves on to the next URL; any other failure stops with an error naming the URL.
//! - No resource metadata at all: the 2025-03-26 fallback, the server's origin as issuer and, if
//!   it has no metadata either, `/authorize`, `/token` and `/register` on that origin.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::address::parse_endpoint;
use crate::error::{Error, ErrorKind, Result, Step, shorten};
use crate::http::{self, Body};

/// The largest metadata document read, in bytes.
pub const METADATA_LIMIT: usize = 64 * 1024;

/// RFC 9728 §2 protected resource metadata (the fields this client uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResourceMetadata {
    /// The protected resource's identifier: the URL the tokens are for.
    pub resource: String,
    /// Issuer identifiers of the authorization servers that protect it.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// Scopes the resource understands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// How the resource accepts bearer tokens (`header`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_methods_supported: Option<Vec<String>>,
    /// The DPoP proof algorithms the resource takes (RFC 9728 §2): present when it accepts
    /// DPoP-bound tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// The resource accepts DPoP-bound tokens only (RFC 9728 §2; default `false`).
    #[serde(default)]
    pub dpop_bound_access_tokens_required: bool,
}

impl ResourceMetadata {
    /// True when the resource says it takes DPoP-bound tokens (RFC 9728 §2): it lists
    /// `alg` among its proof algorithms, or requires bound tokens (a list left out then
    /// says nothing about algorithms).
    ///
    /// ```
    /// # use mcp_oauth_client::discovery::parse_resource_metadata;
    /// let server = url::Url::parse("https://mcp.example.com/mcp").unwrap();
    /// let prm = parse_resource_metadata(br#"{"resource": "https://mcp.example.com/mcp",
    ///     "authorization_servers": ["https://as.example.com"],
    ///     "dpop_signing_alg_values_supported": ["ES256"]}"#, &server).unwrap();
    /// assert!(prm.takes_dpop("ES256") && !prm.takes_dpop("RS256"));
    /// assert!(!prm.dpop_bound_access_tokens_required);
    /// ```
    pub fn takes_dpop(&self, alg: &str) -> bool {
        match &self.dpop_signing_alg_values_supported {
            Some(algs) => algs.iter().any(|a| a == alg),
            None => self.dpop_bound_access_tokens_required,
        }
    }
}

/// RFC 8414 §2 authorization server metadata (the fields this client uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthServerMetadata {
    /// The issuer identifier; equal to the one the metadata was looked up for.
    pub issuer: String,
    /// Where the browser is sent (RFC 6749 §3.1). Empty when the server has none: RFC 8414
    /// §2 lets a server without browser grants (client credentials only, say) omit it.
    #[serde(default)]
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens are redeemed (RFC 6749 §3.2).
    pub token_endpoint: String,
    /// RFC 7591 dynamic client registration endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// RFC 7009 token revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// Scopes the server supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// PKCE methods; this client requires `S256` to be listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Client authentication methods at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RFC 9207: the server sends `iss` in authorization responses.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// The server accepts client ID metadata documents (an HTTPS URL as `client_id`).
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    /// The device authorization endpoint (RFC 8628 §4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    /// The grant types the server supports (RFC 8414 §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    /// The DPoP proof algorithms the server accepts (RFC 9449 §5.1): its presence says the
    /// server binds tokens to DPoP keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
}

impl AuthServerMetadata {
    /// True when `code_challenge_methods_supported` lists `S256`.
    pub fn supports_s256(&self) -> bool {
        self.code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "S256"))
    }

    /// True when `dpop_signing_alg_values_supported` lists `alg`.
    pub fn supports_dpop(&self, alg: &str) -> bool {
        self.dpop_signing_alg_values_supported
            .as_ref()
            .is_some_and(|a| a.iter().any(|a| a == alg))
    }

    /// True when `scopes_supported` lists `scope`.
    pub fn supports_scope(&self, scope: &str) -> bool {
        self.scopes_supported
            .as_ref()
            .is_some_and(|s| s.iter().any(|s| s == scope))
    }

    /// Refuses a server that does not advertise PKCE S256 (MCP authorization: clients MUST
    /// refuse to proceed when `code_challenge_methods_supported` is absent).
    ///
    /// # Errors
    /// [`ErrorKind::Refused`] in [`Step::AuthServerDiscovery`].
    pub fn require_s256(&self) -> Result<()> {
        if self.supports_s256() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Refused,
                Step::AuthServerDiscovery,
                format!(
                    "authorization server {} does not advertise PKCE S256 in \
                     code_challenge_methods_supported",
                    self.issuer
                ),
            ))
        }
    }
}

/// The canonical resource URI of an MCP server URL (RFC 8707 §2, MCP authorization §resource):
/// lowercase scheme and host, no fragment, no trailing slash on an empty path.
///
/// ```
/// use mcp_oauth_client::discovery::canonical_resource;
/// let u = url::Url::parse("HTTPS://MCP.Example.com/mcp#x").unwrap();
/// assert_eq!(canonical_resource(&u), "https://mcp.example.com/mcp");
/// let u = url::Url::parse("https://mcp.example.com/").unwrap();
/// assert_eq!(canonical_resource(&u), "https://mcp.example.com");
/// ```
pub fn canonical_resource(server_url: &Url) -> String {
    let mut u = server_url.clone();
    u.set_fragment(None);
    let s = u.to_string();
    if u.path() == "/" && u.query().is_none() {
        s.trim_end_matches('/').to_owned()
    } else {
        s
    }
}

/// The well-known protected resource metadata URLs for a server URL, in the order to try
/// (RFC 9728 §3.1, MCP authorization: path-inserted first, then the root).
///
/// ```
/// use mcp_oauth_client::discovery::resource_metadata_urls;
/// let u = url::Url::parse("https://mcp.example.com/public/mcp").unwrap();
/// let urls: Vec<String> = resource_metadata_urls(&u).iter().map(|u| u.to_string()).collect();
/// assert_eq!(urls, [
///     "https://mcp.example.com/.well-known/oauth-protected-resource/public/mcp",
///     "https://mcp.example.com/.well-known/oauth-protected-resource",
/// ]);
/// ```
pub fn resource_metadata_urls(server_url: &Url) -> Vec<Url> {
    well_known(server_url, "oauth-protected-resource", true)
}

/// The authorization server metadata URLs for an issuer, in the order to try (RFC 8414 §3.1,
/// OpenID Connect Discovery 1.0 §4, MCP authorization).
///
/// # Errors
/// [`ErrorKind::InvalidResponse`] when `issuer` is not an absolute URL without query or fragment.
///
/// ```
/// use mcp_oauth_client::discovery::auth_server_metadata_urls;
/// let urls: Vec<String> = auth_server_metadata_urls("https://as.example.com/t")
///     .unwrap().iter().map(|u| u.to_string()).collect();
/// assert_eq!(urls, [
///     "https://as.example.com/.well-known/oauth-authorization-server/t",
///     "https://as.example.com/.well-known/openid-configuration/t",
///     "https://as.example.com/t/.well-known/openid-configuration",
/// ]);
/// ```
pub fn auth_server_metadata_urls(issuer: &str) -> Result<Vec<Url>> {
    let url = Url::parse(issuer)
        .ok()
        .filter(|u| u.has_host() && u.query().is_none() && u.fragment().is_none())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidResponse,
                Step::AuthServerDiscovery,
                "the issuer is not an absolute URL without query or fragment",
            )
        })?;
    let mut urls = well_known(&url, "oauth-authorization-server", false);
    urls.extend(well_known(&url, "openid-configuration", false));
    if url.path() != "/" {
        let mut appended = url.clone();
        let path = format!(
            "{}/.well-known/openid-configuration",
            url.path().trim_end_matches('/')
        );
        appended.set_path(&path);
        urls.push(appended);
    }
    Ok(urls)
}

/// `{origin}/.well-known/{name}{path}`, plus the root form when `with_root` and the path is
/// not empty. Without a path, only `{origin}/.well-known/{name}`.
fn well_known(base: &Url, name: &str, with_root: bool) -> Vec<Url> {
    let mut root = base.clone();
    root.set_query(None);
    root.set_fragment(None);
    root.set_path(&format!("/.well-known/{name}"));
    let path = base.path().trim_end_matches('/');
    if path.is_empty() {
        return vec![root];
    }
    let mut inserted = root.clone();
    inserted.set_path(&format!("/.well-known/{name}{path}"));
    if with_root {
        vec![inserted, root]
    } else {
        vec![inserted]
    }
}

/// True when `resource` (from resource metadata) identifies `server_url`: same origin and a
/// path that is a segment-wise prefix of the server's path.
pub fn resource_matches(resource: &str, server_url: &Url) -> bool {
    let Ok(r) = Url::parse(resource) else {
        return false;
    };
    if r.origin() != server_url.origin() || r.fragment().is_some() {
        return false;
    }
    let rp = r.path().trim_end_matches('/');
    let sp = server_url.path().trim_end_matches('/');
    sp == rp || sp.starts_with(&format!("{rp}/"))
}

/// Parses and validates protected resource metadata for `server_url` (RFC 9728 §3.3).
///
/// # Errors
/// [`ErrorKind::InvalidResponse`] for a body that is not the metadata JSON object or names no
/// authorization server; [`ErrorKind::Refused`] when its `resource` does not identify
/// `server_url`.
pub fn parse_resource_metadata(body: &[u8], server_url: &Url) -> Result<ResourceMetadata> {
    let step = Step::ResourceDiscovery;
    check_size(body, step)?;
    let md: ResourceMetadata = http::parse_json(body, step, "protected resource metadata")?;
    if !resource_matches(&md.resource, server_url) {
        return Err(Error::new(
            ErrorKind::Refused,
            step,
            format!(
                "the metadata's resource {:?} does not match the MCP server {}",
                shorten(&md.resource),
                canonical_resource(server_url)
            ),
        ));
    }
    if md.authorization_servers.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidResponse,
            step,
            "the metadata names no authorization server",
        ));
    }
    Ok(md)
}

/// Parses and validates authorization server metadata looked up for `issuer` (RFC 8414 §3.3):
/// the `issuer` member must equal `issuer` exactly, and the endpoints must be HTTPS (or HTTP
/// on loopback).
///
/// # Errors
/// [`ErrorKind::InvalidResponse`] for malformed metadata; [`ErrorKind::Refused`] for an
/// issuer mismatch or an insecure endpoint.
pub fn parse_auth_server_metadata(body: &[u8], issuer: &str) -> Result<AuthServerMetadata> {
    parse_metadata_with_issuer(body, |found| found == issuer, issuer)
}

/// Parses authorization server metadata found at the MCP server's origin when the server has
/// no resource metadata (the 2025-03-26 revision). That revision puts the metadata at
/// `{origin}/.well-known/oauth-authorization-server` whatever the issuer's path, so the
/// `issuer` must be an URL of the server's origin (not necessarily the origin itself); it
/// then is the issuer identifier for the `iss` check and client binding.
///
/// # Errors
/// As [`parse_auth_server_metadata`]; [`ErrorKind::Refused`] for an issuer on another origin.
pub fn parse_legacy_auth_server_metadata(
    body: &[u8],
    server_url: &Url,
) -> Result<AuthServerMetadata> {
    let origin = server_url.origin();
    parse_metadata_with_issuer(
        body,
        |found| Url::parse(found).is_ok_and(|u| u.origin() == origin),
        &origin.ascii_serialization(),
    )
}

fn parse_metadata_with_issuer(
    body: &[u8],
    accept: impl Fn(&str) -> bool,
    expected: &str,
) -> Result<AuthServerMetadata> {
    let step = Step::AuthServerDiscovery;
    check_size(body, step)?;
    let md: AuthServerMetadata = http::parse_json(body, step, "authorization server metadata")?;
    if !accept(&md.issuer) {
        return Err(Error::new(
            ErrorKind::Refused,
            step,
            format!(
                "the metadata's issuer {:?} is not the expected {:?}",
                shorten(&md.issuer),
                shorten(expected)
            ),
        ));
    }
    check_endpoints(&md)?;
    Ok(md)
}

fn check_endpoints(md: &AuthServerMetadata) -> Result<()> {
    let step = Step::AuthServerDiscovery;
    let optional = [
        &md.registration_endpoint,
        &md.revocation_endpoint,
        &md.device_authorization_endpoint,
    ];
    let browser = Some(&md.authorization_endpoint).filter(|e| !e.is_empty());
    let all = [browser, Some(&md.token_endpoint)]
        .into_iter()
        .chain(optional.into_iter().map(Option::as_ref));
    for endpoint in all.flatten() {
        let url = parse_endpoint(endpoint, step)?;
        crate::address::require_secure(&url, step)?;
    }
    Ok(())
}

fn check_size(body: &[u8], step: Step) -> Result<()> {
    if body.len() > METADATA_LIMIT {
        return Err(Error::new(
            ErrorKind::InvalidResponse,
            step,
            "the metadata document is larger than allowed",
        ));
    }
    Ok(())
}

/// The 2025-03-26 fallback when a server has no resource metadata and its origin has no
/// authorization server metadata: `/authorize`, `/token` and `/register` on the origin, PKCE
/// S256 assumed (that revision requires it).
pub fn fallback_auth_server_metadata(server_url: &Url) -> AuthServerMetadata {
    let origin = server_url.origin().ascii_serialization();
    AuthServerMetadata {
        issuer: origin.clone(),
        authorization_endpoint: format!("{origin}/authorize"),
        token_endpoint: format!("{origin}/token"),
        registration_endpoint: Some(format!("{origin}/register")),
        revocation_endpoint: None,
        scopes_supported: None,
        code_challenge_methods_supported: Some(vec!["S256".into()]),
        token_endpoint_auth_methods_supported: None,
        authorization_response_iss_parameter_supported: false,
        client_id_metadata_document_supported: false,
        device_authorization_endpoint: None,
        grant_types_supported: None,
        dpop_signing_alg_values_supported: None,
    }
}

/// Fetches each URL in turn: a 2xx is parsed by `parse`, a 4xx moves on, anything else stops.
fn first_found<T>(
    agent: &ureq::Agent,
    urls: &[Url],
    step: Step,
    parse: impl Fn(&[u8]) -> Result<T>,
) -> Result<Option<T>> {
    for url in urls {
        let response = http::send(agent, url, Body::None, &[], step)?;
        match response.status {
            200..=299 => return parse(&response.body).map(Some).map_err(|e| e.with_url(url)),
            400..=499 => {
                log::debug!(
                    "{step}: {url} answered {}, trying the next URL",
                    response.status
                );
                continue;
            }
            _ => return Err(http::status_error(&response, step, url, &[])),
        }
    }
    Ok(None)
}

/// Finds the protected resource metadata of the MCP server at `server_url` (RFC 9728 §3):
/// `metadata_url` from a 401 challenge first when given, then the well-known URLs.
/// `Ok(None)` when every URL answered 4xx (the server predates RFC 9728).
///
/// # Errors
/// Transport failures, non-4xx error statuses, invalid metadata, and a `resource` that does
/// not identify `server_url`, all in [`Step::ResourceDiscovery`].
pub fn discover_resource_metadata(
    agent: &ureq::Agent,
    server_url: &Url,
    metadata_url: Option<&Url>,
) -> Result<Option<ResourceMetadata>> {
    let mut urls: Vec<Url> = metadata_url.into_iter().cloned().collect();
    for u in resource_metadata_urls(server_url) {
        if !urls.contains(&u) {
            urls.push(u);
        }
    }
    first_found(agent, &urls, Step::ResourceDiscovery, |body| {
        parse_resource_metadata(body, server_url)
    })
}

/// Finds the metadata of the authorization server `issuer` (RFC 8414 §3, OIDC Discovery §4).
/// `Ok(None)` when every well-known URL answered 4xx.
///
/// # Errors
/// Transport failures, non-4xx error statuses, invalid metadata and an `issuer` mismatch, all
/// in [`Step::AuthServerDiscovery`].
pub fn discover_auth_server_metadata(
    agent: &ureq::Agent,
    issuer: &str,
) -> Result<Option<AuthServerMetadata>> {
    let urls = auth_server_metadata_urls(issuer)?;
    first_found(agent, &urls, Step::AuthServerDiscovery, |body| {
        parse_auth_server_metadata(body, issuer)
    })
}

/// The 2025-03-26 discovery for a server without resource metadata: authorization server
/// metadata at its origin (see [`parse_legacy_auth_server_metadata`]), `Ok(None)` when the
/// origin has none (then [`fallback_auth_server_metadata`] applies).
///
/// # Errors
/// As [`discover_auth_server_metadata`].
pub fn discover_legacy_auth_server_metadata(
    agent: &ureq::Agent,
    server_url: &Url,
) -> Result<Option<AuthServerMetadata>> {
    let urls = auth_server_metadata_urls(&server_url.origin().ascii_serialization())?;
    first_found(agent, &urls, Step::AuthServerDiscovery, |body| {
        parse_legacy_auth_server_metadata(body, server_url)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn well_known_urls_without_path() {
        let urls = auth_server_metadata_urls("https://as.example.com").unwrap();
        let urls: Vec<_> = urls.iter().map(Url::as_str).collect();
        assert_eq!(
            urls,
            [
                "https://as.example.com/.well-known/oauth-authorization-server",
                "https://as.example.com/.well-known/openid-configuration",
            ]
        );
        let prm = resource_metadata_urls(&u("https://mcp.example.com"));
        assert_eq!(
            prm[0].as_str(),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(prm.len(), 1);
    }

    #[test]
    fn well_known_urls_with_path_and_trailing_slash() {
        let urls = auth_server_metadata_urls("https://as.example.com/tenant/").unwrap();
        let urls: Vec<_> = urls.iter().map(Url::as_str).collect();
        assert_eq!(
            urls,
            [
                "https://as.example.com/.well-known/oauth-authorization-server/tenant",
                "https://as.example.com/.well-known/openid-configuration/tenant",
                "https://as.example.com/tenant/.well-known/openid-configuration",
            ]
        );
        assert!(auth_server_metadata_urls("not a url").is_err());
        assert!(auth_server_metadata_urls("https://as.example.com/?q=1").is_err());
    }

    #[test]
    fn resource_matching() {
        let server = u("https://mcp.example.com/api/mcp");
        assert!(resource_matches("https://mcp.example.com/api/mcp", &server));
        assert!(resource_matches("https://mcp.example.com/api", &server));
        assert!(resource_matches("https://mcp.example.com", &server));
        assert!(resource_matches("https://MCP.example.com:443/", &server));
        assert!(!resource_matches("https://mcp.example.com/ap", &server));
        assert!(!resource_matches(
            "https://mcp.example.com/api/mcp/x",
            &server
        ));
        assert!(!resource_matches("http://mcp.example.com/api/mcp", &server));
        assert!(!resource_matches(
            "https://evil.example.com/api/mcp",
            &server
        ));
        assert!(!resource_matches("not a url", &server));
    }

    #[test]
    fn rfc9728_metadata_example_parses() {
        // RFC 9728 §3.2 example response, trimmed of fields this client ignores.
        let body = br#"{
          "resource": "https://resource.example.com",
          "authorization_servers": ["https://as1.example.com", "https://as2.example.net"],
          "bearer_methods_supported": ["header", "body"],
          "scopes_supported": ["profile", "email", "phone"],
          "resource_documentation": "https://resource.example.com/resource_documentation.html"
        }"#;
        let md = parse_resource_metadata(body, &u("https://resource.example.com/mcp")).unwrap();
        assert_eq!(md.authorization_servers[0], "https://as1.example.com");
        assert_eq!(md.scopes_supported.unwrap().len(), 3);
        let e = parse_resource_metadata(body, &u("https://other.example.com/mcp")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        let e = parse_resource_metadata(b"[]", &u("https://resource.example.com")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidResponse);
    }

    #[test]
    fn legacy_metadata_issuer_may_have_a_path_on_the_same_origin() {
        let body = br#"{"issuer":"http://127.0.0.1:9/oauth","authorization_endpoint":"http://127.0.0.1:9/oauth/authorize","token_endpoint":"http://127.0.0.1:9/oauth/token","code_challenge_methods_supported":["S256"]}"#;
        let server = u("http://127.0.0.1:9/mcp");
        assert_eq!(
            parse_legacy_auth_server_metadata(body, &server)
                .unwrap()
                .issuer,
            "http://127.0.0.1:9/oauth"
        );
        let other = u("http://127.0.0.1:10/mcp");
        assert_eq!(
            parse_legacy_auth_server_metadata(body, &other)
                .unwrap_err()
                .kind(),
            ErrorKind::Refused
        );
    }

    #[test]
    fn issuer_must_match_exactly() {
        let body = br#"{"issuer":"https://as.example.com/","authorization_endpoint":"https://as.example.com/a","token_endpoint":"https://as.example.com/t","code_challenge_methods_supported":["S256"]}"#;
        assert!(parse_auth_server_metadata(body, "https://as.example.com/").is_ok());
        let e = parse_auth_server_metadata(body, "https://as.example.com").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
    }

    #[test]
    fn insecure_endpoint_refused_and_s256_required() {
        let body = br#"{"issuer":"https://as.example.com","authorization_endpoint":"http://as.example.com/a","token_endpoint":"https://as.example.com/t"}"#;
        let e = parse_auth_server_metadata(body, "https://as.example.com").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        let body = br#"{"issuer":"https://as.example.com","authorization_endpoint":"https://as.example.com/a","token_endpoint":"https://as.example.com/t","code_challenge_methods_supported":["plain"]}"#;
        let md = parse_auth_server_metadata(body, "https://as.example.com").unwrap();
        assert!(md.require_s256().is_err());
    }

    #[test]
    fn fallback_endpoints() {
        let md = fallback_auth_server_metadata(&u("http://127.0.0.1:9/mcp"));
        assert_eq!(md.issuer, "http://127.0.0.1:9");
        assert_eq!(md.token_endpoint, "http://127.0.0.1:9/token");
        assert!(md.supports_s256());
    }
}
