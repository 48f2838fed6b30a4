//! Where a server may send the client (issue "Security round 2", item 1): a remote server's
//! metadata naming loopback, private, link-local or metadata addresses is refused before any
//! connection; a server on loopback may name loopback; private networks are an opt-in.
//!
//! A remote server is played by the embedded server with the session told to apply a remote
//! server's rules (`address_rules_as_if_remote`); the "local service" it points at is a
//! listener on another loopback port that counts the connections it gets.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use mcp_oauth_client::testing::{Fault, Route};
use mcp_oauth_client::{ErrorKind, Step};
use serde_json::{Value, json};

use crate::common::{World, get_json};

/// A local service an attacker would like the client to talk to: counts connections.
struct Victim {
    port: u16,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Victim {
    fn start() -> Victim {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, done) = (Arc::clone(&connections), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok(_) => {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Victim {
            port,
            connections,
            stop,
        }
    }

    fn connections(&self) -> usize {
        // A connection already made is counted within a few polls.
        std::thread::sleep(Duration::from_millis(50));
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Serves the real authorization server metadata with `field` replaced.
fn as_metadata_naming(w: &World, field: &str, url: &str) {
    let mut md = get_json(&format!(
        "{}/.well-known/oauth-authorization-server",
        w.server.issuer()
    ));
    md[field] = json!(url);
    w.server
        .set_fault(Route::AuthServerMetadata, Fault::json(200, md));
}

/// A session with a remote server's address rules.
fn remote_session(w: &World) -> mcp_oauth_client::Session {
    w.builder().address_rules_as_if_remote().build().unwrap()
}

/// A login with a remote server's rules after its metadata named `url(victim port)` as
/// `field`: the world, the error, and how many connections the local service got.
fn login_naming(
    field: &str,
    url: impl Fn(u16) -> String,
) -> (World, mcp_oauth_client::Error, usize) {
    let w = World::new();
    let victim = Victim::start();
    as_metadata_naming(&w, field, &url(victim.port));
    let e = remote_session(&w).access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    let connections = victim.connections();
    (w, e, connections)
}

#[test]
fn a_remote_servers_registration_endpoint_on_loopback_is_refused_before_connecting() {
    let (w, e, connections) = login_naming("registration_endpoint", |port| {
        format!("http://127.0.0.1:{port}/register")
    });
    assert_eq!(e.step(), Step::AuthServerDiscovery);
    assert!(e.to_string().contains("plain HTTP"), "{e}");
    assert_eq!(connections, 0);
    assert_eq!(w.browser.opened(), 0);
}

#[test]
fn a_remote_servers_endpoint_whose_name_resolves_to_loopback_is_refused_before_connecting() {
    let (w, e, connections) = login_naming("registration_endpoint", |port| {
        format!("https://localhost:{port}/register")
    });
    assert_eq!(e.step(), Step::Registration);
    assert!(
        e.to_string().contains("localhost resolves to 127.0.0.1"),
        "{e}"
    );
    assert_eq!(connections, 0, "no connection to the local service");
    assert_eq!(w.browser.opened(), 0);
}

#[test]
fn a_remote_servers_token_endpoint_on_a_loopback_literal_gets_no_code() {
    let (w, e, connections) = login_naming("token_endpoint", |port| {
        format!("https://127.0.0.1:{port}/token")
    });
    assert!(e.to_string().contains("a loopback address"), "{e}");
    assert_eq!(connections, 0);
    assert!(w.requests_to(Route::Register).is_empty());
}

#[test]
fn a_challenge_naming_resource_metadata_on_loopback_is_refused() {
    let w = World::new();
    let victim = Victim::start();
    let session = remote_session(&w);
    let header = format!(
        r#"Bearer resource_metadata="http://127.0.0.1:{}/.well-known/oauth-protected-resource""#,
        victim.port
    );
    let e = session.on_unauthorized(Some(&header)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert_eq!(e.step(), Step::ResourceDiscovery);
    assert_eq!(victim.connections(), 0);
    assert!(w.server.requests().is_empty(), "{:?}", w.request_lines());
}

#[test]
fn resource_metadata_naming_a_link_local_authorization_server_is_refused() {
    let w = World::new();
    let mut prm = get_json(&format!(
        "{}.well-known/oauth-protected-resource/mcp",
        w.server.base_url()
    ));
    prm["authorization_servers"] = json!(["https://169.254.169.254/latest"]);
    w.server
        .set_fault(Route::ResourceMetadata, Fault::json(200, prm));
    let e = remote_session(&w).access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert_eq!(e.step(), Step::AuthServerDiscovery);
    assert!(e.to_string().contains("cloud metadata"), "{e}");
}

#[test]
fn a_cache_file_steering_refresh_to_a_local_service_is_refused_and_the_tokens_stay() {
    let w = World::new();
    let victim = Victim::start();
    let session = remote_session(&w);
    session.access_token().unwrap();
    w.expire_cached_token(&session);
    let path = session
        .file_store()
        .unwrap()
        .tokens_path(session.server_url());
    let mut file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    file["token_endpoint"] = json!(format!("https://127.0.0.1:{}/token", victim.port));
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    let before = std::fs::read(&path).unwrap();
    let e = session.access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert_eq!(e.step(), Step::Refresh);
    assert_eq!(victim.connections(), 0);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_server_on_loopback_may_name_another_loopback_port() {
    // The MCP TypeScript SDK's example: MCP on one local port, its authorization server on
    // another. The rule is for remote servers only.
    let w = World::new();
    let victim = Victim::start();
    as_metadata_naming(
        &w,
        "registration_endpoint",
        &format!("http://127.0.0.1:{}/register", victim.port),
    );
    let session = w
        .builder()
        .agent(
            ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_millis(500)))
                .build()
                .new_agent(),
        )
        .build()
        .unwrap();
    let e = session.access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport, "{e}");
    assert_eq!(victim.connections(), 1);
}

/// A session with a remote server's rules whose connects give up after 300 ms.
fn impatient_remote_session(w: &World, private_network: bool) -> mcp_oauth_client::Session {
    w.builder()
        .address_rules_as_if_remote()
        .allow_private_network(private_network)
        .agent(
            ureq::Agent::config_builder()
                .timeout_connect(Some(Duration::from_millis(300)))
                .timeout_global(Some(Duration::from_millis(600)))
                .build()
                .new_agent(),
        )
        .build()
        .unwrap()
}

#[test]
fn private_network_addresses_need_the_opt_in() {
    let w = World::new();
    // Nothing listens there; only whether the client tries matters.
    as_metadata_naming(
        &w,
        "registration_endpoint",
        "https://10.255.255.1:9/register",
    );
    let e = impatient_remote_session(&w, false)
        .access_token()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert!(e.to_string().contains("private network"), "{e}");
    let e = impatient_remote_session(&w, true)
        .access_token()
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Transport,
        "with the opt-in it tries: {e}"
    );
    assert_eq!(e.step(), Step::Registration);
}

#[test]
fn the_opt_in_never_opens_loopback_or_metadata_addresses() {
    let w = World::new();
    as_metadata_naming(&w, "token_endpoint", "https://169.254.169.254/token");
    let e = impatient_remote_session(&w, true)
        .access_token()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    as_metadata_naming(&w, "token_endpoint", "https://[::1]/token");
    let e = impatient_remote_session(&w, true)
        .access_token()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
}
