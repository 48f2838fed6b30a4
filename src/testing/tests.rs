//! End-to-end smoke tests of the test server over real HTTP, with `ureq` as the client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use ureq::Agent;

use super::{AsMetadataPaths, Fault, Route, ServerConfig, TestServer};

const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// A status, headers and body, whatever the status.
struct Reply {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// An agent that returns every status as a response and never follows redirects.
fn agent() -> Agent {
    Agent::new_with_config(
        Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build(),
    )
}

fn reply(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut response = result.expect("request failed");
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.body_mut().read_to_string().expect("body"),
    }
}

fn get(agent: &Agent, url: &str) -> Reply {
    reply(agent.get(url).call())
}

fn post_json(agent: &Agent, url: &str, bearer: Option<&str>, body: &Value) -> Reply {
    let mut request = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream");
    if let Some(token) = bearer {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    reply(request.send(body.to_string()))
}

fn post_form(
    agent: &Agent,
    url: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> Reply {
    let mut request = agent.post(url);
    if let Some((id, secret)) = basic {
        let credentials = STANDARD.encode(format!("{id}:{secret}"));
        request = request.header("Authorization", &format!("Basic {credentials}"));
    }
    reply(request.send_form(form.iter().copied()))
}

fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn register(server: &TestServer, agent: &Agent, auth_method: &str) -> Value {
    let url = format!("{}/register", server.issuer());
    let metadata = json!({
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": auth_method,
        "client_name": "smoke test",
    });
    let registered = post_json(agent, &url, None, &metadata);
    assert_eq!(registered.status, 201, "{}", registered.body);
    registered.json()
}

/// Runs `/authorize` and returns the redirect's query parameters.
fn authorize(
    server: &TestServer,
    agent: &Agent,
    client_id: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut url = url::Url::parse(&format!("{}/authorize", server.issuer())).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("code_challenge", &challenge_of(VERIFIER))
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "xyz")
        .extend_pairs(extra);
    let redirect = get(agent, url.as_str());
    assert_eq!(redirect.status, 302, "{}", redirect.body);
    let location = url::Url::parse(redirect.header("location").unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT_URI));
    location.query_pairs().into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Registers a public client and logs in; returns (client id, token response).
fn login(server: &TestServer, agent: &Agent, scope: &str) -> (String, Value) {
    let client = register(server, agent, "none");
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let resource = server.mcp_url().to_string();
    let params = authorize(
        server,
        agent,
        &client_id,
        &[("scope", scope), ("resource", &resource)],
    );
    let code = param(&params, "code").unwrap();
    let token = post_form(
        agent,
        &format!("{}/token", server.issuer()),
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
            ("client_id", &client_id),
            ("resource", &resource),
        ],
    );
    assert_eq!(token.status, 200, "{}", token.body);
    assert_eq!(token.header("cache-control"), Some("no-store"));
    (client_id, token.json())
}

fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-03-26", "capabilities": {},
                    "clientInfo": { "name": "smoke", "version": "0" } },
    })
}

#[test]
fn server_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<TestServer>();
}

#[test]
fn full_login_and_mcp_session() {
    let server = TestServer::start().unwrap();
    let agent = agent();
    let base = server.base_url();
    let mcp = server.mcp_url();
    assert_eq!(mcp.as_str(), format!("{base}mcp"));
    assert_eq!(server.issuer(), base.as_str().trim_end_matches('/'));

    // Unauthenticated: the challenge points at the resource metadata.
    let denied = post_json(&agent, mcp.as_str(), None, &initialize());
    assert_eq!(denied.status, 401);
    let prm_url = format!("{base}.well-known/oauth-protected-resource/mcp");
    assert_eq!(
        denied.header("www-authenticate"),
        Some(format!("Bearer resource_metadata=\"{prm_url}\"").as_str())
    );

    let prm = get(&agent, &prm_url).json();
    assert_eq!(prm["resource"], mcp.as_str());
    assert_eq!(prm["authorization_servers"], json!([server.issuer()]));
    assert_eq!(prm["scopes_supported"], json!(["mcp:read", "mcp:write"]));

    let metadata = get(
        &agent,
        &format!("{base}.well-known/oauth-authorization-server"),
    )
    .json();
    assert_eq!(metadata["issuer"], server.issuer());
    assert_eq!(
        metadata["token_endpoint"],
        format!("{}/token", server.issuer())
    );
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        metadata["scopes_supported"],
        json!(["mcp:read", "mcp:write", "offline_access"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );

    let (client_id, tokens) = login(&server, &agent, "mcp:read mcp:write");
    assert_eq!(server.registered_clients(), 1);
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "mcp:read mcp:write");
    let access = tokens["access_token"].as_str().unwrap();

    let init = post_json(&agent, mcp.as_str(), Some(access), &initialize());
    assert_eq!(init.status, 200, "{}", init.body);
    assert!(init.header("mcp-session-id").is_some_and(|s| s.len() == 43));
    assert_eq!(init.json()["result"]["protocolVersion"], "2025-03-26");
    assert_eq!(init.json()["id"], 1);

    let notified = post_json(
        &agent,
        mcp.as_str(),
        Some(access),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    assert_eq!(notified.status, 202);
    let echo = post_json(
        &agent,
        mcp.as_str(),
        Some(access),
        &json!({"jsonrpc": "2.0", "id": "e", "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "hi"}}}),
    );
    assert_eq!(echo.json()["result"]["content"][0]["text"], "hi");
    let unknown = post_json(
        &agent,
        mcp.as_str(),
        Some(access),
        &json!({"jsonrpc": "2.0", "id": 2, "method": "nope"}),
    );
    assert_eq!(unknown.json()["error"]["code"], -32601);

    let bad = post_json(&agent, mcp.as_str(), Some("not-a-token"), &initialize());
    assert_eq!(bad.status, 401);
    assert!(
        bad.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\", resource_metadata=")
    );

    // Refresh with rotation; the old refresh token is then dead.
    let token_url = format!("{}/token", server.issuer());
    let old_refresh = tokens["refresh_token"].as_str().unwrap();
    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", old_refresh),
        ("client_id", client_id.as_str()),
        ("scope", "mcp:read"),
    ];
    let refreshed = post_form(&agent, &token_url, None, &refresh_form);
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(refreshed.json()["scope"], "mcp:read");
    assert_ne!(refreshed.json()["refresh_token"], old_refresh);
    let reused = post_form(&agent, &token_url, None, &refresh_form);
    assert_eq!(
        (reused.status, reused.json()["error"].clone()),
        (400, json!("invalid_grant"))
    );

    // Revocation.
    let revoke_url = format!("{}/revoke", server.issuer());
    let revoked = post_form(
        &agent,
        &revoke_url,
        None,
        &[("token", access), ("client_id", &client_id)],
    );
    assert_eq!(revoked.status, 200);
    assert_eq!(server.revoked_tokens(), [access.to_owned()]);
    assert_eq!(
        post_json(&agent, mcp.as_str(), Some(access), &initialize()).status,
        401
    );

    // The log: in order, routes classified, one kept-alive connection for the agent.
    let log = server.requests();
    assert_eq!(log[0].route, Some(Route::Mcp));
    assert!(log[0].header("Authorization").is_none());
    let token_request = log.iter().find(|r| r.route == Some(Route::Token)).unwrap();
    assert_eq!(
        token_request.form_param("code_verifier").as_deref(),
        Some(VERIFIER)
    );
    let authorize_request = log
        .iter()
        .find(|r| r.route == Some(Route::Authorize))
        .unwrap();
    assert_eq!(authorize_request.query_param("state"), Some("xyz"));
    assert!(log.iter().all(|r| r.connection == log[0].connection));
    server.clear_requests();
    assert!(server.requests().is_empty());
}

#[test]
fn code_checks() {
    let server = TestServer::start().unwrap();
    let agent = agent();
    let client = register(&server, &agent, "client_secret_basic");
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();
    assert_eq!(client["client_secret_expires_at"], 0);
    assert_eq!(client["client_name"], "smoke test");
    let token_url = format!("{}/token", server.issuer());

    let params = authorize(&server, &agent, id, &[]);
    assert_eq!(param(&params, "state"), Some("xyz"));
    assert_eq!(param(&params, "iss"), Some(server.issuer().as_str()));
    let code = param(&params, "code").unwrap();
    let exchange = |verifier: &str, basic: Option<(&str, &str)>| {
        post_form(
            &agent,
            &token_url,
            basic,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", verifier),
            ],
        )
    };
    let unauthenticated = exchange(VERIFIER, Some((id, "wrong")));
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(unauthenticated.json()["error"], "invalid_client");
    assert!(unauthenticated.header("www-authenticate").is_some());
    let wrong = exchange(&"a".repeat(43), Some((id, secret)));
    assert_eq!(
        (wrong.status, wrong.json()["error"].clone()),
        (400, json!("invalid_grant"))
    );
    // The failed attempt used the code up.
    assert_eq!(
        exchange(VERIFIER, Some((id, secret))).json()["error"],
        "invalid_grant"
    );

    let code = param(&authorize(&server, &agent, id, &[]), "code")
        .unwrap()
        .to_owned();
    let ok = post_form(
        &agent,
        &token_url,
        Some((id, secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.json().get("scope").is_none());

    // Bad client or redirect URI: an error page, never a redirect.
    let page = get(
        &agent,
        &format!("{}/authorize?client_id=nobody", server.issuer()),
    );
    assert_eq!(page.status, 400);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let unsupported = post_form(
        &agent,
        &token_url,
        Some((id, secret)),
        &[("grant_type", "password")],
    );
    assert_eq!(unsupported.json()["error"], "unsupported_grant_type");
}

#[test]
fn tenant_issuer_scopes_and_sse() {
    let server = TestServer::start_with(ServerConfig {
        issuer_path: "tenant1/".into(),
        as_metadata_paths: AsMetadataPaths::OpenIdAppended,
        challenge_scope: Some("mcp:read".into()),
        rotate_refresh_tokens: false,
        ..ServerConfig::default()
    })
    .unwrap();
    let agent = agent();
    let base = server.base_url();
    assert_eq!(server.issuer(), format!("{base}tenant1"));
    assert_eq!(
        get(
            &agent,
            &format!("{base}.well-known/oauth-authorization-server/tenant1")
        )
        .status,
        404
    );
    let metadata = get(
        &agent,
        &format!("{base}tenant1/.well-known/openid-configuration"),
    )
    .json();
    assert_eq!(
        metadata["registration_endpoint"],
        format!("{base}tenant1/register")
    );
    assert_eq!(
        post_json(&agent, &format!("{base}register"), None, &json!({})).status,
        404
    );

    let denied = post_json(&agent, server.mcp_url().as_str(), None, &initialize());
    assert!(
        denied
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer scope=\"mcp:read\", resource_metadata=")
    );

    let (client_id, tokens) = login(&server, &agent, "mcp:read");
    server.set_required_scope(Some("mcp:read mcp:write".into()));
    let access = tokens["access_token"].as_str().unwrap();
    let forbidden = post_json(
        &agent,
        server.mcp_url().as_str(),
        Some(access),
        &initialize(),
    );
    assert_eq!(forbidden.status, 403);
    assert!(forbidden.header("www-authenticate").unwrap().starts_with(
        "Bearer error=\"insufficient_scope\", scope=\"mcp:read mcp:write\", resource_metadata="
    ));
    server.set_required_scope(None);

    let sse = reply(
        agent
            .post(server.mcp_url().as_str())
            .header("Authorization", &format!("Bearer {access}"))
            .header("Accept", "text/event-stream")
            .send(json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}).to_string()),
    );
    assert_eq!(sse.header("content-type"), Some("text/event-stream"));
    assert_eq!(
        sse.body,
        "event: message\ndata: {\"id\":7,\"jsonrpc\":\"2.0\",\"result\":{}}\n\n"
    );

    // Without rotation the refresh token stays valid and is not re-sent.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", &client_id),
    ];
    for _ in 0..2 {
        let refreshed = post_form(&agent, &format!("{}/token", server.issuer()), None, &form);
        assert_eq!(refreshed.status, 200, "{}", refreshed.body);
        assert!(refreshed.json().get("refresh_token").is_none());
    }
}

#[test]
fn faults_and_expiry() {
    let server = TestServer::start().unwrap();
    let agent = agent();
    server.set_fault(
        Route::AuthServerMetadata,
        Fault::oauth_error(503, "temporarily_unavailable")
            .header("Retry-After", "1")
            .delay(Duration::from_millis(100))
            .times(1),
    );
    let url = format!(
        "{}.well-known/oauth-authorization-server",
        server.base_url()
    );
    let started = Instant::now();
    let failed = get(&agent, &url);
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(failed.status, 503);
    assert_eq!(failed.header("retry-after"), Some("1"));
    assert_eq!(failed.json()["error"], "temporarily_unavailable");
    assert_eq!(get(&agent, &url).status, 200);

    server.set_fault(Route::Mcp, Fault::status(500));
    assert_eq!(
        post_json(&agent, server.mcp_url().as_str(), None, &initialize()).status,
        500
    );
    assert_eq!(
        post_json(&agent, server.mcp_url().as_str(), None, &initialize()).status,
        500
    );
    server.clear_faults();

    server.set_access_token_lifetime(0);
    let (_, tokens) = login(&server, &agent, "mcp:read");
    assert_eq!(tokens["expires_in"], 0);
    let expired = post_json(
        &agent,
        server.mcp_url().as_str(),
        tokens["access_token"].as_str(),
        &initialize(),
    );
    assert_eq!(expired.status, 401);
    assert!(
        expired
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
}

#[test]
fn no_resource_metadata_and_denial() {
    let server = TestServer::start_with(ServerConfig {
        serve_resource_metadata: false,
        deny_authorization: true,
        iss_parameter: false,
        code_challenge_methods: None,
        ..ServerConfig::default()
    })
    .unwrap();
    let agent = agent();
    let denied = post_json(&agent, server.mcp_url().as_str(), None, &initialize());
    assert_eq!(denied.header("www-authenticate"), Some("Bearer"));
    let prm = format!("{}.well-known/oauth-protected-resource", server.base_url());
    assert_eq!(get(&agent, &prm).status, 404);
    let metadata = get(
        &agent,
        &format!(
            "{}.well-known/oauth-authorization-server",
            server.base_url()
        ),
    )
    .json();
    assert!(metadata.get("code_challenge_methods_supported").is_none());

    let client = register(&server, &agent, "none");
    let params = authorize(&server, &agent, client["client_id"].as_str().unwrap(), &[]);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some("xyz"));
    assert_eq!(param(&params, "iss"), None);
}

/// Sends raw bytes on a new connection and reads until the server closes it.
fn raw_exchange(server: &TestServer, request: &[u8]) -> String {
    let mut stream =
        TcpStream::connect(server.base_url().socket_addrs(|| None).unwrap()[0]).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn raw_http_handling() {
    let server = TestServer::start().unwrap();
    let malformed = raw_exchange(&server, b"garbage\r\n\r\n");
    assert!(malformed.starts_with("HTTP/1.1 400 "), "{malformed}");
    assert!(malformed.contains("Connection: close\r\n"));

    // Two pipelined requests, the second closing the connection.
    let both = raw_exchange(
        &server,
        b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\nGET /.well-known/oauth-protected-resource HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(both.starts_with("HTTP/1.1 404 Not Found\r\n"), "{both}");
    assert_eq!(both.matches("HTTP/1.1 ").count(), 2);
    assert!(both.contains("HTTP/1.1 200 OK\r\n"));
    let log = server.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].route, None);
    assert_eq!(log[0].connection, log[1].connection);
    assert_eq!(log[1].route, Some(Route::ResourceMetadata));
}

#[test]
fn drop_stops_the_server() {
    let server = TestServer::start().unwrap();
    let addr = server.base_url().socket_addrs(|| None).unwrap()[0];
    // An idle kept-alive connection must not keep the drop waiting.
    let idle = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(TcpStream::connect(addr).is_err());
    drop(idle);
}
