//! [`ServerConfig`]: how a [`TestServer`](super::TestServer) presents itself.

/// Which well-known URLs serve the authorization server metadata.
///
/// Real servers differ here, and MCP clients are expected to try them in turn, so tests can pick
/// one. `{issuer_path}` is [`ServerConfig::issuer_path`] (empty for an issuer without a path).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AsMetadataPaths {
    /// RFC 8414 OAuth metadata, path inserted:
    /// `/.well-known/oauth-authorization-server{issuer_path}`.
    #[default]
    OAuth,
    /// OpenID Connect discovery, path inserted: `/.well-known/openid-configuration{issuer_path}`.
    OpenIdInserted,
    /// OpenID Connect discovery, path appended: `{issuer_path}/.well-known/openid-configuration`.
    OpenIdAppended,
    /// All three of the above.
    All,
}

/// What the MCP endpoint of a [`ServerConfig::dpop`] server makes of DPoP-bound tokens; the
/// authorization server binds them either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum McpDpop {
    /// It takes bound tokens (with the `DPoP` scheme and a proof) and Bearer tokens; its
    /// resource metadata lists `dpop_signing_alg_values_supported`, and its 401 offers both
    /// schemes (RFC 9449 §7.1).
    #[default]
    Accepted,
    /// It takes bound tokens only: its resource metadata says
    /// `dpop_bound_access_tokens_required`, and its 401 offers the `DPoP` scheme alone.
    Required,
    /// It takes Bearer tokens only, as the MCP SDKs' bearer middleware does: the `DPoP`
    /// scheme is refused, its resource metadata says nothing of DPoP, and its 401 offers
    /// `Bearer` alone. The authorization server still advertises DPoP: a mixed deployment.
    Refused,
    /// As `Refused`, but its resource metadata lists `dpop_signing_alg_values_supported`
    /// all the same (a misconfigured server).
    Misadvertised,
}

impl McpDpop {
    /// Whether the endpoint takes the `DPoP` scheme.
    pub(super) fn takes_dpop(self) -> bool {
        matches!(self, McpDpop::Accepted | McpDpop::Required)
    }

    /// Whether the endpoint takes the `Bearer` scheme.
    pub(super) fn takes_bearer(self) -> bool {
        self != McpDpop::Required
    }
}

/// The configuration a [`TestServer`](super::TestServer) starts with.
///
/// Start from [`ServerConfig::default`] and change the fields a test cares about:
///
/// ```
/// use mcp_oauth_client::testing::{AsMetadataPaths, ServerConfig};
///
/// let config = ServerConfig {
///     issuer_path: "/tenant1".into(),
///     as_metadata_paths: AsMetadataPaths::OpenIdAppended,
///     ..ServerConfig::default()
/// };
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The path part of the issuer, e.g. `"/tenant1"`; empty (the default) for an issuer at the
    /// root. The authorization server endpoints live under it (`/tenant1/authorize`, ...).
    /// A missing leading slash is added and a trailing slash removed.
    pub issuer_path: String,
    /// Which well-known URLs serve the authorization server metadata (default
    /// [`AsMetadataPaths::OAuth`]).
    pub as_metadata_paths: AsMetadataPaths,
    /// Whether the Protected Resource Metadata (RFC 9728) is served (default `true`). When
    /// `false`, its URLs answer 404 and the MCP endpoint's 401 challenge has no
    /// `resource_metadata`, as with servers following the 2025-03-26 MCP specification.
    pub serve_resource_metadata: bool,
    /// Whether the 401 challenge carries
    /// `resource_metadata="http://127.0.0.1:PORT/.well-known/oauth-protected-resource/mcp"`
    /// (default `true`; ignored when `serve_resource_metadata` is `false`).
    pub resource_metadata_in_challenge: bool,
    /// When set, the MCP endpoint's 401 challenge also carries `scope="..."` (default `None`).
    pub challenge_scope: Option<String>,
    /// The Protected Resource Metadata `scopes_supported` (omitted when `None`); default
    /// `mcp:read` and `mcp:write`. The authorization server metadata lists these too, plus
    /// `offline_access` when `advertise_offline_access` is set.
    pub scopes_supported: Option<Vec<String>>,
    /// Whether the authorization server metadata lists `offline_access` in `scopes_supported`
    /// (default `true`). Refresh tokens are issued either way.
    pub advertise_offline_access: bool,
    /// The metadata `code_challenge_methods_supported` (default `S256`); `None` leaves the
    /// field out, which MCP clients must treat as "PKCE not supported". The server itself
    /// always requires S256.
    pub code_challenge_methods: Option<Vec<String>>,
    /// The client authentication methods the token endpoint supports, and registration accepts
    /// (default `none`, `client_secret_post`, `client_secret_basic`).
    pub token_endpoint_auth_methods: Vec<String>,
    /// When set, registration issues every client this `token_endpoint_auth_method` (with a
    /// secret unless `none`) whatever the request asked for, as servers do that answer a
    /// request for a public client with a confidential one (default `None`: the method asked).
    pub registration_auth_method: Option<String>,
    /// The `token_type` of token responses (default `Bearer`; real servers also send
    /// `bearer` and other spellings).
    pub token_type: String,
    /// Whether token responses carry `expires_in` (default `true`). Without it the client
    /// cannot know the expiry; tokens still expire after the configured lifetime.
    pub send_expires_in: bool,
    /// Whether the metadata names the token endpoint as `revocation_endpoint` too (default
    /// `false`), as some servers do; revocation requests there get a token endpoint error.
    pub revocation_at_token_endpoint: bool,
    /// Whether token and revocation requests must carry `client_id` in the form body whatever
    /// the client's authentication method, also beside HTTP Basic, as the MCP Python SDK's
    /// authorization server (FastMCP) demands (default `false`: Basic alone is enough).
    pub client_id_in_body: bool,
    /// Whether the metadata has `authorization_response_iss_parameter_supported: true` and
    /// `/authorize` redirects carry `iss` (RFC 9207); default `true`.
    pub iss_parameter: bool,
    /// When `true`, `/authorize` redirects back with `error=access_denied` as if the user had
    /// refused (default `false`).
    pub deny_authorization: bool,
    /// The initial `expires_in` of access tokens, in seconds (default 3600); see also
    /// [`TestServer::set_access_token_lifetime`](super::TestServer::set_access_token_lifetime).
    pub access_token_lifetime: i64,
    /// Whether each refresh issues a new refresh token and invalidates the old one (default
    /// `true`; reusing the old one then fails with `invalid_grant`). When `false`, the refresh
    /// token stays valid and refresh responses have no `refresh_token` field, so the client
    /// must keep the one it has.
    pub rotate_refresh_tokens: bool,
    /// Refresh-token reuse detection as a careful authorization server does it (RFC 9700
    /// §4.14.2): presenting a refresh token that was already rotated away revokes every token of
    /// that authorization (the "family"), counted by
    /// [`TestServer::family_revocations`](super::TestServer::family_revocations). Default `false`.
    pub strict_refresh_reuse: bool,
    /// When set, the Protected Resource Metadata `resource` is this string instead of the MCP
    /// endpoint URL, for testing that clients reject a mismatch (default `None`).
    pub prm_resource_override: Option<String>,
    /// When set, the authorization server metadata `issuer` is this string instead of the real
    /// issuer, for testing that clients reject a mismatch (default `None`).
    pub issuer_override: Option<String>,
    /// DPoP (RFC 9449; default `false`): the metadata advertises ES256 proofs; a token request
    /// with a valid proof gets tokens bound to its key (`token_type` `DPoP`, refresh tokens
    /// bound too), which the MCP endpoint accepts only with the `DPoP` scheme and a valid proof
    /// (`htm`, `htu`, `ath`, a `jti` never seen before, `iat` within five minutes), or not at
    /// all: see `mcp_dpop`.
    pub dpop: bool,
    /// With `dpop`: the token endpoint and the MCP endpoint each require their own nonce in
    /// proofs, and answer a proof without it `use_dpop_nonce` with the nonce in `DPoP-Nonce`
    /// (RFC 9449 §8, §9). See [`TestServer::rotate_dpop_nonces`](super::TestServer::rotate_dpop_nonces).
    /// Default `false`.
    pub dpop_nonces: bool,
    /// With `dpop`: what the MCP endpoint makes of DPoP-bound tokens (default
    /// [`McpDpop::Accepted`]).
    pub mcp_dpop: McpDpop,
    /// With `dpop`: the server's clock for proofs runs this many milliseconds behind the
    /// client's, is read in whole seconds, and a proof whose `iat` is ahead of it is refused
    /// (no leeway), as some servers do (default `None`: five minutes either way).
    pub dpop_strict_clock_lag_ms: Option<u64>,
    /// The public JWK (RFC 7517) whose signature the JWT bearer grant (RFC 7523 §2.1) accepts
    /// on assertions, which must also name this server (`aud`: the issuer or the token
    /// endpoint), carry an `exp` to come and a `jti` never seen before. `None` (the default):
    /// the grant is not offered.
    pub assertion_key: Option<serde_json::Value>,
    /// The device authorization grant (RFC 8628): the `interval` the device authorization
    /// endpoint names, in seconds (default 5).
    pub device_interval: u64,
    /// The `expires_in` of device codes, in seconds (default 600).
    pub device_code_expires_in: u64,
    /// When set, device codes expire after this many seconds whatever `expires_in` said, so a
    /// client polling on gets `expired_token` (default `None`).
    pub device_code_lifetime: Option<u64>,
    /// Whether the first poll of each device code is answered `slow_down` (default `false`).
    pub device_slow_down: bool,
    /// Whether the MCP endpoint answers every request with an event stream, even to a client
    /// that also accepts JSON (as the MCP TypeScript SDK's server does; default `false`).
    pub mcp_sse_answers: bool,
    /// The MCP endpoint as servers on the MCP Python SDK 1.x behave (default `false`): a
    /// session is usable once the client's `notifications/initialized` is processed; a
    /// request other than `ping` before that gets JSON-RPC error -32602; the notification
    /// is processed 50 ms after it arrives; and notifications and responses are answered
    /// 202 with `Content-Type: application/json` and an empty body.
    pub mcp_strict_initialization: bool,
    /// The protocol revisions the MCP endpoint speaks (default `None`: whatever the client
    /// asks). With a list, `initialize` answers the newest of them when asked for another,
    /// and a request whose `MCP-Protocol-Version` names another is answered 400, as FastMCP
    /// 2.x does.
    pub protocol_versions: Option<Vec<String>>,
    /// The MCP endpoint speaks the HTTP+SSE transport of revision 2024-11-05 instead of
    /// Streamable HTTP (default `false`): `GET /mcp` is the event stream, messages are POSTed
    /// to the URL its `endpoint` event names, and a POST to `/mcp` is answered 405.
    pub legacy_sse: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            issuer_path: String::new(),
            as_metadata_paths: AsMetadataPaths::OAuth,
            serve_resource_metadata: true,
            resource_metadata_in_challenge: true,
            challenge_scope: None,
            scopes_supported: Some(vec!["mcp:read".into(), "mcp:write".into()]),
            advertise_offline_access: true,
            code_challenge_methods: Some(vec!["S256".into()]),
            token_endpoint_auth_methods: vec![
                "none".into(),
                "client_secret_post".into(),
                "client_secret_basic".into(),
            ],
            registration_auth_method: None,
            token_type: "Bearer".into(),
            send_expires_in: true,
            revocation_at_token_endpoint: false,
            client_id_in_body: false,
            iss_parameter: true,
            deny_authorization: false,
            access_token_lifetime: 3600,
            rotate_refresh_tokens: true,
            strict_refresh_reuse: false,
            prm_resource_override: None,
            issuer_override: None,
            dpop: false,
            dpop_nonces: false,
            mcp_dpop: McpDpop::Accepted,
            dpop_strict_clock_lag_ms: None,
            assertion_key: None,
            device_interval: 5,
            device_code_expires_in: 600,
            device_code_lifetime: None,
            device_slow_down: false,
            mcp_sse_answers: false,
            mcp_strict_initialization: false,
            protocol_versions: None,
            legacy_sse: false,
        }
    }
}

impl ServerConfig {
    /// The issuer path in canonical form: empty, or `/segment...` without a trailing slash.
    pub(super) fn normalized_issuer_path(&self) -> String {
        let trimmed = self.issuer_path.trim().trim_end_matches('/');
        if trimmed.is_empty() || trimmed.starts_with('/') {
            trimmed.to_owned()
        } else {
            format!("/{trimmed}")
        }
    }

    /// The paths that serve the authorization server metadata.
    pub(super) fn metadata_paths(&self) -> Vec<String> {
        let issuer_path = self.normalized_issuer_path();
        let oauth = format!("/.well-known/oauth-authorization-server{issuer_path}");
        let inserted = format!("/.well-known/openid-configuration{issuer_path}");
        let appended = format!("{issuer_path}/.well-known/openid-configuration");
        match self.as_metadata_paths {
            AsMetadataPaths::OAuth => vec![oauth],
            AsMetadataPaths::OpenIdInserted => vec![inserted],
            AsMetadataPaths::OpenIdAppended => vec![appended],
            AsMetadataPaths::All => vec![oauth, inserted, appended],
        }
    }
}
