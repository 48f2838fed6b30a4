//! Writes the `testserver-*` seeds: what the embedded authorization server really sends, and
//! the callback request the headless browser really makes, captured over loopback.
//!
//! Ignored by default (the seeds are committed); to refresh them:
//! `cargo test --manifest-path fuzz/Cargo.toml --test capture_seeds -- --ignored`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use mcp_oauth_client::testing::{HeadlessBrowser, TestServer, follow_redirects};
use mcp_oauth_client::{
    AuthMethod, FileTokenStorage, Scopes, Session, authorize::AuthorizationRequest,
    authorize::build_authorization_url, internals::unix_now, pkce::PkceVerifier,
    registration::RegistrationRequest, registration::build_registration_request,
    registration::parse_registration_response,
};
use mcp_oauth_client_fuzz::corpus_dir;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

fn get(url: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut r = agent().get(url).call().unwrap();
    read(&mut r)
}

fn post_form(url: &str, form: &[(&str, &str)]) -> Vec<u8> {
    let mut r = agent().post(url).send_form(form.iter().copied()).unwrap();
    read(&mut r).2
}

fn read(r: &mut ureq::http::Response<ureq::Body>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = r.body_mut().read_to_vec().unwrap();
    (r.status().as_u16(), headers, body)
}

fn header(headers: &[(String, String)], name: &str) -> String {
    headers.iter().find(|(k, _)| k == name).unwrap().1.clone()
}

/// Writes `corpus/<target>/testserver-<name>`: `context` as the first line (when given), then
/// `body`.
fn seed(target: &str, name: &str, context: Option<&str>, body: &[u8]) {
    let dir = corpus_dir(target);
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = context
        .map(|c| format!("{c}\n").into_bytes())
        .unwrap_or_default();
    bytes.extend_from_slice(body);
    std::fs::write(dir.join(format!("testserver-{name}")), bytes).unwrap();
}

fn copy_seed(target: &str, name: &str, file: &Path) {
    seed(target, name, None, &std::fs::read(file).unwrap());
}

#[test]
#[ignore = "writes the committed seeds; run by hand to refresh them"]
fn capture_seeds_from_the_test_server() {
    let server = TestServer::start().unwrap();
    let issuer = server.issuer();
    let mcp = server.mcp_url();

    // The MCP endpoint's 401 challenge.
    let mut r = agent().post(mcp.as_str()).send("{}").unwrap();
    let (status, headers, _) = read(&mut r);
    assert_eq!(status, 401);
    let challenge = header(&headers, "www-authenticate");
    seed("www_authenticate", "401", None, challenge.as_bytes());

    // Metadata.
    let prm = server
        .base_url()
        .join(".well-known/oauth-protected-resource/mcp")
        .unwrap();
    seed(
        "resource_metadata",
        "prm",
        Some(mcp.as_str()),
        &get(prm.as_str()).2,
    );
    let asm = format!("{issuer}/.well-known/oauth-authorization-server");
    let (_, _, metadata) = get(&asm);
    seed("auth_server_metadata", "metadata", Some(&issuer), &metadata);

    // Registration, public and confidential, and a rejected one.
    let callback = TcpListener::bind("127.0.0.1:0").unwrap();
    let redirect_uri = format!("http://{}/callback", callback.local_addr().unwrap());
    let scope = Scopes::parse("mcp:read offline_access");
    let mut registered = Vec::new();
    for (name, method) in [
        ("none", AuthMethod::None),
        ("basic", AuthMethod::ClientSecretBasic),
    ] {
        let request = RegistrationRequest::new("seed capture", method)
            .redirect_uri(Some(&redirect_uri))
            .scope(Some(&scope));
        let body = build_registration_request(&request).to_string();
        let mut r = agent()
            .post(format!("{issuer}/register"))
            .content_type("application/json")
            .send(body)
            .unwrap();
        let (_, _, response) = read(&mut r);
        seed("registration_response", name, Some(&issuer), &response);
        registered.push(parse_registration_response(&response, &issuer, &request).unwrap());
    }
    let mut r = agent()
        .post(format!("{issuer}/register"))
        .content_type("application/json")
        .send(r#"{"redirect_uris":["https://x/#frag"]}"#)
        .unwrap();
    let (status, _, body) = read(&mut r);
    seed(
        "error_response",
        "register",
        Some(&status.to_string()),
        &body,
    );

    // Authorization, through the headless browser into a raw listener that keeps the bytes.
    let client = &registered[0];
    let verifier = PkceVerifier::generate().unwrap();
    let state = "seed-capture-state";
    let resource = mcp.as_str().to_owned();
    let authorize = format!("{issuer}/authorize");
    let challenge = verifier.challenge();
    let request = AuthorizationRequest::new(
        &authorize,
        &client.client_id,
        &redirect_uri,
        state,
        &challenge,
    )
    .scope(Some(&scope))
    .resource(Some(&resource));
    let url = build_authorization_url(&request).unwrap();
    let browser = std::thread::spawn(move || follow_redirects(&url));
    let (mut stream, _) = callback.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 1024];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0);
        raw.extend_from_slice(&chunk[..n]);
    }
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    drop(stream);
    browser.join().unwrap().unwrap();
    seed("callback_request", "headless-browser", None, &raw);
    let request = mcp_oauth_client::callback::parse_callback_request(&raw).unwrap();
    let code = request
        .params
        .iter()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .clone();
    let round_trip = [
        authorize.as_str(),
        &client.client_id,
        state,
        "mcp:read offline_access",
        &resource,
        &code,
    ]
    .join("\n");
    seed(
        "authorization_callback",
        "flow",
        None,
        round_trip.as_bytes(),
    );

    // Code exchange, refresh, and a replayed code.
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", verifier.secret()),
        ("client_id", client.client_id.as_str()),
        ("resource", resource.as_str()),
    ];
    let token = format!("{issuer}/token");
    let tokens = post_form(&token, &exchange);
    let now = unix_now().to_string();
    seed("token_response", "code", Some(&now), &tokens);
    let set = mcp_oauth_client::token::parse_token_response(
        &tokens,
        unix_now(),
        mcp_oauth_client::Step::CodeExchange,
    )
    .unwrap();
    let refresh_token = set.refresh_token.as_ref().unwrap().secret();
    let refreshed = post_form(
        &token,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client.client_id.as_str()),
            ("resource", resource.as_str()),
        ],
    );
    seed("token_response", "refresh", Some(&now), &refreshed);
    seed(
        "error_response",
        "replayed-code",
        Some("400"),
        &post_form(&token, &exchange),
    );
    let file_fields = [
        set.access_token.secret(),
        refresh_token,
        set.scope.as_deref().unwrap_or(""),
        "3600",
        &now,
    ]
    .join("\n");
    seed("token_file", "flow", None, file_fields.as_bytes());

    // The cache files of a real login, and of a confidential client.
    let cache = std::env::temp_dir().join(format!("mcp-oauth-seeds-{}", std::process::id()));
    let browser = HeadlessBrowser::new();
    let session = Session::builder(mcp.as_str())
        .cache_dir(&cache)
        .callback_timeout(Duration::from_secs(10))
        .authorize_hook(browser.hook())
        .build()
        .unwrap();
    session.access_token().unwrap();
    copy_seed(
        "stored_tokens",
        "login",
        &session.file_store().unwrap().tokens_path(&mcp),
    );
    let storage = FileTokenStorage::new(&cache);
    copy_seed("stored_client", "login", &storage.client_path(&issuer));
    storage.save_client(&registered[1]).unwrap();
    copy_seed("stored_client", "basic", &storage.client_path(&issuer));
    let _ = std::fs::remove_dir_all(&cache);
}
