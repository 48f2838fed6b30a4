//! What real servers do that a reading of the RFCs alone would not expect: client
//! authentication as the MCP SDKs' authorization servers read it, errors sent with HTTP 200,
//! registrations that answer with another method, token responses missing fields, a 401
//! without a usable challenge. Each habit is set up on the embedded server.

use mcp_oauth_client::testing::{Fault, Route, ServerConfig};
use mcp_oauth_client::{AuthMethod, ErrorKind, Step, TokenTypeHint};
use serde_json::json;

use crate::common::{World, free_port, ping, register_out_of_band};

/// Every request to `route` authenticated with HTTP Basic and named the client in the body too,
/// with the secret only in the header.
fn assert_basic_with_client_id_in_body(w: &World, route: Route, client_id: &str) {
    let requests = w.requests_to(route);
    assert!(!requests.is_empty(), "no request to {route:?}");
    for r in requests {
        assert!(
            r.header("authorization")
                .is_some_and(|h| h.starts_with("Basic ")),
            "{route:?} without Basic: {:?}",
            r.headers
        );
        assert_eq!(r.form_param("client_id").as_deref(), Some(client_id));
        assert_eq!(r.form_param("client_secret"), None);
    }
}

#[test]
fn basic_with_client_id_in_the_body_passes_exchange_refresh_and_revocation() {
    // The MCP Python SDK's rule (FastMCP): `client_id` in the body whatever the method.
    let w = World::with(ServerConfig {
        token_endpoint_auth_methods: vec!["client_secret_basic".into()],
        client_id_in_body: true,
        ..ServerConfig::default()
    });
    let session = w.session();
    let first = session.access_token().unwrap();
    let register: serde_json::Value =
        serde_json::from_str(&w.requests_to(Route::Register)[0].body).unwrap();
    assert_eq!(
        register["token_endpoint_auth_method"],
        "client_secret_basic"
    );
    let client_id = crate::common::stored(&session).client_id;

    w.expire_cached_token(&session);
    let refreshed = session.access_token().unwrap();
    assert_ne!(first.secret(), refreshed.secret());
    assert_eq!(w.mcp_status(refreshed.secret()), 200);
    assert_eq!(w.requests_to(Route::Token).len(), 2, "exchange and refresh");

    let report = session.logout().unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        report.revoked,
        [TokenTypeHint::RefreshToken, TokenTypeHint::AccessToken]
    );
    assert_eq!(w.mcp_status(refreshed.secret()), 401);
    assert_basic_with_client_id_in_body(&w, Route::Token, &client_id);
    assert_basic_with_client_id_in_body(&w, Route::Revoke, &client_id);
}

#[test]
fn a_server_offering_both_secret_methods_but_not_none_gets_client_secret_post() {
    // The MCP Python SDK's metadata lists `client_secret_post` and `client_secret_basic`.
    let w = World::with(ServerConfig {
        token_endpoint_auth_methods: vec![
            "client_secret_post".into(),
            "client_secret_basic".into(),
        ],
        client_id_in_body: true,
        ..ServerConfig::default()
    });
    let token = w.session().access_token().unwrap();
    assert_eq!(w.mcp_status(token.secret()), 200);
    let register: serde_json::Value =
        serde_json::from_str(&w.requests_to(Route::Register)[0].body).unwrap();
    assert_eq!(register["token_endpoint_auth_method"], "client_secret_post");
    let exchange = &w.requests_to(Route::Token)[0];
    assert_eq!(exchange.header("authorization"), None);
    assert!(exchange.form_param("client_secret").is_some());
}

#[test]
fn a_just_registered_client_rejected_at_the_exchange_fails_at_once() {
    let w = World::new();
    w.server
        .set_fault(Route::Token, Fault::oauth_error(401, "invalid_client"));
    let session = w.session();
    let e = session.access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OAuth);
    assert_eq!(e.step(), Step::CodeExchange);
    assert!(e.is_invalid_client());
    assert!(
        e.to_string().contains("registered moments ago"),
        "the error says what was rejected: {e}"
    );
    assert_eq!(
        w.requests_to(Route::Authorize).len(),
        1,
        "one browser window"
    );
    assert_eq!(w.requests_to(Route::Register).len(), 1);
    assert_eq!(w.browser.opened(), 1);
    assert!(!w.has_cached_tokens(&session));
}

#[test]
fn a_cached_client_rejected_at_the_exchange_is_registered_anew_once() {
    let w = World::new();
    let session = w.session();
    session.access_token().unwrap();
    w.server.clear_requests();
    // The server forgot the client (an in-memory store after a restart, say).
    w.server.set_fault(
        Route::Token,
        Fault::oauth_error(401, "invalid_client").times(1),
    );
    let token = session.login().unwrap();
    assert_eq!(
        w.request_lines(),
        [
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/oauth-authorization-server",
            // The check that the server knows the cached client (it does), then the browser.
            "GET /authorize",
            "GET /authorize",
            "POST /token",
            "POST /register",
            "GET /authorize",
            "POST /token",
        ]
    );
    assert_eq!(w.server.registered_clients(), 2);
    assert_eq!(w.mcp_status(token.secret()), 200);
}

#[test]
fn a_configured_client_rejected_at_the_exchange_fails_at_once() {
    let w = World::new();
    let port = free_port();
    let client = register_out_of_band(&w, port, AuthMethod::ClientSecretPost);
    w.server.clear_requests();
    w.server
        .set_fault(Route::Token, Fault::oauth_error(401, "invalid_client"));
    let session = w
        .builder()
        .client_id(&client.client_id)
        .client_secret(client.client_secret.as_ref().unwrap().secret())
        .callback_port(port)
        .build()
        .unwrap();
    let e = session.access_token().unwrap_err();
    assert!(e.is_invalid_client(), "{e}");
    assert!(e.to_string().contains("configured client"), "{e}");
    assert_eq!(w.requests_to(Route::Authorize).len(), 1);
    assert!(w.requests_to(Route::Register).is_empty());
}

#[test]
fn an_oauth_error_sent_with_http_200_is_reported_as_the_servers_error() {
    let w = World::new();
    w.server.set_fault(
        Route::Token,
        Fault::json(
            200,
            json!({"error": "bad_verification_code", "error_description": "The code is wrong"}),
        ),
    );
    let e = w.session().access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OAuth);
    assert_eq!(e.oauth_error(), Some("bad_verification_code"));
    assert_eq!(e.oauth_description(), Some("The code is wrong"));
    assert!(!e.to_string().contains("missing field"), "{e}");
}

#[test]
fn invalid_grant_sent_with_http_200_on_refresh_leads_to_a_new_login() {
    let w = World::new();
    let session = w.session_with_expired_token();
    w.server.set_fault(
        Route::Token,
        Fault::json(200, json!({"error": "invalid_grant"})).times(1),
    );
    let token = session.access_token().unwrap();
    assert_eq!(w.mcp_status(token.secret()), 200);
    assert_eq!(w.browser_authorizations().len(), 1);
}

#[test]
fn a_registration_error_sent_with_a_success_status_is_the_servers_error() {
    let w = World::new();
    w.server.set_fault(
        Route::Register,
        Fault::json(201, json!({"error": "invalid_redirect_uri"})),
    );
    let e = w.session().access_token().unwrap_err();
    assert_eq!(e.step(), Step::Registration);
    assert_eq!(e.oauth_error(), Some("invalid_redirect_uri"));
    assert!(w.requests_to(Route::Authorize).is_empty());
}

#[test]
fn a_registration_answered_with_a_confidential_client_uses_its_secret() {
    // Asked for `none`, the server registers `client_secret_basic` with a secret.
    let w = World::with(ServerConfig {
        registration_auth_method: Some("client_secret_basic".into()),
        ..ServerConfig::default()
    });
    let session = w.session();
    let token = session.access_token().unwrap();
    assert_eq!(w.mcp_status(token.secret()), 200);
    let register: serde_json::Value =
        serde_json::from_str(&w.requests_to(Route::Register)[0].body).unwrap();
    assert_eq!(register["token_endpoint_auth_method"], "none");
    let client = session
        .file_store()
        .unwrap()
        .load_client(&w.server.issuer())
        .unwrap()
        .unwrap();
    assert_eq!(client.auth_method, AuthMethod::ClientSecretBasic);
    assert!(client.client_secret.is_some());
    w.expire_cached_token(&session);
    session.access_token().unwrap();
    assert_basic_with_client_id_in_body(&w, Route::Token, &client.client_id);
}

#[test]
fn a_token_response_without_expires_in_is_used_until_the_server_rejects_it() {
    // Tokens live 0 s on the server, but the client is not told.
    let w = World::with(ServerConfig {
        send_expires_in: false,
        access_token_lifetime: 0,
        ..ServerConfig::default()
    });
    let session = w.session();
    session.access_token().unwrap();
    let stored = crate::common::stored(&session);
    assert_eq!(stored.tokens.expires_at, None);
    w.server.clear_requests();
    // Unknown expiry: used as it is, no request.
    session.access_token().unwrap();
    assert!(w.server.requests().is_empty());
    // The server rejects it: the 401 leads to a refresh, and the request goes through.
    w.server.set_access_token_lifetime(3600);
    assert_eq!(ping(&session).unwrap(), 200);
    assert_eq!(
        w.request_lines(),
        [
            "POST /mcp",
            "GET /.well-known/oauth-protected-resource/mcp",
            "POST /token",
            "POST /mcp",
        ]
    );
}

#[test]
fn a_refresh_answer_without_a_refresh_token_keeps_the_old_one() {
    let w = World::with(ServerConfig {
        rotate_refresh_tokens: false,
        ..ServerConfig::default()
    });
    let session = w.session_with_expired_token();
    let before = crate::common::stored(&session);
    session.access_token().unwrap();
    w.expire_cached_token(&session);
    session.access_token().unwrap();
    let after = crate::common::stored(&session);
    assert_eq!(
        before.tokens.refresh_token.unwrap().secret(),
        after.tokens.refresh_token.unwrap().secret()
    );
    assert_eq!(w.requests_to(Route::Token).len(), 2, "two refreshes");
    assert!(w.requests_to(Route::Authorize).is_empty());
}

#[test]
fn token_type_is_read_in_any_case() {
    for spelling in ["bearer", "BEARER", "Bearer"] {
        let w = World::with(ServerConfig {
            token_type: spelling.into(),
            ..ServerConfig::default()
        });
        let session = w.session();
        let token = session.access_token().unwrap();
        assert_eq!(w.mcp_status(token.secret()), 200, "{spelling}");
        w.expire_cached_token(&session);
        session.access_token().unwrap();
    }
}

#[test]
fn a_revocation_endpoint_equal_to_the_token_endpoint_fails_cleanly_and_logout_forgets() {
    let w = World::with(ServerConfig {
        revocation_at_token_endpoint: true,
        ..ServerConfig::default()
    });
    let session = w.session();
    session.access_token().unwrap();
    w.server.clear_requests();
    let report = session.logout().unwrap();
    assert!(report.had_tokens);
    assert!(report.revoked.is_empty());
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    for e in &report.errors {
        assert_eq!(e.step(), Step::Revocation);
        assert_eq!(e.oauth_error(), Some("invalid_request"), "{e}");
    }
    assert_eq!(w.request_lines(), ["POST /token", "POST /token"]);
    assert!(!w.has_cached_tokens(&session));
}

/// Logs in through `session.send` after the MCP endpoint's first answer is `first`.
fn login_after(first: Fault) -> World {
    let w = World::new();
    w.server.set_fault(Route::Mcp, first.times(1));
    let session = w.session();
    assert_eq!(ping(&session).unwrap(), 200);
    w
}

#[test]
fn a_401_with_an_empty_body_and_no_challenge_is_followed_by_discovery_and_login() {
    let w = login_after(Fault::status(401));
    assert_eq!(
        w.request_lines()[..3],
        [
            "POST /mcp",
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/oauth-authorization-server",
        ]
    );
    assert_eq!(w.requests_to(Route::Authorize).len(), 1);
}

#[test]
fn a_401_whose_challenge_names_only_a_realm_is_followed_by_discovery_and_login() {
    let w = login_after(Fault::status(401).header("WWW-Authenticate", r#"Bearer realm="mcp""#));
    assert_eq!(
        w.request_lines()[1],
        "GET /.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(w.requests_to(Route::Authorize).len(), 1);
}

#[test]
fn a_registration_rate_limit_is_a_clear_error_and_a_cached_registration_spares_it() {
    let w = World::new();
    let session = w.session();
    session.access_token().unwrap();
    // From now on every registration is refused as the MCP TypeScript SDK's limiter does.
    w.server.set_fault(
        Route::Register,
        Fault::json(
            429,
            json!({"error": "too_many_requests", "error_description": "You have exceeded the rate limit"}),
        )
        .header("Retry-After", "3600"),
    );
    let fresh = crate::common::TempDir::new();
    let e = w
        .builder()
        .cache_dir(fresh.path())
        .build()
        .unwrap()
        .access_token()
        .unwrap_err();
    assert_eq!(e.step(), Step::Registration);
    assert_eq!(e.oauth_error(), Some("too_many_requests"));
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(3600)));
    assert!(
        e.to_string()
            .ends_with("; the server asks to retry after 3600 s"),
        "{e}"
    );
    assert_eq!(
        w.browser.opened(),
        1,
        "no browser for a failed registration"
    );
    // The session whose cache holds the registration logs in without registering.
    w.server.clear_requests();
    session.login().unwrap();
    assert!(w.requests_to(Route::Register).is_empty());
    assert_eq!(w.browser_authorizations().len(), 1);
}

#[test]
fn an_access_token_that_is_not_visible_ascii_is_refused_at_the_exchange() {
    for token in [
        "abc\r\nX-Injected: yes",
        "t\u{1b}[2Jx",
        "has space",
        "caf\u{e9}",
    ] {
        let w = World::new();
        w.server.set_fault(
            Route::Token,
            Fault::json(200, json!({"access_token": token, "token_type": "Bearer"})),
        );
        let session = w.session();
        let e = session.access_token().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{token:?}: {e}");
        assert_eq!(e.step(), Step::CodeExchange);
        assert!(e.to_string().contains("visible ASCII"), "{e}");
        assert!(!w.has_cached_tokens(&session));
    }
}

/// A web server that is no MCP server and no OAuth server (`python3 -m http.server`): 404 for
/// every GET, 501 for anything else.
pub(crate) fn plain_web_server() -> crate::hostile::RawServer {
    crate::hostile::RawServer::start(|request, stream| {
        let status = if request.starts_with(b"GET ") {
            "404 File not found"
        } else {
            "501 Unsupported method"
        };
        let _ = std::io::Write::write_all(
            stream,
            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
    })
}

/// Whether `web` received a registration request.
pub(crate) fn registered_at(web: &crate::hostile::RawServer) -> bool {
    web.requests()
        .iter()
        .any(|r| r.starts_with(b"POST /register"))
}

#[test]
fn a_web_server_without_oauth_is_said_to_offer_none_before_any_registration() {
    let web = plain_web_server();
    let cache = crate::common::TempDir::new();
    let session = mcp_oauth_client::Session::builder(web.url("/mcp"))
        .cache_dir(cache.path())
        .build()
        .unwrap();
    let e = session.access_token().unwrap_err();
    assert!(
        e.to_string().contains("does not offer OAuth for MCP"),
        "{e}"
    );
    assert!(e.to_string().contains("HTTP 501"), "{e}");
    assert_ne!(e.step(), Step::Registration, "{e}");
    // Asked to refresh with nothing cached: the same, not a registration at `/register`.
    let e = session.refresh().unwrap_err();
    assert!(
        e.to_string().contains("does not offer OAuth for MCP"),
        "{e}"
    );
    assert!(!registered_at(&web));
}
