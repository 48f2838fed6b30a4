//! DPoP (RFC 9449) against the embedded server: tokens bound to the session's key, proofs on
//! token, refresh and MCP requests, nonces from both servers retried once each, the key kept
//! with the tokens across a restart.

use mcp_oauth_client::testing::{Fault, McpDpop, NonceChallenges, Route, ServerConfig};
use mcp_oauth_client::{ErrorKind, OAuthErrorCode};

use crate::common::{World, ping};

fn dpop_world(nonces: bool) -> World {
    World::with(ServerConfig {
        dpop: true,
        dpop_nonces: nonces,
        ..ServerConfig::default()
    })
}

#[test]
fn a_bound_token_is_refused_with_the_bearer_scheme_and_accepted_with_dpop() {
    let w = dpop_world(false);
    let session = w.session();
    assert_eq!(ping(&session).unwrap(), 200);
    let mcp = w.requests_to(Route::Mcp);
    let last = mcp.last().unwrap();
    assert!(last.header("authorization").unwrap().starts_with("DPoP "));
    assert!(last.header("dpop").is_some());
    let exchange = &w.requests_to(Route::Token)[0];
    assert!(
        exchange.header("dpop").is_some(),
        "the code exchange carries a proof"
    );
    let stored = crate::common::stored(&session);
    assert!(stored.tokens.is_dpop() && stored.dpop_key.is_some());

    let token = session.access_token().unwrap();
    // As Bearer: refused.
    assert_eq!(w.mcp_status(token.secret()), 401);
    let e = session.authorization_header().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ProofRequired, "{e}");
    // With the DPoP scheme and a proof: accepted; the same proof again: a replay, refused.
    let headers: Vec<(&str, String)> = session
        .request_headers("POST", w.server.mcp_url().as_str())
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.secret().to_owned()))
        .collect();
    assert_eq!(w.ping_with(&headers), 200);
    assert_eq!(w.ping_with(&headers), 401);
    // With the DPoP scheme but no proof: refused.
    assert_eq!(w.ping_with(&headers[..1]), 401);
}

#[test]
fn the_key_is_kept_with_the_tokens_so_a_new_process_uses_them_and_refreshes_them() {
    let w = dpop_world(false);
    assert_eq!(ping(&w.session()).unwrap(), 200);
    w.server.clear_requests();
    // A new session, as a new process: the cached bound token works without a token request.
    let again = w.session();
    assert_eq!(ping(&again).unwrap(), 200);
    assert!(
        w.requests_to(Route::Token).is_empty(),
        "{:?}",
        w.request_lines()
    );
    // Expired: the refresh carries a proof by the same key (the server refuses another key).
    w.expire_cached_token(&again);
    let restarted = w.session();
    assert_eq!(ping(&restarted).unwrap(), 200);
    let refresh = &w.requests_to(Route::Token)[0];
    assert_eq!(
        refresh.form_param("grant_type").as_deref(),
        Some("refresh_token")
    );
    assert!(refresh.header("dpop").is_some());
    assert!(w.requests_to(Route::Authorize).is_empty());
}

#[test]
fn nonces_from_the_token_endpoint_and_the_mcp_server_are_each_retried_once() {
    let w = dpop_world(true);
    let session = w.session();
    assert_eq!(ping(&session).unwrap(), 200);
    assert_eq!(
        w.server.nonce_challenges(),
        NonceChallenges { token: 1, mcp: 1 }
    );
    // The code exchange went twice (the second with the nonce), the code spent only once.
    assert_eq!(w.requests_to(Route::Token).len(), 2);
    assert_eq!(w.requests_to(Route::Authorize).len(), 1);

    // Known nonces go on the next requests: no more challenges.
    w.server.clear_requests();
    assert_eq!(ping(&session).unwrap(), 200);
    assert_eq!(w.requests_to(Route::Mcp).len(), 1);

    // Stale nonces: one challenge and one retry at each server, no new login.
    w.server.rotate_dpop_nonces();
    w.server.clear_requests();
    assert_eq!(ping(&session).unwrap(), 200);
    assert_eq!(w.requests_to(Route::Mcp).len(), 2);
    assert!(w.requests_to(Route::Token).is_empty());
    w.server.rotate_dpop_nonces();
    w.expire_cached_token(&session);
    w.server.clear_requests();
    assert_eq!(ping(&session).unwrap(), 200);
    let refreshes = w.requests_to(Route::Token);
    assert_eq!(refreshes.len(), 2, "{:?}", w.request_lines());
    assert!(
        refreshes
            .iter()
            .all(|r| r.form_param("grant_type").as_deref() == Some("refresh_token"))
    );
    assert_eq!(
        w.server.nonce_challenges(),
        NonceChallenges { token: 2, mcp: 3 }
    );
}

#[test]
fn a_server_that_keeps_asking_for_a_nonce_gets_one_retry_then_an_error_not_a_login() {
    let w = dpop_world(false);
    let session = w.session();
    assert_eq!(ping(&session).unwrap(), 200);
    w.server.clear_requests();
    w.server.set_fault(
        Route::Mcp,
        Fault::json(401, serde_json::json!({"error": "use_dpop_nonce"}))
            .header("WWW-Authenticate", "DPoP error=\"use_dpop_nonce\"")
            .header("DPoP-Nonce", "n-1"),
    );
    let e = ping(&session).unwrap_err();
    assert_eq!(
        e.oauth_code(),
        Some(OAuthErrorCode::Other("use_dpop_nonce".into())),
        "{e}"
    );
    let mcp = w.requests_to(Route::Mcp);
    assert_eq!(mcp.len(), 2, "exactly one retry");
    let proof = mcp[1].header("dpop").unwrap();
    let (_, claims, _, _) = mcp_oauth_client::jwt::decode_unverified(proof).unwrap();
    assert_eq!(claims["nonce"], "n-1", "the retry carries the nonce");
    assert!(w.requests_to(Route::Token).is_empty() && w.requests_to(Route::Authorize).is_empty());
}

#[test]
fn dpop_turned_off_gets_bearer_tokens_from_a_dpop_server() {
    let w = dpop_world(false);
    let session = w.builder().dpop(false).build().unwrap();
    assert_eq!(ping(&session).unwrap(), 200);
    assert!(w.requests_to(Route::Token)[0].header("dpop").is_none());
    let token = session.access_token().unwrap();
    assert_eq!(w.mcp_status(token.secret()), 200);
    assert!(session.authorization_header().is_ok());
}

#[test]
fn a_client_credentials_grant_binds_its_token_too() {
    let w = dpop_world(true);
    w.server
        .add_client("svc", "client_secret_post", Some("s3cret"), None);
    let session = w.service_builder("svc", "s3cret").build().unwrap();
    assert_eq!(ping(&session).unwrap(), 200);
    assert!(crate::common::stored(&session).tokens.is_dpop());
    let grants = w.requests_to(Route::Token);
    assert_eq!(grants.len(), 2, "one nonce retry");
    assert!(grants.iter().all(|r| r.header("dpop").is_some()));
    assert_eq!(
        w.server.nonce_challenges(),
        NonceChallenges { token: 1, mcp: 1 }
    );
}

#[test]
fn proofs_are_taken_by_a_server_whose_clock_lags_and_that_allows_no_future_iat() {
    // The server's clock is 0.9 s behind and read in whole seconds: a proof stamped with this
    // machine's second is "in the future" there nine times in ten.
    let w = World::with(ServerConfig {
        dpop: true,
        dpop_strict_clock_lag_ms: Some(900),
        ..ServerConfig::default()
    });
    let session = w.session();
    for _ in 0..5 {
        assert_eq!(ping(&session).unwrap(), 200, "{:?}", w.request_lines());
    }
    assert!(crate::common::stored(&session).tokens.is_dpop());
    assert_eq!(w.requests_to(Route::Authorize).len(), 1);
}

/// A DPoP-advertising authorization server in front of an MCP endpoint that makes of DPoP
/// what `mcp` says.
fn mixed_world(mcp: McpDpop) -> World {
    World::with(ServerConfig {
        dpop: true,
        mcp_dpop: mcp,
        ..ServerConfig::default()
    })
}

#[test]
fn a_bearer_only_mcp_server_behind_a_dpop_authorization_server_gets_bearer_tokens() {
    let w = mixed_world(McpDpop::Refused);
    // With a 401 first, and without one (a login before any MCP request).
    let through_401 = w.session();
    assert_eq!(ping(&through_401).unwrap(), 200, "{:?}", w.request_lines());
    let cache = crate::common::TempDir::new();
    let direct = w.builder().cache_dir(cache.path()).build().unwrap();
    let token = direct.access_token().unwrap();
    assert_eq!(w.mcp_status(token.secret()), 200);
    for session in [&through_401, &direct] {
        assert!(!crate::common::stored(session).tokens.is_dpop());
        assert!(session.authorization_header().is_ok());
    }
    assert!(
        w.requests_to(Route::Token)
            .iter()
            .all(|r| r.header("dpop").is_none()),
        "no token request carries a proof"
    );
    assert_eq!(w.requests_to(Route::Authorize).len(), 2);
}

#[test]
fn a_bound_token_refused_by_a_bearer_only_server_leads_to_one_bearer_login_not_a_loop() {
    // The resource metadata says DPoP, the endpoint takes Bearer tokens only.
    let w = mixed_world(McpDpop::Misadvertised);
    let session = w.session();
    session.access_token().unwrap();
    assert!(
        crate::common::stored(&session).tokens.is_dpop(),
        "bound, as the metadata says"
    );
    assert_eq!(ping(&session).unwrap(), 200, "{:?}", w.request_lines());
    let stored = crate::common::stored(&session);
    assert!(!stored.tokens.is_dpop() && stored.dpop_key.is_none());
    let exchanges = w.requests_to(Route::Token);
    assert_eq!(exchanges.len(), 2, "{:?}", w.request_lines());
    assert!(exchanges[0].header("dpop").is_some() && exchanges[1].header("dpop").is_none());
    // Later requests, and a new process, use the Bearer token: no more logins.
    assert_eq!(ping(&session).unwrap(), 200);
    assert_eq!(ping(&w.session()).unwrap(), 200);
    assert_eq!(w.browser_authorizations().len(), 2);
}

#[test]
fn a_session_told_to_bind_is_refused_by_a_bearer_only_server_after_one_login() {
    let w = mixed_world(McpDpop::Refused);
    let session = w.builder().dpop(true).build().unwrap();
    let e = ping(&session).unwrap_err();
    assert_eq!(e.oauth_error(), Some("invalid_token"), "{e}");
    assert_eq!(w.browser_authorizations().len(), 1, "no second login");
}

#[test]
fn a_server_that_requires_dpop_gets_bound_tokens_and_a_session_that_never_binds_is_told_so() {
    let w = mixed_world(McpDpop::Required);
    let session = w.session();
    assert_eq!(ping(&session).unwrap(), 200);
    assert!(crate::common::stored(&session).tokens.is_dpop());
    let token = session.access_token().unwrap();
    assert_eq!(w.mcp_status(token.secret()), 401);

    // Without binding: refused before any browser opens.
    w.server.clear_requests();
    let cache = crate::common::TempDir::new();
    let bearer = w
        .builder()
        .cache_dir(cache.path())
        .dpop(false)
        .build()
        .unwrap();
    for e in [
        bearer.access_token().unwrap_err(),
        ping(&bearer).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::ProofRequired, "{e}");
        assert!(e.to_string().contains("DPoP-bound tokens only"), "{e}");
    }
    assert!(w.requests_to(Route::Authorize).is_empty());
}

#[test]
fn a_session_that_never_binds_does_not_use_a_cached_bound_token() {
    let w = mixed_world(McpDpop::Accepted);
    let session = w.session();
    assert_eq!(ping(&session).unwrap(), 200);
    assert!(crate::common::stored(&session).tokens.is_dpop());
    // Another program wants a Bearer token: one login gets it, and it is cached.
    let bearer = w.builder().dpop(false).build().unwrap();
    let token = bearer.access_token().unwrap();
    assert_eq!(w.mcp_status(token.secret()), 200);
    assert!(!crate::common::stored(&bearer).tokens.is_dpop());
    assert_eq!(w.browser_authorizations().len(), 2);
    // The binding session takes the Bearer token as it is.
    assert_eq!(ping(&w.session()).unwrap(), 200);
    assert_eq!(w.browser_authorizations().len(), 2);
}
