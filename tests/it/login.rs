//! The first login and the cached-token path.

use std::time::Duration;

use mcp_oauth_client::BrowserStep;
use mcp_oauth_client::testing::{Route, ServerConfig, follow_redirects};
use mcp_oauth_client::{AuthMethod, ErrorKind, Step};

use crate::common::{World, free_port, register_out_of_band};

#[test]
fn first_login_sends_prm_as_metadata_register_authorize_token_in_order() {
    let w = World::new();
    let session = w.session();
    let token = session.access_token().unwrap();

    assert_eq!(
        w.request_lines(),
        [
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/oauth-authorization-server",
            "POST /register",
            "GET /authorize",
            "POST /token",
        ]
    );
    // The browser landed on our success page.
    let visits = w.browser.wait_for_visits(1, Duration::from_secs(5));
    let visit = visits[0].as_ref().unwrap();
    assert_eq!(visit.status, 200);
    assert!(visit.body.contains("Signed in"), "{}", visit.body);
    assert_eq!(visit.header("x-frame-options"), Some("DENY"));
    assert!(
        visit
            .header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    // The token is accepted by the MCP endpoint.
    assert_eq!(w.mcp_status(token.secret()), 200);
    assert_eq!(w.mcp_status("not-a-token"), 401);
}

#[test]
fn registration_is_native_public_with_refresh_grant() {
    let w = World::new();
    w.session().access_token().unwrap();
    let register = &w.requests_to(Route::Register)[0];
    let body: serde_json::Value = serde_json::from_str(&register.body).unwrap();
    assert_eq!(body["application_type"], "native");
    assert_eq!(body["client_name"], "mcp-oauth-client");
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(
        body["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    let redirect = body["redirect_uris"][0].as_str().unwrap();
    assert!(redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"));
}

#[test]
fn client_metadata_and_name_reach_the_registration() {
    let w = World::new();
    w.builder()
        .client_name("my tool")
        .client_metadata(serde_json::json!({"logo_uri": "https://example.com/logo.png"}))
        .build()
        .unwrap()
        .access_token()
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_str(&w.requests_to(Route::Register)[0].body).unwrap();
    assert_eq!(body["client_name"], "my tool");
    assert_eq!(body["logo_uri"], "https://example.com/logo.png");
}

#[test]
fn second_session_on_same_cache_with_valid_token_makes_zero_requests() {
    let w = World::new();
    let first = w.session().access_token().unwrap();
    w.server.clear_requests();

    let second = w.session().access_token().unwrap();
    assert_eq!(second.secret(), first.secret());
    assert!(w.server.requests().is_empty(), "{:?}", w.request_lines());
    assert_eq!(w.browser.opened(), 1);
}

#[test]
fn a_later_login_reuses_the_cached_client_and_its_port() {
    let w = World::new();
    let session = w.session();
    session.access_token().unwrap();
    w.server.clear_requests();
    session.login().unwrap();
    assert_eq!(
        w.request_lines(),
        [
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/oauth-authorization-server",
            // The check that the server knows the cached client, then the browser.
            "GET /authorize",
            "GET /authorize",
            "POST /token",
        ]
    );
    assert_eq!(w.server.registered_clients(), 1);
}

#[test]
fn callback_with_wrong_state_is_answered_and_ignored_then_the_right_one_completes() {
    let w = World::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let session = w
        .builder()
        .authorize_hook(move |step: &BrowserStep| {
            let url = &step.authorization_url;
            let redirect = url
                .query_pairs()
                .find(|(k, _)| k == "redirect_uri")
                .map(|(_, v)| v.into_owned())
                .unwrap();
            let forged = url::Url::parse(&format!("{redirect}?code=forged&state=wrong")).unwrap();
            let real = url.clone();
            let tx = tx.clone();
            // An attacker's (or a stale tab's) response reaches the real listener first; only
            // once it has been answered does the real approval follow.
            std::thread::spawn(move || {
                tx.send(follow_redirects(&forged)).unwrap();
                tx.send(follow_redirects(&real)).unwrap();
            });
        })
        .build()
        .unwrap();
    let token = session.access_token().unwrap();
    let forged = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    let approved = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(approved.status, 200);
    assert_eq!(forged.status, 400);
    assert!(
        forged
            .body
            .contains("does not belong to the login in progress")
    );
    // Only the real code was redeemed.
    let token_requests = w.requests_to(Route::Token);
    assert_eq!(token_requests.len(), 1);
    assert_ne!(
        token_requests[0].form_param("code").as_deref(),
        Some("forged")
    );
    assert_eq!(w.mcp_status(token.secret()), 200);
}

#[test]
fn access_denied_on_the_callback_is_a_typed_error_naming_access_denied() {
    let w = World::with(ServerConfig {
        deny_authorization: true,
        ..ServerConfig::default()
    });
    let e = w.session().access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OAuth);
    assert_eq!(e.step(), Step::Callback);
    assert_eq!(e.oauth_error(), Some("access_denied"));
    assert!(e.is_access_denied());
    assert!(e.to_string().contains("access_denied"), "{e}");
    assert!(w.requests_to(Route::Token).is_empty());
    let visits = w.browser.wait_for_visits(1, Duration::from_secs(5));
    let page = visits[0].as_ref().unwrap();
    assert_eq!(page.status, 400);
    assert!(page.body.contains("access_denied"));
    assert!(
        w.session()
            .file_store()
            .unwrap()
            .load_tokens(&w.server.mcp_url())
            .unwrap()
            .is_none()
    );
}

#[test]
fn no_callback_within_the_timeout_is_a_timeout_error() {
    let w = World::new();
    let session = w
        .builder()
        .authorize_hook(|_: &BrowserStep| {}) // the user never comes back
        .callback_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let e = session.access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(e.step(), Step::Callback);
}

#[test]
fn issuer_with_a_path_is_discovered_through_the_fallback_order() {
    use mcp_oauth_client::testing::AsMetadataPaths;
    let w = World::with(ServerConfig {
        issuer_path: "/tenant1".into(),
        as_metadata_paths: AsMetadataPaths::OpenIdAppended,
        ..ServerConfig::default()
    });
    w.session().access_token().unwrap();
    let lines = w.request_lines();
    assert_eq!(
        lines[..4],
        [
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/oauth-authorization-server/tenant1",
            "GET /.well-known/openid-configuration/tenant1",
            "GET /tenant1/.well-known/openid-configuration",
        ]
    );
    assert_eq!(
        lines[4..],
        [
            "POST /tenant1/register",
            "GET /tenant1/authorize",
            "POST /tenant1/token"
        ]
    );
}

#[test]
fn server_without_resource_metadata_uses_the_2025_03_26_fallback() {
    let w = World::with(ServerConfig {
        serve_resource_metadata: false,
        resource_metadata_in_challenge: false,
        ..ServerConfig::default()
    });
    let token = w.session().access_token().unwrap();
    assert_eq!(
        w.request_lines(),
        [
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/oauth-protected-resource",
            "GET /.well-known/oauth-authorization-server",
            "POST /register",
            "GET /authorize",
            "POST /token",
        ]
    );
    assert_eq!(w.mcp_status(token.secret()), 200);
}

#[test]
fn pre_registered_client_skips_registration_and_authenticates() {
    let w = World::new();
    let port = free_port();
    let client = register_out_of_band(&w, port, AuthMethod::ClientSecretBasic);
    w.server.clear_requests();

    // The server offers both secret methods; this client was registered for Basic only.
    let session = w
        .builder()
        .client_id(&client.client_id)
        .client_secret(client.client_secret.as_ref().unwrap().secret())
        .client_auth_method(AuthMethod::ClientSecretBasic)
        .callback_port(port)
        .build()
        .unwrap();
    session.access_token().unwrap();
    assert!(w.requests_to(Route::Register).is_empty());
    let token = &w.requests_to(Route::Token)[0];
    assert!(token.header("authorization").unwrap().starts_with("Basic "));
    assert_eq!(
        token.form_param("client_id").as_deref(),
        Some(client.client_id.as_str())
    );
    assert_eq!(token.form_param("client_secret"), None);
}

#[test]
fn a_pre_registered_secret_goes_in_the_body_when_the_server_offers_both_methods() {
    let w = World::new();
    let port = free_port();
    let client = register_out_of_band(&w, port, AuthMethod::ClientSecretPost);
    let secret = client.client_secret.as_ref().unwrap().secret();
    let session = w
        .builder()
        .client_id(&client.client_id)
        .client_secret(secret)
        .callback_port(port)
        .build()
        .unwrap();
    let token = session.access_token().unwrap();
    assert_eq!(w.mcp_status(token.secret()), 200);
    let exchange = &w.requests_to(Route::Token)[0];
    assert_eq!(exchange.header("authorization"), None);
    assert_eq!(
        exchange.form_param("client_id").as_deref(),
        Some(client.client_id.as_str())
    );
    assert_eq!(
        exchange.form_param("client_secret").as_deref(),
        Some(secret)
    );
}

#[test]
fn session_is_send_and_sync_and_concurrent_callers_share_one_login() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<mcp_oauth_client::Session>();

    let w = World::new();
    let session = std::sync::Arc::new(w.session());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = std::sync::Arc::clone(&session);
            std::thread::spawn(move || s.access_token().unwrap().secret().to_owned())
        })
        .collect();
    let tokens: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        tokens.windows(2).all(|p| p[0] == p[1]),
        "one login, one token"
    );
    assert_eq!(w.browser.opened(), 1);
    assert_eq!(w.requests_to(Route::Token).len(), 1);
}

#[test]
fn callback_host_localhost_is_used_in_the_redirect_uri() {
    let w = World::new();
    w.builder()
        .callback_host(mcp_oauth_client::CallbackHost::Localhost)
        .build()
        .unwrap()
        .access_token()
        .unwrap();
    let redirect = w.requests_to(Route::Authorize)[0]
        .query_param("redirect_uri")
        .unwrap()
        .to_owned();
    assert!(redirect.starts_with("http://localhost:"), "{redirect}");
}

#[test]
fn a_registration_refused_for_its_scope_is_retried_once_without_it() {
    let w = World::new();
    w.server.set_fault(
        Route::Register,
        mcp_oauth_client::testing::Fault::oauth_error(400, "invalid_client_metadata").times(1),
    );
    let token = w.session().access_token().unwrap();
    let registers = w.requests_to(Route::Register);
    assert_eq!(registers.len(), 2);
    let first: serde_json::Value = serde_json::from_str(&registers[0].body).unwrap();
    let second: serde_json::Value = serde_json::from_str(&registers[1].body).unwrap();
    assert_eq!(first["scope"], "mcp:read mcp:write offline_access");
    assert!(second.get("scope").is_none());
    assert_eq!(w.mcp_status(token.secret()), 200);
}

#[test]
fn offline_access_is_asked_for_with_prompt_consent() {
    let w = World::new();
    w.session().access_token().unwrap();
    let authorize = &w.requests_to(Route::Authorize)[0];
    assert_eq!(authorize.query_param("prompt"), Some("consent"));
}

/// A resource metadata document of `w`'s server naming `servers` as its authorization servers.
fn naming_servers(w: &World, servers: &[String]) {
    let mut prm = crate::common::get_json(&format!(
        "{}.well-known/oauth-protected-resource/mcp",
        w.server.base_url()
    ));
    prm["authorization_servers"] = serde_json::json!(servers);
    w.server.set_fault(
        Route::ResourceMetadata,
        mcp_oauth_client::testing::Fault::json(200, prm),
    );
}

/// Two authorization servers a browser login cannot use: an issuer without metadata (beside
/// `w`'s), and a running server without PKCE S256.
fn unusable_servers(w: &World) -> (String, mcp_oauth_client::testing::TestServer) {
    let no_pkce = mcp_oauth_client::testing::TestServer::start_with(ServerConfig {
        code_challenge_methods: None,
        ..ServerConfig::default()
    })
    .unwrap();
    (format!("{}/missing", w.server.issuer()), no_pkce)
}

#[test]
fn of_several_authorization_servers_the_first_usable_one_is_chosen() {
    let w = World::new();
    // One without metadata, one without PKCE S256, then the usable one.
    let (missing, no_pkce) = unusable_servers(&w);
    naming_servers(&w, &[missing, no_pkce.issuer(), w.server.issuer()]);
    let session = w.session();
    session.access_token().unwrap();
    assert_eq!(crate::common::stored(&session).issuer, w.server.issuer());
    assert_eq!(w.requests_to(Route::Authorize).len(), 1);
    let routes: Vec<_> = no_pkce.requests().into_iter().map(|r| r.route).collect();
    assert_eq!(routes, [Some(Route::AuthServerMetadata)], "read, then left");
}

#[test]
fn when_no_authorization_server_can_be_used_the_error_names_each() {
    let w = World::new();
    let (missing, no_pkce) = unusable_servers(&w);
    naming_servers(&w, &[missing.clone(), no_pkce.issuer()]);
    let e = w.session().access_token().unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("none of the 2 authorization servers"),
        "{text}"
    );
    assert!(
        text.contains(&missing) && text.contains(&no_pkce.issuer()),
        "{text}"
    );
    assert!(text.contains("S256"), "{text}");
    assert!(w.requests_to(Route::Authorize).is_empty());
}

#[test]
fn a_cached_client_the_server_forgot_is_registered_anew_before_the_browser_opens() {
    let w = World::new();
    let session = w.session();
    session.access_token().unwrap();
    // The authorization server restarts and forgets its clients and tokens; the person logs
    // in again (the refresh token is gone too).
    w.server.forget_everything();
    for name in crate::common::names(w.cache.path()) {
        if name.ends_with("_tokens.json") {
            std::fs::remove_file(w.cache.path().join(name)).unwrap();
        }
    }
    w.server.clear_requests();
    let started = std::time::Instant::now();
    let again = w.session();
    assert_eq!(
        crate::common::ping(&again).unwrap(),
        200,
        "{:?}",
        w.request_lines()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(w.browser.opened(), 2, "one window for each login");
    // The cached client checked (a 400), a new registration, one login.
    let lines = w.request_lines();
    let authorize: Vec<_> = lines.iter().filter(|l| l.contains("/authorize")).collect();
    assert_eq!(authorize.len(), 2, "{lines:?}");
    assert_eq!(w.requests_to(Route::Register).len(), 1, "{lines:?}");
    let at = |part: &str| lines.iter().position(|l| l.contains(part)).unwrap();
    assert!(
        at("/authorize") < at("/register"),
        "checked before registering: {lines:?}"
    );
}

#[test]
fn a_cached_client_the_server_knows_is_checked_once_and_kept() {
    let w = World::new();
    w.session().access_token().unwrap();
    let session = w.session();
    w.server.clear_requests();
    session.login().unwrap();
    assert!(w.requests_to(Route::Register).is_empty());
    let authorize = w.requests_to(Route::Authorize);
    assert_eq!(authorize.len(), 2, "the check, then the browser's");
    // The check never carries what the browser's request carries.
    let param = |i: usize, name: &str| authorize[i].query_param(name);
    assert_ne!(param(0, "state"), param(1, "state"));
    assert_ne!(param(0, "code_challenge"), param(1, "code_challenge"));
    assert_eq!(param(0, "client_id"), param(1, "client_id"));
}
