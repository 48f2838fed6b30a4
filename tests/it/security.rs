//! Refusals: servers the client must not follow.

use mcp_oauth_client::BrowserStep;
use mcp_oauth_client::testing::{Route, ServerConfig};
use mcp_oauth_client::{ErrorKind, Step};

use crate::common::World;

#[test]
fn an_as_without_code_challenge_methods_is_refused_before_any_browser_opens() {
    let w = World::with(ServerConfig {
        code_challenge_methods: None,
        ..ServerConfig::default()
    });
    let e = w.session().access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused);
    assert_eq!(e.step(), Step::AuthServerDiscovery);
    assert!(e.to_string().contains("S256"), "{e}");
    assert_eq!(w.browser.opened(), 0);
    assert!(w.requests_to(Route::Register).is_empty());
    assert!(w.requests_to(Route::Authorize).is_empty());
}

#[test]
fn an_as_offering_only_plain_pkce_is_refused() {
    let w = World::with(ServerConfig {
        code_challenge_methods: Some(vec!["plain".into()]),
        ..ServerConfig::default()
    });
    let e = w.session().access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused);
    assert_eq!(w.browser.opened(), 0);
}

#[test]
fn a_resource_metadata_resource_for_another_server_stops_the_flow() {
    let w = World::with(ServerConfig {
        prm_resource_override: Some("https://other.example.com/mcp".into()),
        ..ServerConfig::default()
    });
    let e = w.session().access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused);
    assert_eq!(e.step(), Step::ResourceDiscovery);
    assert_eq!(w.browser.opened(), 0);
}

#[test]
fn an_issuer_mismatch_in_as_metadata_stops_the_flow() {
    let w = World::with(ServerConfig {
        issuer_override: Some("https://evil.example.com".into()),
        ..ServerConfig::default()
    });
    let e = w.session().access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused);
    assert_eq!(e.step(), Step::AuthServerDiscovery);
    assert_eq!(w.browser.opened(), 0);
}

#[test]
fn a_missing_iss_from_a_server_that_advertises_rfc9207_is_refused_and_no_code_redeemed() {
    // The server advertises iss support; a forged response without iss arrives with the right
    // state (as a mix-up attacker would send it).
    let w = World::new();
    let session = w
        .builder()
        .authorize_hook(|step: &BrowserStep| {
            let url = &step.authorization_url;
            let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            let get = |k: &str| q.iter().find(|(n, _)| n == k).unwrap().1.clone();
            let forged = format!("{}?code=stolen&state={}", get("redirect_uri"), get("state"));
            let forged = url::Url::parse(&forged).unwrap();
            std::thread::spawn(move || mcp_oauth_client::testing::follow_redirects(&forged));
        })
        .build()
        .unwrap();
    let e = session.access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused);
    assert_eq!(e.step(), Step::Callback);
    assert!(w.requests_to(Route::Token).is_empty());
}

#[test]
fn plain_http_to_a_remote_server_is_refused_at_build() {
    let e = mcp_oauth_client::Session::builder("http://mcp.example.com/mcp")
        .cache_dir(std::env::temp_dir())
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused);
    let e = mcp_oauth_client::Session::builder("not a url")
        .cache_dir(std::env::temp_dir())
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
}

#[test]
fn errors_never_carry_tokens() {
    let w = World::new();
    let session = w.session();
    let token = session.access_token().unwrap();
    w.expire_cached_token(&session);
    let stored = crate::common::stored(&session);
    let refresh = stored.tokens.refresh_token.clone().unwrap();
    w.server.set_fault(
        Route::Token,
        mcp_oauth_client::testing::Fault::oauth_error(500, "server_error"),
    );
    let e = session.access_token().unwrap_err();
    for text in [e.to_string(), format!("{e:?}"), format!("{stored:?}")] {
        assert!(!text.contains(token.secret()), "{text}");
        assert!(!text.contains(refresh.secret()), "{text}");
    }
}

/// `mcp-oauth` with `args` and a bounded wait: a file that blocks or never ends must not hold
/// it; its output.
fn cli_within(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let cache = crate::common::TempDir::new();
    let mut cmd = crate::cli::cli(args, cache.path());
    cmd.envs(env.iter().copied())
        .stdin(std::process::Stdio::null());
    crate::cli::Watched::spawn(cmd).finish()
}

#[test]
fn files_a_user_names_are_read_only_when_regular_and_small_never_blocking() {
    let w = crate::common::World::new();
    let url = w.server.mcp_url().to_string();
    let dir = crate::common::TempDir::new();
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let big = dir.path().join("big.pem");
    std::fs::write(&big, "A".repeat(2 << 20)).unwrap();
    let fifo = fifo.to_str().unwrap();
    let big = big.to_str().unwrap();
    for (option, file) in [
        ("--client-secret-file", "/dev/zero"),
        ("--client-secret-file", fifo),
        ("--client-key-file", "/dev/zero"),
        ("--client-key-file", big),
        ("--ca-file", fifo),
        ("--ca-file", big),
        ("--assertion-file", "/dev/zero"),
    ] {
        let started = std::time::Instant::now();
        let mut args = vec!["token", url.as_str(), option, file];
        if option != "--assertion-file" {
            args.extend(["--client-id", "svc"]);
        }
        let out = cli_within(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{option} {file}"
        );
        assert!(!out.status.success(), "{option} {file}: {stderr}");
        assert!(
            stderr.contains("not a regular file") || stderr.contains("larger than"),
            "{option} {file}: {stderr}"
        );
    }
}
