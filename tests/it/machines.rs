//! Logins without a person (issue "Machine-to-machine and enterprise logins"): client
//! credentials with a secret or a private key, the JWT bearer grant with a workload identity
//! token. No browser, no port; the grant runs again when the token expires.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use mcp_oauth_client::testing::{Route, ServerConfig};
use mcp_oauth_client::{Assertion, BrowserStep, ErrorKind, OAuthErrorCode, SigningKey, Step};
use serde_json::json;

use crate::common::{TempDir, World, ping};

/// A server whose token endpoint takes Basic and `private_key_jwt`, as services' servers do.
fn with_key_auth() -> ServerConfig {
    ServerConfig {
        token_endpoint_auth_methods: vec!["client_secret_basic".into(), "private_key_jwt".into()],
        ..ServerConfig::default()
    }
}

#[test]
fn a_client_credentials_session_never_binds_a_port_or_opens_a_browser() {
    let w = World::with(with_key_auth());
    w.server
        .add_client("svc", "client_secret_basic", Some("s3cret"), None);
    // The pinned callback port is held here: a session that tried to bind it would fail.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let hooked = Arc::new(Mutex::new(0));
    let count = Arc::clone(&hooked);
    let session = w
        .service_builder("svc", "s3cret")
        .callback_port(port)
        .authorize_hook(move |_: &BrowserStep| *count.lock().unwrap() += 1)
        .build()
        .unwrap();
    assert_eq!(ping(&session).unwrap(), 200);
    assert_eq!(*hooked.lock().unwrap(), 0);
    assert!(w.requests_to(Route::Authorize).is_empty());
    assert!(w.requests_to(Route::Register).is_empty());
    let tokens = w.requests_to(Route::Token);
    assert_eq!(tokens.len(), 1, "{:?}", w.request_lines());
    assert_eq!(
        tokens[0].form_param("grant_type").as_deref(),
        Some("client_credentials")
    );
    assert!(
        tokens[0]
            .header("authorization")
            .unwrap()
            .starts_with("Basic ")
    );
    // It also works where no person may be asked (interactive(false)).
    let quiet = w
        .builder()
        .cache_dir(TempDir::new().path())
        .client_id("svc")
        .client_secret("s3cret")
        .client_credentials()
        .interactive(false)
        .build()
        .unwrap();
    assert_eq!(ping(&quiet).unwrap(), 200);
}

#[test]
fn client_credentials_run_again_when_the_token_expires_once_for_processes_sharing_the_cache() {
    let w = World::with(with_key_auth());
    w.server
        .add_client("svc", "client_secret_basic", Some("s3cret"), None);
    let build = || w.service_builder("svc", "s3cret").build().unwrap();
    let session = build();
    let first = session.access_token().unwrap();
    let stored = crate::common::stored(&session);
    assert!(stored.tokens.refresh_token.is_none(), "no refresh token");
    assert!(
        !stored
            .requested_scope
            .unwrap_or_default()
            .contains("offline_access")
    );
    w.expire_cached_token(&session);
    w.server.clear_requests();
    // Two sessions (as two processes would) on the expired token: one grant between them.
    let (a, b) = (build(), build());
    let tokens = std::thread::scope(|s| {
        let ta = s.spawn(|| a.access_token().unwrap());
        let tb = s.spawn(|| b.access_token().unwrap());
        [ta.join().unwrap(), tb.join().unwrap()]
    });
    assert_eq!(tokens[0].secret(), tokens[1].secret());
    assert_ne!(tokens[0].secret(), first.secret());
    assert_eq!(
        w.requests_to(Route::Token).len(),
        1,
        "{:?}",
        w.request_lines()
    );
    assert!(w.requests_to(Route::Authorize).is_empty());
}

#[test]
fn client_credentials_with_private_key_jwt_es256_and_rs256_keys_from_pem_files() {
    for file in [
        "client-es256.pem",
        "client-rs256.pem",
        "client-rs256-pkcs1.pem",
    ] {
        let w = World::with(with_key_auth());
        let path = crate::common::data_file(file);
        let key = SigningKey::from_pem(&std::fs::read_to_string(&path).unwrap(), Step::Configure)
            .unwrap();
        w.server
            .add_client("svc", "private_key_jwt", None, Some(key.public_jwk()));
        let session = w
            .builder()
            .client_id("svc")
            .client_key_file(&path)
            .client_credentials()
            .build()
            .unwrap();
        assert_eq!(ping(&session).unwrap(), 200, "{file}");
        let token = &w.requests_to(Route::Token)[0];
        assert!(token.header("authorization").is_none());
        let assertion = token.form_param("client_assertion").unwrap();
        let (_, claims) = mcp_oauth_client::jwt::verify(&assertion, &key.public_jwk()).unwrap();
        assert_eq!(claims["aud"], w.server.issuer().as_str(), "{file}");
        assert_eq!(
            (&claims["iss"], &claims["sub"]),
            (&json!("svc"), &json!("svc"))
        );
    }
}

#[test]
fn a_client_key_that_is_not_a_key_is_a_configuration_error_naming_the_file() {
    let dir = TempDir::new();
    let path = dir.path().join("key.pem");
    std::fs::write(
        &path,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let e = mcp_oauth_client::Session::builder("http://127.0.0.1:9/mcp")
        .cache_dir(dir.path())
        .client_id("svc")
        .client_key_file(&path)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("key.pem"), "{e}");
    let missing = dir.path().join("absent.pem");
    let e = mcp_oauth_client::Session::builder("http://127.0.0.1:9/mcp")
        .cache_dir(dir.path())
        .client_key_file(&missing)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}

/// A value no other call in this process returns.
fn unique() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// A workload identity: the key the server trusts, and assertions it signs.
struct Workload {
    key: SigningKey,
}

impl Workload {
    fn new() -> Workload {
        Workload {
            key: SigningKey::generate_es256().unwrap(),
        }
    }

    fn world(&self) -> World {
        World::with(ServerConfig {
            assertion_key: Some(self.key.public_jwk()),
            ..ServerConfig::default()
        })
    }

    /// An assertion for `aud` that expires `exp_in` seconds from now (negative: ago).
    fn assertion(&self, aud: &str, exp_in: i64) -> String {
        let now = mcp_oauth_client::internals::unix_now() as i64;
        let claims = json!({
            "iss": "https://idp.example", "sub": "workload-1", "aud": aud,
            "iat": now - 120, "exp": now + exp_in,
            "jti": unique(),
        });
        self.key
            .sign(json!({"typ": "JWT"}), &claims, Step::Configure)
            .unwrap()
    }
}

#[test]
fn the_jwt_bearer_grant_reads_the_workload_token_from_its_file_each_time() {
    let workload = Workload::new();
    let w = workload.world();
    let dir = TempDir::new();
    let file = dir.path().join("token");
    std::fs::write(&file, workload.assertion(&w.server.issuer(), 300) + "\n").unwrap();
    let session = w
        .builder()
        .jwt_bearer(Assertion::File(file.clone()))
        .build()
        .unwrap();
    assert_eq!(ping(&session).unwrap(), 200);
    let grant = &w.requests_to(Route::Token)[0];
    assert_eq!(
        grant.form_param("grant_type").as_deref(),
        Some(mcp_oauth_client::grant::JWT_BEARER)
    );
    // No client: neither client_id nor client authentication (RFC 7523 §3.1).
    assert!(grant.form_param("client_id").is_none() && grant.header("authorization").is_none());
    // The platform rotates the token in place; the next grant reads the new one (the server
    // refuses a jti it has seen, so an old read would fail).
    std::fs::write(&file, workload.assertion(&w.server.issuer(), 300)).unwrap();
    w.expire_cached_token(&session);
    assert_eq!(ping(&session).unwrap(), 200);
    assert_eq!(w.requests_to(Route::Token).len(), 2);
}

#[test]
fn an_assertion_with_a_wrong_audience_or_past_its_expiry_is_refused_once_and_not_retried() {
    let workload = Workload::new();
    for (name, aud, exp_in) in [
        ("wrong aud", "https://other.example".to_owned(), 300),
        ("expired", String::new(), -120),
    ] {
        let w = workload.world();
        let aud = if aud.is_empty() {
            w.server.issuer()
        } else {
            aud
        };
        let session = w
            .builder()
            .jwt_bearer(Assertion::Token(mcp_oauth_client::Secret::new(
                workload.assertion(&aud, exp_in),
            )))
            .build()
            .unwrap();
        let e = ping(&session).unwrap_err();
        assert_eq!(e.step(), Step::Grant, "{name}: {e}");
        assert_eq!(
            e.oauth_code(),
            Some(OAuthErrorCode::InvalidGrant),
            "{name}: {e}"
        );
        // One grant request, no other grant tried, nothing cached.
        assert_eq!(w.requests_to(Route::Token).len(), 1, "{name}");
        assert!(
            w.requests_to(Route::Authorize).is_empty() && w.requests_to(Route::Register).is_empty()
        );
        assert!(!w.has_cached_tokens(&session), "{name}");
    }
}

#[test]
fn a_browser_login_at_a_server_with_only_headless_grants_fails_before_any_browser() {
    // The metadata lists only client credentials (a Fault replaces the document).
    let w = World::new();
    let mut md = crate::common::get_json(&format!(
        "{}/.well-known/oauth-authorization-server",
        w.server.issuer()
    ));
    md["grant_types_supported"] = json!(["client_credentials"]);
    w.server.set_fault(
        Route::AuthServerMetadata,
        mcp_oauth_client::testing::Fault::json(200, md),
    );
    let hooked = Arc::new(Mutex::new(0));
    let count = Arc::clone(&hooked);
    let session = w
        .builder()
        .authorize_hook(move |_: &BrowserStep| *count.lock().unwrap() += 1)
        .build()
        .unwrap();
    let e = ping(&session).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("client_credentials"), "{e}");
    assert_eq!(*hooked.lock().unwrap(), 0);
    assert!(w.requests_to(Route::Register).is_empty());
}

#[test]
fn a_service_and_a_person_sharing_a_cache_never_get_each_others_tokens() {
    let w = World::with(with_key_auth());
    w.server
        .add_client("svc", "client_secret_basic", Some("s3cret"), None);
    let person = w.session();
    let theirs = person.access_token().unwrap();
    let service = w.service_builder("svc", "s3cret").build().unwrap();
    let ours = service.access_token().unwrap();
    assert_ne!(
        ours.secret(),
        theirs.secret(),
        "the service got the person's token"
    );
    let grants = w.requests_to(Route::Token);
    assert_eq!(
        grants.last().unwrap().form_param("grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(
        crate::common::stored(&service).grant.as_deref(),
        Some("client_credentials")
    );
    // Another service client does not take the first one's tokens either.
    w.server
        .add_client("svc-2", "client_secret_basic", Some("other"), None);
    let other = w.service_builder("svc-2", "other").build().unwrap();
    assert_ne!(other.access_token().unwrap().secret(), ours.secret());
    // A person's logout leaves a service's tokens alone.
    person.logout().unwrap();
    assert_eq!(crate::common::stored(&other).client_id, "svc-2");
}
