//! The metadata documents: protected resource metadata (RFC 9728) and authorization server
//! metadata (RFC 8414, OpenID Connect Discovery).

use serde_json::json;

use super::http::{Request, Response};
use super::state::{Shared, not_found, require_method};

/// `GET /.well-known/oauth-protected-resource[/mcp]` (RFC 9728).
pub(super) fn resource_metadata(s: &Shared, req: &Request) -> Response {
    const PRM: &str = "/.well-known/oauth-protected-resource";
    let served = req.path == PRM || req.path.strip_prefix(PRM) == Some("/mcp");
    if !s.config.serve_resource_metadata || !served {
        return not_found();
    }
    if let Err(response) = require_method(req, &["GET"]) {
        return response;
    }
    let mut doc = json!({
        "resource": s.advertised_resource(),
        "authorization_servers": [s.issuer],
        "bearer_methods_supported": ["header"],
    });
    if let Some(scopes) = &s.config.scopes_supported {
        doc["scopes_supported"] = json!(scopes);
    }
    if s.config.dpop {
        use super::McpDpop::*;
        if matches!(s.config.mcp_dpop, Accepted | Required | Misadvertised) {
            doc["dpop_signing_alg_values_supported"] = json!(["ES256", "RS256"]);
        }
        if s.config.mcp_dpop == Required {
            doc["dpop_bound_access_tokens_required"] = json!(true);
        }
    }
    Response::json(200, &doc)
}

/// `GET` one of the configured authorization server metadata URLs (RFC 8414, OpenID discovery).
pub(super) fn auth_server_metadata(s: &Shared, req: &Request) -> Response {
    if !s.config.metadata_paths().contains(&req.path) {
        return not_found();
    }
    if let Err(response) = require_method(req, &["GET"]) {
        return response;
    }
    let config = &s.config;
    let mut doc = json!({
        "issuer": config.issuer_override.as_deref().unwrap_or(&s.issuer),
        "authorization_endpoint": s.endpoint_url("authorize"),
        "token_endpoint": s.endpoint_url("token"),
        "registration_endpoint": s.endpoint_url("register"),
        "revocation_endpoint": s.endpoint_url(if config.revocation_at_token_endpoint {
            "token"
        } else {
            "revoke"
        }),
        "response_types_supported": ["code"],
        "grant_types_supported": grant_types(config),
        "device_authorization_endpoint": s.endpoint_url("device_authorization"),
        "token_endpoint_auth_methods_supported": config.token_endpoint_auth_methods,
        "revocation_endpoint_auth_methods_supported": config.token_endpoint_auth_methods,
        "authorization_response_iss_parameter_supported": config.iss_parameter,
    });
    let mut scopes = config.scopes_supported.clone();
    if config.advertise_offline_access {
        scopes.get_or_insert_default().push("offline_access".into());
    }
    if let Some(scopes) = scopes {
        doc["scopes_supported"] = json!(scopes);
    }
    if let Some(methods) = &config.code_challenge_methods {
        doc["code_challenge_methods_supported"] = json!(methods);
    }
    if config.dpop {
        doc["dpop_signing_alg_values_supported"] = json!(["ES256", "RS256"]);
    }
    Response::json(200, &doc)
}

/// The grant types the token endpoint takes.
fn grant_types(config: &super::ServerConfig) -> Vec<&'static str> {
    let mut grants = vec![
        "authorization_code",
        "refresh_token",
        "client_credentials",
        crate::device::DEVICE_CODE_GRANT,
    ];
    if config.assertion_key.is_some() {
        grants.push(crate::grant::JWT_BEARER);
    }
    grants
}
