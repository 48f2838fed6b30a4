//! What providers and networks ask of a login (issue "What people ask of an MCP login"): a
//! pinned callback, extra authorization parameters, leaving out `resource`.

use mcp_oauth_client::testing::Route;
use mcp_oauth_client::{CallbackHost, ErrorKind};

use crate::common::{World, free_port, ping};

#[test]
fn a_pinned_callback_uses_the_host_port_and_path_it_was_given() {
    let w = World::new();
    let port = free_port();
    let session = w
        .builder()
        .callback_host(CallbackHost::Localhost)
        .callback_port(port)
        .callback_path("/oauth/callback")
        .build()
        .unwrap();
    assert_eq!(ping(&session).unwrap(), 200);
    let expected = format!("http://localhost:{port}/oauth/callback");
    let register: serde_json::Value =
        serde_json::from_str(&w.requests_to(Route::Register)[0].body).unwrap();
    assert_eq!(register["redirect_uris"], serde_json::json!([expected]));
    let authorize = &w.requests_to(Route::Authorize)[0];
    assert_eq!(
        authorize.query_param("redirect_uri"),
        Some(expected.as_str())
    );
    let exchange = &w.requests_to(Route::Token)[0];
    assert_eq!(
        exchange.form_param("redirect_uri").as_deref(),
        Some(expected.as_str())
    );
}

#[test]
fn a_busy_pinned_port_is_an_error_naming_it() {
    let w = World::new();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let session = w.builder().callback_port(port).build().unwrap();
    let e = session.access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(w.requests_to(Route::Authorize).is_empty());
}

#[test]
fn a_callback_path_that_is_not_a_path_is_refused_at_build() {
    let w = World::new();
    for bad in ["callback", "/cb?x=1", "/start/abc", "/a b"] {
        let e = w.builder().callback_path(bad).build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
    }
}

#[test]
fn extra_authorization_parameters_go_in_the_authorization_url_only() {
    let w = World::new();
    let session = w
        .builder()
        .authorize_param("access_type", "offline")
        .authorize_param("login_hint", "ada@example.com")
        .build()
        .unwrap();
    assert_eq!(ping(&session).unwrap(), 200);
    let authorize = &w.requests_to(Route::Authorize)[0];
    assert_eq!(authorize.query_param("access_type"), Some("offline"));
    assert_eq!(authorize.query_param("login_hint"), Some("ada@example.com"));
    // Refresh too, then look at every request but the authorization one.
    w.expire_cached_token(&session);
    assert_eq!(ping(&session).unwrap(), 200);
    let others = w.requests_except(Route::Authorize);
    assert!(others.len() >= 5, "{:?}", w.request_lines());
    for r in others {
        assert!(
            !r.body.contains("access_type") && !r.body.contains("login_hint"),
            "{} {}",
            r.path,
            r.body
        );
        assert!(r.query_param("access_type").is_none());
    }
    // A parameter the request sets itself is refused when the session is built.
    for own in [
        "state",
        "redirect_uri",
        "code_challenge",
        "client_id",
        "resource",
        "scope",
        // Those that replace the request's parameters, or how the answer comes back.
        "request",
        "request_uri",
        "response_mode",
    ] {
        let e = w.builder().authorize_param(own, "x").build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{own}: {e}");
    }
}

#[test]
fn omitting_the_resource_leaves_it_out_of_authorization_exchange_and_refresh() {
    let w = World::new();
    let session = w.builder().omit_resource(true).build().unwrap();
    assert_eq!(ping(&session).unwrap(), 200);
    w.expire_cached_token(&session);
    assert_eq!(ping(&session).unwrap(), 200);
    let authorize = &w.requests_to(Route::Authorize)[0];
    assert!(authorize.query_param("resource").is_none());
    let tokens = w.requests_to(Route::Token);
    assert_eq!(tokens.len(), 2, "exchange and refresh");
    for r in &tokens {
        assert!(r.form_param("resource").is_none(), "{}", r.body);
    }
    assert!(crate::common::stored(&session).resource.is_none());
    // By default it is in all three.
    let w = World::new();
    let session = w.session();
    assert_eq!(ping(&session).unwrap(), 200);
    w.expire_cached_token(&session);
    assert_eq!(ping(&session).unwrap(), 200);
    let mcp = w.server.mcp_url().to_string();
    assert_eq!(
        w.requests_to(Route::Authorize)[0].query_param("resource"),
        Some(mcp.as_str())
    );
    for r in w.requests_to(Route::Token) {
        assert_eq!(r.form_param("resource").as_deref(), Some(mcp.as_str()));
    }
}
