//! Many processes, one token cache: the cross-process lock, and a cache that survives what a
//! disk and a user can do to it. Child processes are this test binary run again in a child
//! mode (`child_process` below), driven by environment variables.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mcp_oauth_client::BrowserStep;
use mcp_oauth_client::testing::{Route, ServerConfig, TestServer};
use mcp_oauth_client::{ErrorKind, Session};

use crate::common::{World, names};

const CHILD_ENV: &str = "MCP_OAUTH_TEST_CHILD";

/// Runs this test binary again as a child in `mode`.
fn spawn_child(
    mode: &str,
    server: &TestServer,
    cache: &std::path::Path,
    extra: &[(&str, String)],
) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "cache::child_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, mode)
    .env("CHILD_URL", server.mcp_url().as_str())
    .env("CHILD_CACHE", cache)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Reads the child's stdout until a line starting with `prefix`, within `timeout`.
fn wait_for_line(child: &mut Child, prefix: &str, timeout: Duration) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = prefix.to_owned();
    std::thread::spawn(move || {
        // The harness prints "test name ... " before the child's first line. Reading goes on
        // to the end, so the child never writes into a closed pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(at) = line.find(&prefix) {
                let _ = tx.send(line[at..].to_owned());
            }
        }
    });
    rx.recv_timeout(timeout)
        .expect("the child did not report in time")
}

/// Waits for a child with a bound; kills it when the bound passes.
fn wait_bounded(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a child process ran past {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Not a test of its own: the body of the child processes. Does nothing unless started by a
/// test with `MCP_OAUTH_TEST_CHILD` set.
#[test]
fn child_process() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let url = std::env::var("CHILD_URL").unwrap();
    let cache = std::env::var("CHILD_CACHE").unwrap();
    let session = |timeout: Duration| {
        Session::builder(url.as_str())
            .cache_dir(&cache)
            .callback_timeout(timeout)
            .authorize_hook(|_: &BrowserStep| println!("login-started"))
            .build()
            .unwrap()
    };
    match mode.as_str() {
        "ask" => {
            let n: usize = std::env::var("CHILD_ASKS").unwrap().parse().unwrap();
            let s = session(Duration::from_secs(2));
            let (mut ok, mut failed) = (0, 0);
            for _ in 0..n {
                match s.access_token() {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        failed += 1;
                        println!("error: {e}");
                    }
                }
                // 50 asks take about 4 s: several one-second expiries.
                std::thread::sleep(Duration::from_millis(80));
            }
            println!("done ok={ok} failed={failed}");
        }
        "hold-lock" => {
            let storage = mcp_oauth_client::FileTokenStorage::new(&cache);
            let _lock = storage
                .lock(&url::Url::parse(&url).unwrap(), Duration::from_secs(5))
                .unwrap();
            println!("locked");
            std::thread::sleep(Duration::from_secs(60));
        }
        "login" => {
            // Starts a login whose browser never comes back; the parent kills it.
            let _ = session(Duration::from_secs(60)).access_token();
        }
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn eight_processes_fifty_asks_each_one_second_tokens_strict_server_nothing_lost() {
    let w = World::with(ServerConfig {
        strict_refresh_reuse: true,
        access_token_lifetime: 1,
        ..ServerConfig::default()
    });
    w.session().access_token().unwrap();
    w.server.clear_requests();
    let started = Instant::now();
    let mut children: Vec<Child> = (0..8)
        .map(|_| {
            spawn_child(
                "ask",
                &w.server,
                w.cache.path(),
                &[("CHILD_ASKS", "50".into())],
            )
        })
        .collect();
    let mut reports = Vec::new();
    for child in &mut children {
        reports.push(wait_for_line(child, "done", Duration::from_secs(60)));
        assert!(wait_bounded(child, Duration::from_secs(10)).success());
    }
    let elapsed = started.elapsed();
    for r in &reports {
        assert_eq!(r, "done ok=50 failed=0");
    }
    assert_eq!(w.server.family_revocations(), 0);
    let refreshes = w.requests_to(Route::Token);
    assert!(!refreshes.is_empty());
    let mut spent: Vec<String> = refreshes
        .iter()
        .map(|r| r.form_param("refresh_token").unwrap())
        .collect();
    let n = spent.len();
    spent.sort();
    spent.dedup();
    assert_eq!(spent.len(), n, "a refresh token was presented twice");
    eprintln!("{n} refreshes by 8 processes in {elapsed:?}");
    // One refresh per expiry: tokens live one (clock) second, so no more refreshes than
    // seconds elapsed, plus the partial seconds at either end.
    assert!(
        n as u64 <= elapsed.as_secs() + 2,
        "{n} refreshes in {elapsed:?}"
    );
    assert!(
        w.requests_to(Route::Authorize).is_empty(),
        "nobody logged in again"
    );
    // The file on disk is whole.
    let storage = mcp_oauth_client::FileTokenStorage::new(w.cache.path());
    assert!(storage.load_tokens(&w.server.mcp_url()).unwrap().is_some());
}

#[test]
fn a_crashed_lock_holder_does_not_block_the_next_process() {
    let w = World::new();
    let session = w.session();
    session.access_token().unwrap();
    w.expire_cached_token(&session);
    let mut child = spawn_child("hold-lock", &w.server, w.cache.path(), &[]);
    wait_for_line(&mut child, "locked", Duration::from_secs(20));
    // While it lives, the lock is taken.
    let e = session
        .file_store()
        .unwrap()
        .lock(session.server_url(), Duration::from_millis(100))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    child.wait().unwrap();
    let started = Instant::now();
    session.access_token().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(w.request_lines().last().unwrap(), "POST /token");
}

#[test]
fn a_process_killed_mid_login_leaves_the_cache_usable() {
    let w = World::new();
    let mut child = spawn_child("login", &w.server, w.cache.path(), &[]);
    wait_for_line(&mut child, "login-started", Duration::from_secs(20));
    child.kill().unwrap();
    child.wait().unwrap();
    let token = w.session().access_token().unwrap();
    assert_eq!(w.mcp_status(token.secret()), 200);
    let leftovers: Vec<String> = names(w.cache.path())
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_second_process_waits_for_the_first_ones_login_instead_of_opening_a_browser() {
    let w = World::new();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let browser = w.browser.clone();
    let mut approve = browser.hook();
    // This process's login holds the lock until the test lets the browser approve.
    let session = w
        .builder()
        .authorize_hook(move |step: &BrowserStep| {
            started_tx.send(()).unwrap();
            go_rx.recv_timeout(Duration::from_secs(20)).unwrap();
            approve(step);
        })
        .build()
        .unwrap();
    let first = std::thread::spawn(move || session.access_token().map(|t| t.secret().to_owned()));
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let mut child = spawn_child(
        "ask",
        &w.server,
        w.cache.path(),
        &[("CHILD_ASKS", "1".into())],
    );
    std::thread::sleep(Duration::from_millis(500)); // the child is now waiting on the lock
    go_tx.send(()).unwrap();
    first.join().unwrap().unwrap();
    let report = wait_for_line(&mut child, "done", Duration::from_secs(20));
    assert_eq!(report, "done ok=1 failed=0");
    wait_bounded(&mut child, Duration::from_secs(10));
    assert_eq!(
        w.requests_to(Route::Authorize).len(),
        1,
        "one browser login in all"
    );
}

#[test]
fn corrupt_truncated_foreign_and_future_files_are_errors_then_replaced_by_a_login() {
    let w = World::new();
    w.session().access_token().unwrap();
    let path = w
        .session()
        .file_store()
        .unwrap()
        .tokens_path(&w.server.mcp_url());
    let good = std::fs::read_to_string(&path).unwrap();
    let cases: [(&str, String); 5] = [
        ("truncated", good[..good.len() / 2].to_owned()),
        ("garbage", "\u{0}\u{1}binary".to_owned()),
        (
            "foreign",
            r#"{"access_token":"x","token_type":"bearer"}"#.to_owned(),
        ),
        ("future", good.replace("\"version\": 1", "\"version\": 99")),
        ("empty", String::new()),
    ];
    for (i, (name, content)) in cases.into_iter().enumerate() {
        std::fs::write(&path, content).unwrap();
        // A new process: it has nothing but the file.
        let session = w.session();
        let e = session
            .file_store()
            .unwrap()
            .load_tokens(session.server_url())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{name}");
        assert!(
            e.to_string().contains(&path.display().to_string()),
            "{name}: {e}"
        );
        let token = session.access_token().unwrap();
        assert_eq!(w.mcp_status(token.secret()), 200, "{name}");
        assert!(w.has_cached_tokens(&session));
        assert_eq!(
            w.browser_authorizations().len(),
            i + 2,
            "{name}: a fresh login"
        );
    }
}

#[test]
fn a_file_corrupted_under_a_running_session_is_rewritten_from_memory() {
    let w = World::new();
    let session = w.session();
    let token = session.access_token().unwrap();
    let path = session
        .file_store()
        .unwrap()
        .tokens_path(session.server_url());
    std::fs::write(&path, "{ broken").unwrap();
    assert_eq!(session.access_token().unwrap().secret(), token.secret());
    assert!(w.has_cached_tokens(&session));
    assert_eq!(w.browser.opened(), 1);
}

#[test]
fn an_unwritable_cache_still_returns_the_token_for_this_process() {
    let w = World::new();
    let file = w.cache.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let session = w.builder().cache_dir(file.join("cache")).build().unwrap();
    let e = session
        .file_store()
        .unwrap()
        .save_tokens(session.server_url(), &fake_tokens(&w.server))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(e.to_string().contains("not-a-dir"), "{e}");

    let first = session.access_token().unwrap();
    assert_eq!(w.mcp_status(first.secret()), 200);
    let second = session.access_token().unwrap();
    assert_eq!(second.secret(), first.secret(), "kept in memory");
    assert_eq!(w.browser.opened(), 1);
}

fn fake_tokens(server: &TestServer) -> mcp_oauth_client::StoredTokens {
    serde_json::from_value(serde_json::json!({
        "version": 1,
        "server_url": server.mcp_url().as_str(),
        "issuer": server.issuer(),
        "token_endpoint": format!("{}/token", server.issuer()),
        "client_id": "c",
        "auth_method": "none",
        "tokens": {"access_token": "a", "token_type": "Bearer"}
    }))
    .unwrap()
}

#[cfg(unix)]
#[test]
fn a_looser_file_is_tightened_and_a_foreign_one_refused() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let session = w.session();
    session.access_token().unwrap();
    let path = session
        .file_store()
        .unwrap()
        .tokens_path(session.server_url());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    crate::common::stored(&session);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Another user's file (needs the privilege to chown, which CI has: it runs as root).
    match std::os::unix::fs::chown(&path, Some(54321), None) {
        Ok(()) => {
            let e = session
                .file_store()
                .unwrap()
                .load_tokens(session.server_url())
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage);
            assert!(e.to_string().contains("belongs to user 54321"), "{e}");
        }
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied),
    }
}
