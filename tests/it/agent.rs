//! Requests through the session's agent: the bearer on the server's origin only, a 401 that
//! starts the flow, step-up on 403 `insufficient_scope`, and the retry limit.

use mcp_oauth_client::testing::{Fault, Route, TestServer};
use mcp_oauth_client::{ErrorKind, MAX_AUTHORIZATIONS, Step};

use crate::common::{PING, World, ping};

#[test]
fn a_401_starts_the_login_and_the_request_is_sent_again() {
    let w = World::new();
    let session = w.session();
    assert_eq!(ping(&session).unwrap(), 200);
    assert_eq!(
        w.request_lines(),
        [
            "POST /mcp",
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/oauth-authorization-server",
            "POST /register",
            "GET /authorize",
            "POST /token",
            "POST /mcp",
        ]
    );
    let mcp = w.requests_to(Route::Mcp);
    assert_eq!(mcp[0].header("authorization"), None);
    assert!(
        mcp[1]
            .header("authorization")
            .unwrap()
            .starts_with("Bearer ")
    );
    // The token stays: the next request carries it with no flow.
    w.server.clear_requests();
    assert_eq!(ping(&session).unwrap(), 200);
    assert_eq!(w.request_lines(), ["POST /mcp"]);
}

#[test]
fn the_agent_alone_adds_a_cached_token_but_never_opens_a_browser() {
    let w = World::new();
    let session = w.session();
    let call = || {
        session
            .agent()
            .post(session.server_url().as_str())
            .content_type("application/json")
            .send(PING)
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        call(),
        401,
        "no token yet: the 401 comes back to the caller"
    );
    assert_eq!(w.browser.opened(), 0);
    session.access_token().unwrap();
    assert_eq!(call(), 200);
}

#[test]
fn a_403_insufficient_scope_steps_up_with_the_union_of_scopes() {
    let w = World::new();
    let session = w.session();
    assert_eq!(ping(&session).unwrap(), 200);
    w.server.set_required_scope(Some("mcp:admin".into()));
    w.server.clear_requests();

    assert_eq!(ping(&session).unwrap(), 200);
    let authorize = w.browser_authorizations();
    assert_eq!(authorize.len(), 1);
    let scope = authorize[0].query_param("scope").unwrap();
    let mut asked: Vec<&str> = scope.split(' ').collect();
    asked.sort_unstable();
    assert_eq!(
        asked,
        ["mcp:admin", "mcp:read", "mcp:write", "offline_access"]
    );
    assert_eq!(w.browser.opened(), 2);
}

#[test]
fn a_server_that_always_answers_403_gets_at_most_three_authorizations_and_a_typed_error() {
    let w = World::new();
    w.server.set_fault(
        Route::Mcp,
        Fault::status(403).header(
            "WWW-Authenticate",
            &format!(
                r#"Bearer error="insufficient_scope", scope="mcp:admin", resource_metadata="{}.well-known/oauth-protected-resource/mcp""#,
                w.server.base_url()
            ),
        ),
    );
    let session = w.session();
    let e = ping(&session).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OAuth);
    assert_eq!(e.step(), Step::Request);
    assert_eq!(e.oauth_error(), Some("insufficient_scope"));
    assert_eq!(w.browser_authorizations().len(), MAX_AUTHORIZATIONS);
    // A server counts every request to its authorization endpoint (the conformance suite's
    // scope-retry-limit does): the client this session registered is not checked again
    // before each step-up.
    assert_eq!(w.requests_to(Route::Authorize).len(), MAX_AUTHORIZATIONS);
    assert_eq!(w.requests_to(Route::Mcp).len(), MAX_AUTHORIZATIONS + 1);
}

#[test]
fn a_server_that_rejects_every_new_token_gets_one_retry_and_a_typed_error() {
    let w = World::new();
    w.server.set_fault(
        Route::Mcp,
        Fault::status(401).header("WWW-Authenticate", r#"Bearer error="invalid_token""#),
    );
    let e = ping(&w.session()).unwrap_err();
    assert_eq!(e.step(), Step::Request);
    assert_eq!(e.oauth_error(), Some("invalid_token"));
    assert_eq!(w.requests_to(Route::Mcp).len(), 2);
    assert_eq!(w.requests_to(Route::Authorize).len(), 1);
}

#[test]
fn the_bearer_never_reaches_another_origin_nor_a_query_string() {
    let w = World::new();
    let other = TestServer::start().unwrap();
    let session = w.session();
    let token = session.access_token().unwrap();
    // Same host, other port: another origin.
    let status = session
        .agent()
        .post(other.mcp_url().as_str())
        .content_type("application/json")
        .send(PING)
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 401);
    let seen = other.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("authorization"), None);
    // And on the server's own origin, the token travels in the header only.
    w.server.clear_requests();
    assert_eq!(ping(&session).unwrap(), 200);
    let sent = &w.server.requests()[0];
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {}", token.secret()).as_str())
    );
    assert!(sent.query.is_empty());
    assert!(!sent.body.contains(token.secret()));
}

#[test]
fn after_the_resource_moves_to_another_authorization_server_the_client_registers_there() {
    // Two servers: the MCP endpoint of `a` first trusts a's AS; then its resource metadata is
    // swapped (through a fault) to name b's AS, and the old token is refused.
    let w = World::new();
    let b = TestServer::start().unwrap();
    let session = w.session();
    assert_eq!(ping(&session).unwrap(), 200);
    let prm = serde_json::json!({
        "resource": w.server.mcp_url().as_str(),
        "authorization_servers": [b.issuer()],
    });
    w.server
        .set_fault(Route::ResourceMetadata, Fault::json(200, prm));
    w.server.set_fault(
        Route::Mcp,
        Fault::status(401)
            .header("WWW-Authenticate", r#"Bearer error="invalid_token""#)
            .times(1),
    );
    let a_clients = w.server.registered_clients();
    // b's tokens are not valid at a's MCP endpoint, so the retried request gets a's 401; what
    // matters here is where the client went.
    let _ = ping(&session);
    assert_eq!(b.registered_clients(), 1, "registered with the new AS");
    assert_eq!(w.server.registered_clients(), a_clients);
    let a_client = session
        .file_store()
        .unwrap()
        .load_client(&w.server.issuer())
        .unwrap()
        .unwrap();
    for r in b.requests() {
        assert_ne!(
            r.query_param("client_id"),
            Some(a_client.client_id.as_str())
        );
        assert_ne!(
            r.form_param("client_id").as_deref(),
            Some(a_client.client_id.as_str())
        );
    }
    // No refresh at a's token endpoint either: the old grant belongs to the old AS.
    assert!(w.requests_to(Route::Token).len() == 1);
}

/// The connection ids of the requests this process sent (the browser's authorize GET is the
/// browser's own), with their paths.
fn connections_used(w: &World) -> Vec<(u64, String)> {
    w.server
        .requests()
        .into_iter()
        .filter(|r| r.route != Some(Route::Authorize))
        .map(|r| (r.connection, r.path))
        .collect()
}

#[test]
fn a_401_with_a_body_is_not_read_and_everything_after_shares_one_connection() {
    // The body of a 401 is not read: a server could send it a byte at a time for ever. Its
    // connection is closed; the login and the MCP requests share the next one.
    let w = World::new();
    let session = w.session();
    assert_eq!(ping(&session).unwrap(), 200);
    assert_eq!(ping(&session).unwrap(), 200);
    let used = connections_used(&w);
    assert_eq!(
        used.len(),
        7,
        "401, PRM, AS metadata, register, token, retry, ping"
    );
    let first = used[0].0;
    assert!(
        used[1..]
            .iter()
            .all(|(c, _)| *c != first && *c == used[1].0),
        "{used:?}"
    );
}

#[test]
fn a_login_and_the_mcp_requests_share_one_connection_to_one_origin() {
    // A 401 declared empty (as FastMCP sends it) is read, and its connection reused.
    let w = World::new();
    w.server.set_fault(
        Route::Mcp,
        Fault::status(401)
            .header(
                "WWW-Authenticate",
                &format!(
                    r#"Bearer resource_metadata="{}.well-known/oauth-protected-resource/mcp""#,
                    w.server.base_url()
                ),
            )
            .times(1),
    );
    let session = w.session();
    assert_eq!(ping(&session).unwrap(), 200);
    assert_eq!(ping(&session).unwrap(), 200);
    // Everything this process sent (the browser's authorize GET is the browser's own).
    let mine = w.requests_except(Route::Authorize);
    assert_eq!(
        mine.len(),
        7,
        "401, PRM, AS metadata, register, token, retry, ping"
    );
    let connections: std::collections::BTreeSet<u64> = mine.iter().map(|r| r.connection).collect();
    assert_eq!(
        connections.len(),
        1,
        "{:?}",
        mine.iter()
            .map(|r| (r.connection, r.path.clone()))
            .collect::<Vec<_>>()
    );
    // And no OAuth request carried the bearer.
    for r in &mine {
        if r.route != Some(Route::Mcp) {
            assert_eq!(
                r.header("authorization")
                    .filter(|a| a.starts_with("Bearer")),
                None,
                "{}",
                r.path
            );
        }
    }
}

/// A refresh the authorization server refuses with an error a login would not mend: through
/// the agent's middleware it stays the OAuth error it is (not a network failure), for the
/// agent's caller, for `send`, and for an MCP client of `mcp-oauth proxy`; the tokens stay.
#[test]
fn a_refused_refresh_under_the_agent_keeps_its_kind() {
    let w = World::new();
    let session = w.session();
    session.access_token().unwrap();
    w.expire_cached_token(&session);
    let logins = w.browser.opened();
    let refused = || Fault::oauth_error(400, "unsupported_grant_type");
    w.server.set_fault(Route::Token, refused());
    let url = session.server_url().as_str().to_owned();
    let e = session
        .agent()
        .post(&url)
        .content_type("application/json")
        .send(PING)
        .unwrap_err();
    let inner = mcp_oauth_client::Error::in_agent_error(&e).expect("the session's error");
    assert_eq!(inner.kind(), ErrorKind::OAuth, "{inner:#}");
    assert_eq!(inner.step(), Step::Refresh);
    assert_eq!(inner.oauth_error(), Some("unsupported_grant_type"));

    w.server.set_fault(Route::Token, refused());
    let e = ping(&session).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OAuth, "{e:#}");
    assert_eq!(e.step(), Step::Refresh);
    assert_eq!(
        w.browser.opened(),
        logins,
        "no login: it would not mend this"
    );

    w.server.set_fault(Route::Token, refused());
    let mut proxy = crate::bridge::Proxy::start(&url, &w.cache, &["--no-login"]);
    let answer = proxy.initialize();
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("token refresh failed"), "{answer}");
    assert!(message.contains("unsupported_grant_type"), "{answer}");
    assert!(!message.contains("not reached"), "{answer}");
    assert!(proxy.finish().0.success());
    // Nothing was lost: the refresh token is still there for when the server takes it.
    let stored = crate::common::stored(&session);
    assert!(stored.tokens.refresh_token.is_some());
}
