//! Tokens and client secrets in the OS keyring (feature `keyring`). Runs where the keyring
//! works (Linux keyutils here); elsewhere it says why it did not run, and with
//! `MCP_OAUTH_REQUIRE_KEYRING` set (as `.ci/run` sets it where `/proc/keys` exists) it fails.

use mcp_oauth_client::TokenStore;
use mcp_oauth_client::storage::{IN_KEYRING, KeyringTokenStore};
use mcp_oauth_client::testing::{Route, ServerConfig};

use crate::common::{World, ping};

/// The store, or `None` (having said why) when this machine has no usable keyring.
fn keyring_store(w: &World) -> Option<KeyringTokenStore> {
    let store = KeyringTokenStore::new(w.cache.path());
    match store.probe() {
        Ok(()) => Some(store),
        Err(e) if std::env::var_os("MCP_OAUTH_REQUIRE_KEYRING").is_some() => {
            panic!("MCP_OAUTH_REQUIRE_KEYRING is set but the keyring does not work: {e:?}")
        }
        Err(e) => {
            eprintln!("NOT RUN: the OS keyring does not work here: {e:?}");
            None
        }
    }
}

/// Every file under the cache directory, as text.
fn cache_text(w: &World) -> String {
    std::fs::read_dir(w.cache.path())
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .collect()
}

#[test]
fn tokens_and_client_secrets_live_in_the_keyring_and_the_directory_holds_none() {
    let w = World::with(ServerConfig {
        registration_auth_method: Some("client_secret_post".into()),
        ..ServerConfig::default()
    });
    let Some(store) = keyring_store(&w) else {
        return;
    };
    let session = w.builder().token_store(store.clone()).build().unwrap();
    assert_eq!(ping(&session).unwrap(), 200);
    let token = session.access_token().unwrap();
    let stored = store.load_tokens(session.server_url()).unwrap().unwrap();
    let refresh = stored.tokens.refresh_token.clone().unwrap();
    let client = store.load_client(&stored.issuer).unwrap().unwrap();
    let secret = client.client_secret.clone().unwrap();

    // The directory: copies without a secret, the access token a marked placeholder.
    let text = cache_text(&w);
    assert!(text.contains(IN_KEYRING), "{text}");
    for s in [token.secret(), refresh.secret(), secret.secret()] {
        assert!(!text.contains(s), "a secret reached the cache directory");
    }
    let copy = store
        .files()
        .load_tokens(session.server_url())
        .unwrap()
        .unwrap();
    assert_eq!(copy.tokens.expires_at, Some(0));

    // Another process: the cached token from the keyring, no request for it.
    w.server.clear_requests();
    let again = w
        .builder()
        .token_store(KeyringTokenStore::new(w.cache.path()))
        .build()
        .unwrap();
    assert_eq!(again.access_token().unwrap().secret(), token.secret());
    assert!(w.requests_to(Route::Token).is_empty());
    // A refresh uses the client secret from the keyring.
    w.server.set_access_token_lifetime(3600);
    again.refresh().unwrap();
    let refreshed = w.requests_to(Route::Token);
    assert_eq!(
        refreshed[0].form_param("client_secret").as_deref(),
        Some(secret.secret())
    );

    // Cleared: gone from the keyring and the directory.
    again.clear().unwrap();
    assert!(store.load_tokens(again.server_url()).unwrap().is_none());
    assert!(store.load_client(&stored.issuer).unwrap().is_none());
    assert!(
        store
            .files()
            .load_tokens(again.server_url())
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_cli_keeps_tokens_in_the_keyring_with_keyring() {
    let w = World::with(ServerConfig {
        token_endpoint_auth_methods: vec!["client_secret_basic".into()],
        ..ServerConfig::default()
    });
    if keyring_store(&w).is_none() {
        return;
    }
    w.server
        .add_client("svc", "client_secret_basic", Some("s3cret"), None);
    let token = || {
        let url = w.server.mcp_url();
        let args = ["token", url.as_str(), "--keyring", "--client-credentials"];
        let out = crate::cli::cli(&args, w.cache.path())
            .args(["--client-id", "svc"])
            .env("MCP_OAUTH_CLIENT_SECRET", "s3cret")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let first = token();
    assert!(
        !cache_text(&w).contains(&first),
        "the token reached the cache directory"
    );
    assert_eq!(token(), first, "the second run takes it from the keyring");
    assert_eq!(w.requests_to(Route::Token).len(), 1);
    KeyringTokenStore::new(w.cache.path())
        .clear(&w.server.mcp_url())
        .unwrap();
}
