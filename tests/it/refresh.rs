//! Expired tokens: one refresh, no browser; rejected refresh: a full login; rotation.

use mcp_oauth_client::testing::{Fault, Route};

use crate::common::World;

#[test]
fn expired_token_makes_exactly_one_refresh_request_and_no_browser() {
    let w = World::new();
    let session = w.session();
    let first = session.access_token().unwrap();
    w.expire_cached_token(&session);
    w.server.clear_requests();

    let second = session.access_token().unwrap();
    assert_ne!(second.secret(), first.secret());
    assert_eq!(w.request_lines(), ["POST /token"]);
    let refresh = &w.requests_to(Route::Token)[0];
    assert_eq!(
        refresh.form_param("grant_type").as_deref(),
        Some("refresh_token")
    );
    assert_eq!(
        w.browser.opened(),
        1,
        "the browser opened only for the first login"
    );
    assert_eq!(w.mcp_status(second.secret()), 200);
}

#[test]
fn invalid_grant_on_refresh_falls_back_to_a_full_login() {
    let w = World::new();
    let session = w.session_with_expired_token();
    w.server.set_fault(
        Route::Token,
        Fault::oauth_error(400, "invalid_grant").times(1),
    );

    let token = session.access_token().unwrap();
    assert_eq!(
        w.request_lines(),
        [
            "POST /token",
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/oauth-authorization-server",
            // The check that the server knows the cached client, then the browser.
            "GET /authorize",
            "GET /authorize",
            "POST /token",
        ]
    );
    assert_eq!(w.browser.opened(), 2);
    assert_eq!(w.mcp_status(token.secret()), 200);
}

#[test]
fn a_refresh_failing_for_another_reason_is_an_error_and_keeps_the_stored_tokens() {
    let w = World::new();
    let session = w.session();
    session.access_token().unwrap();
    w.expire_cached_token(&session);
    let before = std::fs::read(
        session
            .file_store()
            .unwrap()
            .tokens_path(session.server_url()),
    )
    .unwrap();
    w.server
        .set_fault(Route::Token, Fault::status(503).times(1));

    let e = session.access_token().unwrap_err();
    assert_eq!(e.step(), mcp_oauth_client::Step::Refresh);
    assert_eq!(e.kind(), mcp_oauth_client::ErrorKind::Status);
    assert_eq!(w.browser.opened(), 1, "no browser for a server hiccup");
    let after = std::fs::read(
        session
            .file_store()
            .unwrap()
            .tokens_path(session.server_url()),
    )
    .unwrap();
    assert_eq!(before, after);
    // The grant is intact: the next call refreshes.
    session.access_token().unwrap();
}

#[test]
fn a_rotated_refresh_token_is_stored_before_it_is_used_again() {
    let w = World::new();
    let session = w.session();
    session.access_token().unwrap();
    let storage = session.file_store().unwrap();
    let url = session.server_url();
    let mut spent = Vec::new();
    for _ in 0..3 {
        w.expire_cached_token(&session);
        let stored = storage.load_tokens(url).unwrap().unwrap();
        let current = stored.tokens.refresh_token.unwrap().secret().to_owned();
        w.server.clear_requests();
        session.access_token().unwrap();
        // The refresh spent exactly the stored token ...
        let sent = w.requests_to(Route::Token)[0]
            .form_param("refresh_token")
            .unwrap_or_else(|| panic!("no refresh; the requests: {:?}", w.request_lines()));
        assert_eq!(sent, current);
        assert!(!spent.contains(&sent), "a refresh token was spent twice");
        spent.push(sent);
        // ... and the rotated one is on disk before anything else happens.
        let rotated = storage.load_tokens(url).unwrap().unwrap();
        assert_ne!(rotated.tokens.refresh_token.unwrap().secret(), current);
    }
    assert_eq!(w.browser.opened(), 1);
}

#[test]
fn invalid_client_on_refresh_registers_a_new_client() {
    let w = World::new();
    let session = w.session_with_expired_token();
    w.server.set_fault(
        Route::Token,
        Fault::oauth_error(401, "invalid_client").times(1),
    );
    session.access_token().unwrap();
    let lines = w.request_lines();
    assert_eq!(lines[0], "POST /token");
    assert!(lines.contains(&"POST /register".to_string()), "{lines:?}");
    assert_eq!(w.server.registered_clients(), 2);
}
