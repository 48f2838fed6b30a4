//! [`Route`]: which endpoint a request path addresses.

/// The endpoints of a [`TestServer`](super::TestServer), used to set faults and to filter the
/// request log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// Protected Resource Metadata (RFC 9728), `/.well-known/oauth-protected-resource[/...]`.
    ResourceMetadata,
    /// Authorization server metadata (RFC 8414 or OpenID Connect discovery), any of the
    /// `oauth-authorization-server` and `openid-configuration` well-known URLs.
    AuthServerMetadata,
    /// Dynamic client registration (RFC 7591), `{issuer_path}/register`.
    Register,
    /// The authorization endpoint, `{issuer_path}/authorize`.
    Authorize,
    /// The token endpoint, `{issuer_path}/token`.
    Token,
    /// The revocation endpoint (RFC 7009), `{issuer_path}/revoke`.
    Revoke,
    /// The device authorization endpoint (RFC 8628), `{issuer_path}/device_authorization`.
    DeviceAuthorization,
    /// The device login's verification page, `{issuer_path}/device`.
    Device,
    /// The MCP endpoint, `/mcp` (and, for the HTTP+SSE transport, the paths below it).
    Mcp,
}

const PRM: &str = "/.well-known/oauth-protected-resource";
const OAUTH_AS: &str = "/.well-known/oauth-authorization-server";
const OPENID: &str = "/.well-known/openid-configuration";

impl Route {
    /// Classifies a request path (a query, if any, is ignored) by its shape alone, whatever the
    /// server's configuration: every Protected Resource Metadata or authorization server
    /// metadata well-known URL, `/mcp`, and any path whose last segment is `register`,
    /// `authorize`, `token`, `revoke`, `device_authorization` or `device`. `None` for anything
    /// else.
    ///
    /// This is the [`RecordedRequest::route`](super::RecordedRequest::route) of every request,
    /// and decides which [`Fault`](super::Fault) applies. A path can have a route and still get
    /// 404, e.g. an unconfigured metadata URL, or `/token` when the issuer has a path.
    ///
    /// ```
    /// use mcp_oauth_client::testing::Route;
    ///
    /// assert_eq!(Route::of_path("/tenant1/token"), Some(Route::Token));
    /// assert_eq!(
    ///     Route::of_path("/.well-known/oauth-authorization-server/tenant1"),
    ///     Some(Route::AuthServerMetadata),
    /// );
    /// assert_eq!(Route::of_path("/favicon.ico"), None);
    /// ```
    pub fn of_path(path: &str) -> Option<Route> {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        if is_under(path, PRM) {
            return Some(Route::ResourceMetadata);
        }
        if is_under(path, OAUTH_AS) || is_under(path, OPENID) || path.ends_with(OPENID) {
            return Some(Route::AuthServerMetadata);
        }
        if path == "/mcp" || path.starts_with("/mcp/") {
            return Some(Route::Mcp);
        }
        let (_, last) = path.rsplit_once('/')?;
        match last {
            "register" => Some(Route::Register),
            "authorize" => Some(Route::Authorize),
            "token" => Some(Route::Token),
            "revoke" => Some(Route::Revoke),
            "device_authorization" => Some(Route::DeviceAuthorization),
            "device" => Some(Route::Device),
            _ => None,
        }
    }
}

/// `path` is `prefix` or below it.
fn is_under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}
