//! The token cache on disk: layout, clear, clear_all, modes.

use mcp_oauth_client::FileTokenStorage;
use mcp_oauth_client::testing::{HeadlessBrowser, TestServer};

use crate::common::{TempDir, World, names};

#[test]
fn tokens_file_records_absolute_expiry_issuer_and_token_endpoint() {
    let w = World::new();
    let session = w.session();
    session.access_token().unwrap();
    let path = session
        .file_store()
        .unwrap()
        .tokens_path(session.server_url());
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["issuer"], w.server.issuer());
    assert_eq!(
        json["token_endpoint"],
        format!("{}/token", w.server.issuer())
    );
    let expires_at = json["tokens"]["expires_at"].as_u64().unwrap();
    let now = mcp_oauth_client::internals::unix_now();
    assert!(
        expires_at > now + 3000 && expires_at <= now + 3600,
        "{expires_at}"
    );
    let client = session
        .file_store()
        .unwrap()
        .client_path(&w.server.issuer());
    assert!(client.exists());
}

#[test]
fn clear_removes_one_servers_files_only_and_clear_all_only_ours() {
    let cache = TempDir::new();
    let a = TestServer::start().unwrap();
    let b = TestServer::start().unwrap();
    let browser = HeadlessBrowser::new();
    let session = |s: &TestServer| {
        mcp_oauth_client::Session::builder(s.mcp_url().as_str())
            .cache_dir(cache.path())
            .authorize_hook(browser.hook())
            .build()
            .unwrap()
    };
    session(&a).access_token().unwrap();
    session(&b).access_token().unwrap();
    std::fs::write(cache.path().join("notes.txt"), "mine").unwrap();
    std::fs::write(cache.path().join("http_127_0_0_1_1_tokens.json"), "{}").unwrap();
    assert_eq!(
        names(cache.path()).len(),
        8,
        "two servers' tokens, clients, locks; two foreign"
    );

    let storage = FileTokenStorage::new(cache.path());
    storage.clear(&a.mcp_url()).unwrap();
    assert!(!storage.tokens_path(&a.mcp_url()).exists());
    assert!(!storage.client_path(&a.issuer()).exists());
    assert!(storage.tokens_path(&b.mcp_url()).exists());
    assert!(storage.client_path(&b.issuer()).exists());
    assert_eq!(names(cache.path()).len(), 5);

    assert_eq!(storage.clear_all().unwrap(), 3);
    assert_eq!(
        names(cache.path()),
        ["http_127_0_0_1_1_tokens.json", "notes.txt"]
    );
}

#[test]
fn clear_keeps_a_client_that_another_server_still_uses() {
    let w = World::new();
    let session = w.session();
    session.access_token().unwrap();
    // A second MCP URL on the same server and issuer.
    let other = w.server.mcp_url().join("/mcp/other").unwrap();
    let storage = session.file_store().unwrap();
    let mut stored = storage.load_tokens(session.server_url()).unwrap().unwrap();
    stored.server_url = other.to_string();
    storage.save_tokens(&other, &stored).unwrap();

    storage.clear(session.server_url()).unwrap();
    assert!(storage.client_path(&w.server.issuer()).exists());
    storage.clear(&other).unwrap();
    assert!(!storage.client_path(&w.server.issuer()).exists());
}

#[cfg(unix)]
#[test]
fn cache_dir_is_0700_and_files_0600() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let dir = w.cache.path().join("nested").join("cache");
    let session = w.builder().cache_dir(&dir).build().unwrap();
    session.access_token().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let files = names(&dir);
    assert_eq!(files.len(), 3, "tokens, client, lock: {files:?}");
    for f in files {
        assert_eq!(mode(&dir.join(&f)), 0o600, "{f}");
    }
}

#[cfg(unix)]
#[test]
fn a_looser_existing_cache_dir_is_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    std::fs::set_permissions(w.cache.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    w.session().access_token().unwrap();
    let mode = std::fs::metadata(w.cache.path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn a_corrupt_token_file_is_treated_as_absent_and_replaced_by_a_login() {
    let w = World::new();
    let session = w.session();
    let path = session
        .file_store()
        .unwrap()
        .tokens_path(session.server_url());
    std::fs::write(&path, b"{\"version\":1, truncated").unwrap();
    assert!(
        session
            .file_store()
            .unwrap()
            .load_tokens(session.server_url())
            .is_err()
    );
    let token = session.access_token().unwrap();
    assert_eq!(w.mcp_status(token.secret()), 200);
    assert!(
        session
            .file_store()
            .unwrap()
            .load_tokens(session.server_url())
            .unwrap()
            .is_some()
    );
}

#[test]
fn the_cache_dir_env_var_is_the_default() {
    // Read by FileTokenStorage::default_dir; checked in a child process so the test binary's
    // environment stays untouched.
    let w = World::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-oauth"))
        .arg("clear-all")
        .env("MCP_OAUTH_CACHE_DIR", w.cache.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&w.cache.path().display().to_string()),
        "{stderr}"
    );
}

/// Files planted under the cache's names by someone else (issue "Security round 2", item 4).
#[cfg(unix)]
mod planted {
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use mcp_oauth_client::ErrorKind;

    use crate::common::{TempDir, World};

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The lock file of the world's MCP server, next to its token file.
    fn lock_path(w: &World) -> PathBuf {
        let tokens = w
            .session()
            .file_store()
            .unwrap()
            .tokens_path(&w.server.mcp_url());
        let name = tokens.file_name().unwrap().to_string_lossy();
        tokens.with_file_name(name.replace("_tokens.json", ".lock"))
    }

    /// Runs `f` on another thread; its result, or a failure when it takes more than 10 s.
    fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("blocked on a planted file")
    }

    #[test]
    fn a_planted_lock_symlink_creates_nothing_where_it_points() {
        let w = World::new();
        let elsewhere = TempDir::new();
        let target = elsewhere.path().join("created-by-the-planter");
        std::fs::create_dir_all(w.cache.path()).unwrap();
        symlink(&target, lock_path(&w)).unwrap();
        let token = w.session().access_token().unwrap();
        assert_eq!(w.mcp_status(token.secret()), 200);
        assert!(!target.exists(), "the lock symlink was followed");
    }

    #[test]
    fn a_fifo_at_the_tokens_path_neither_hangs_token_nor_survives_a_login() {
        let w = World::new();
        let session = w.session();
        let tokens = session
            .file_store()
            .unwrap()
            .tokens_path(session.server_url());
        std::fs::create_dir_all(w.cache.path()).unwrap();
        mkfifo(&tokens);
        let e = within_10s({
            let storage = session.file_store().unwrap().clone();
            let url = session.server_url().clone();
            move || storage.load_tokens(&url).unwrap_err()
        });
        assert_eq!(e.kind(), ErrorKind::Storage);
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let token = within_10s(move || session.access_token().map(|t| t.secret().to_owned()));
        assert_eq!(w.mcp_status(&token.unwrap()), 200);
        assert!(std::fs::symlink_metadata(&tokens).unwrap().is_file());
    }

    #[test]
    fn clear_all_removes_a_fifo_and_a_symlink_under_our_names() {
        let w = World::new();
        let session = w.session();
        let tokens = session
            .file_store()
            .unwrap()
            .tokens_path(session.server_url());
        std::fs::create_dir_all(w.cache.path()).unwrap();
        mkfifo(&tokens);
        let elsewhere = TempDir::new();
        let kept = elsewhere.path().join("not-ours");
        std::fs::write(&kept, b"keep").unwrap();
        symlink(&kept, lock_path(&w)).unwrap();
        let storage = session.file_store().unwrap().clone();
        let removed = within_10s(move || storage.clear_all().unwrap());
        assert_eq!(removed, 2);
        assert!(std::fs::symlink_metadata(&tokens).is_err());
        assert!(std::fs::symlink_metadata(lock_path(&w)).is_err());
        assert_eq!(std::fs::read(&kept).unwrap(), b"keep");
    }

    #[test]
    fn a_tokens_symlink_is_refused_and_its_target_keeps_its_mode() {
        let w = World::new();
        let session = w.session();
        session.access_token().unwrap();
        let tokens = session
            .file_store()
            .unwrap()
            .tokens_path(session.server_url());
        let elsewhere = TempDir::new();
        let target = elsewhere.path().join("someone-elses.json");
        std::fs::rename(&tokens, &target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        symlink(&target, &tokens).unwrap();
        let e = session
            .file_store()
            .unwrap()
            .load_tokens(session.server_url())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage);
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "the mode was changed through the link");
    }
}

#[cfg(unix)]
#[test]
fn tightening_a_cache_dir_takes_rights_from_others_only_and_never_adds_any() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    w.session().access_token().unwrap();
    // Read-only for everyone, on purpose: others lose their rights, the owner keeps its own.
    std::fs::set_permissions(w.cache.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    // A refresh takes the cache's lock, which checks the directory.
    let _ = w.session().refresh();
    let mode = std::fs::metadata(w.cache.path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    std::fs::set_permissions(w.cache.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(mode, 0o500);
}
