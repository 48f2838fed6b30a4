//! Scope precedence and the resource indicator.

use mcp_oauth_client::testing::{Route, ServerConfig};
use mcp_oauth_client::{discovery::canonical_resource, pkce::s256_challenge};

use crate::common::World;

fn authorize_scope(w: &World) -> Option<String> {
    w.requests_to(Route::Authorize)[0]
        .query_param("scope")
        .map(str::to_owned)
}

#[test]
fn configured_scopes_win_and_offline_access_is_added_when_listed() {
    let w = World::with(ServerConfig {
        challenge_scope: Some("mcp:write".into()),
        ..ServerConfig::default()
    });
    w.builder()
        .scopes(vec!["mcp:read"])
        .build()
        .unwrap()
        .access_token()
        .unwrap();
    assert_eq!(
        authorize_scope(&w).as_deref(),
        Some("mcp:read offline_access")
    );
}

#[test]
fn the_challenge_scope_comes_next() {
    let w = World::with(ServerConfig {
        challenge_scope: Some("mcp:write".into()),
        ..ServerConfig::default()
    });
    let session = w.session();
    // Meet the 401 the way a client does: an unauthenticated MCP request.
    let mut response = mcp_oauth_client::http::new_agent()
        .post(w.server.mcp_url().as_str())
        .content_type("application/json")
        .send(serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string())
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let header = response
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let _ = response.body_mut().read_to_string();
    w.server.clear_requests();

    let token = session.on_unauthorized(Some(&header)).unwrap();
    assert_eq!(
        authorize_scope(&w).as_deref(),
        Some("mcp:write offline_access")
    );
    // The challenge's resource_metadata URL was used first.
    assert_eq!(
        w.request_lines()[0],
        "GET /.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(w.mcp_status(token.secret()), 200);
}

#[test]
fn then_the_resource_scopes_supported() {
    let w = World::new(); // PRM scopes_supported = mcp:read mcp:write
    w.session().access_token().unwrap();
    assert_eq!(
        authorize_scope(&w).as_deref(),
        Some("mcp:read mcp:write offline_access")
    );
}

#[test]
fn else_no_scope_parameter_at_all() {
    let w = World::with(ServerConfig {
        scopes_supported: None,
        ..ServerConfig::default()
    });
    w.session().access_token().unwrap();
    assert_eq!(authorize_scope(&w), None);
}

#[test]
fn offline_access_is_not_added_when_the_server_does_not_list_it() {
    let w = World::with(ServerConfig {
        advertise_offline_access: false,
        ..ServerConfig::default()
    });
    w.session().access_token().unwrap();
    assert_eq!(authorize_scope(&w).as_deref(), Some("mcp:read mcp:write"));
}

#[test]
fn resource_is_sent_on_authorize_token_and_refresh() {
    let w = World::new();
    let session = w.session();
    session.access_token().unwrap();
    w.expire_cached_token(&session);
    session.access_token().unwrap();

    let resource = canonical_resource(&w.server.mcp_url());
    assert_eq!(resource, w.server.mcp_url().as_str());
    let authorize = &w.requests_to(Route::Authorize)[0];
    assert_eq!(authorize.query_param("resource"), Some(resource.as_str()));
    let tokens = w.requests_to(Route::Token);
    assert_eq!(tokens.len(), 2);
    for t in &tokens {
        assert_eq!(t.form_param("resource").as_deref(), Some(resource.as_str()));
    }
    assert_eq!(
        tokens[1].form_param("grant_type").as_deref(),
        Some("refresh_token")
    );
}

#[test]
fn the_pkce_verifier_matches_the_challenge_and_the_server_checks_it() {
    let w = World::new();
    w.session().access_token().unwrap();
    let authorize = &w.requests_to(Route::Authorize)[0];
    assert_eq!(authorize.query_param("code_challenge_method"), Some("S256"));
    let verifier = w.requests_to(Route::Token)[0]
        .form_param("code_verifier")
        .unwrap();
    assert_eq!(
        authorize.query_param("code_challenge"),
        Some(s256_challenge(&verifier).as_str())
    );
    assert_eq!(verifier.len(), 43);
}

#[test]
fn the_server_rejects_a_wrong_verifier() {
    use mcp_oauth_client::{
        Secret, pkce::PkceVerifier, token::ClientEndpoint, token::CodeExchange,
        token::exchange_code,
    };
    let w = World::new();
    let agent = mcp_oauth_client::http::new_agent();
    let md = mcp_oauth_client::discovery::discover_auth_server_metadata(&agent, &w.server.issuer())
        .unwrap()
        .unwrap();
    let listener =
        mcp_oauth_client::callback::CallbackListener::bind(Default::default(), 0).unwrap();
    let redirect = listener.redirect_uri().to_string();
    let client = mcp_oauth_client::registration::register(
        &agent,
        md.registration_endpoint.as_deref().unwrap(),
        &md.issuer,
        &mcp_oauth_client::registration::RegistrationRequest::new(
            "t",
            mcp_oauth_client::AuthMethod::None,
        )
        .redirect_uri(Some(&redirect)),
    )
    .unwrap();
    let right = PkceVerifier::generate().unwrap();
    let url = mcp_oauth_client::authorize::build_authorization_url(
        &mcp_oauth_client::authorize::AuthorizationRequest::new(
            &md.authorization_endpoint,
            &client.client_id,
            &redirect,
            "s",
            &right.challenge(),
        ),
    )
    .unwrap();
    // The person's browser, approving at once.
    std::thread::spawn(move || mcp_oauth_client::testing::follow_redirects(&url));
    let code: Secret = listener
        .wait(
            &mcp_oauth_client::callback::CallbackExpectation::new(
                "s",
                &md.issuer,
                md.authorization_response_iss_parameter_supported,
            ),
            std::time::Duration::from_secs(10),
        )
        .unwrap();
    let wrong = PkceVerifier::generate().unwrap();
    let e = exchange_code(
        &agent,
        &CodeExchange::new(
            ClientEndpoint::new(&md.token_endpoint, &client),
            &code,
            &wrong,
            &redirect,
        ),
    )
    .unwrap_err();
    assert_eq!(e.oauth_error(), Some("invalid_grant"));
    assert_eq!(e.step(), mcp_oauth_client::Step::CodeExchange);
}
