//! Interruptions at the worst moment: SIGINT and SIGTERM held while a token request's answer is
//! on its way to the cache, acted on at once otherwise; the library's critical sections; a
//! lost rotation explained.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_oauth_client::storage::RefreshMark;
use mcp_oauth_client::testing::{Fault, Route, ServerConfig};
use mcp_oauth_client::{CriticalSection, FileTokenStorage, Secret};

use crate::bridge::Proxy;
use crate::cli::{Watched, cli};
use crate::common::{World, free_port, stored};

/// A server that rotates refresh tokens and, given a spent one, revokes the whole grant.
fn strict() -> World {
    World::with(ServerConfig {
        strict_refresh_reuse: true,
        ..ServerConfig::default()
    })
}

/// Every file of the cache directory with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn send(child: &std::process::Child, signal: i32) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits (up to 20 s) until the server has received a request to `route`.
fn wait_for_request(w: &World, route: Route) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.requests_to(route).is_empty() {
        assert!(Instant::now() < deadline, "no request to {route:?} came");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Expires the cached token and makes the next refresh's answer come 600 ms after its
/// request, for a signal to land in between; returns the refresh token it will spend.
fn expire_with_a_slow_refresh(w: &World, session: &mcp_oauth_client::Session) -> Secret {
    w.expire_cached_token(session);
    let before = stored(session).tokens.refresh_token.unwrap();
    w.server.clear_requests();
    w.server.set_fault(
        Route::Token,
        Fault::slow(Duration::from_millis(600)).times(1),
    );
    before
}

#[test]
fn a_signal_during_a_refresh_is_held_until_the_rotated_tokens_are_stored() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let w = strict();
        let session = w.session();
        session.access_token().unwrap();
        let before = expire_with_a_slow_refresh(&w, &session);
        let mut cmd = cli(
            &["token", w.server.mcp_url().as_str(), "--no-login"],
            w.cache.path(),
        );
        cmd.stdin(Stdio::null());
        let watched = Watched::spawn(cmd);
        wait_for_request(&w, Route::Token);
        // Meanwhile the cache says a refresh began, with this refresh token.
        let storage = session.file_store().unwrap();
        let mark = storage.load_refresh_mark(session.server_url()).unwrap();
        assert!(mark.is_some_and(|m| m.presented(&before)));
        send(&watched.child, signal);
        let out = watched.finish();
        assert_eq!(
            out.status.signal(),
            Some(signal),
            "{:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        // The person is told why the process did not stop at once.
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            said.matches("storing the new tokens first").count(),
            1,
            "{said}"
        );
        // Ended by the signal, but only once the rotated tokens were on disk.
        let rotated = stored(&session).tokens.refresh_token.unwrap();
        assert_ne!(rotated.secret(), before.secret());
        assert_eq!(
            storage.load_refresh_mark(session.server_url()).unwrap(),
            None
        );
        // The grant lives: the next process refreshes with what was stored.
        w.expire_cached_token(&session);
        let next = cli(
            &["token", w.server.mcp_url().as_str(), "--no-login"],
            w.cache.path(),
        )
        .output()
        .unwrap();
        assert!(
            next.status.success(),
            "{}",
            String::from_utf8_lossy(&next.stderr)
        );
        assert_eq!(w.server.family_revocations(), 0);
        // Two refreshes, the held one and the next, each spending the token it found stored
        // (a login by these processes would have been refused: --no-login).
        let spent: Vec<String> = w
            .requests_to(Route::Token)
            .iter()
            .map(|r| r.form_param("refresh_token").unwrap_or_default())
            .collect();
        assert_eq!(spent, [before.secret(), rotated.secret()]);
    }
}

#[test]
fn a_sigterm_to_the_bridge_during_its_refresh_waits_for_the_rotated_tokens() {
    let w = strict();
    let url = w.server.mcp_url().to_string();
    let mut first = Proxy::start(&url, &w.cache, &[]);
    first.initialize();
    assert!(first.finish().0.success());
    let session = w.session();
    let before = expire_with_a_slow_refresh(&w, &session);
    let mut bridge = Proxy::start(&url, &w.cache, &["--no-login"]);
    bridge.send(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}));
    wait_for_request(&w, Route::Token);
    send(&bridge.child, libc::SIGTERM);
    let (status, stderr) = bridge.finish();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?} {stderr}");
    let after = stored(&session).tokens.refresh_token.unwrap();
    assert_ne!(
        after.secret(),
        before.secret(),
        "the rotated token was lost"
    );
    w.expire_cached_token(&session);
    session.access_token().unwrap();
    assert_eq!(w.server.family_revocations(), 0);
}

#[test]
fn ctrl_c_while_the_browser_is_awaited_ends_at_once_and_leaves_the_cache_as_it_was() {
    let w = strict();
    w.session().access_token().unwrap();
    let before = snapshot(w.cache.path());
    let url = w.server.mcp_url().to_string();
    // A new login (cached client, so nothing is registered or written before the browser):
    // with a "browser" that opens nothing, and with none, at the paste prompt.
    let mut opened = cli(&["login", &url], w.cache.path());
    opened.env("BROWSER", "true").stdin(Stdio::null());
    let mut pasting = cli(&["login", &url, "--no-browser"], w.cache.path());
    pasting.stdin(Stdio::piped());
    for (cmd, waiting) in [
        (opened, "Opening your browser"),
        (pasting, "paste the address"),
    ] {
        let watched = Watched::spawn(cmd);
        watched
            .wait_for(|l| l.contains(waiting).then_some(()))
            .expect("the CLI did not reach the browser step");
        let sent = Instant::now();
        send(&watched.child, libc::SIGINT);
        let out = watched.finish();
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "took {:?}",
            sent.elapsed()
        );
        assert_eq!(out.status.signal(), Some(libc::SIGINT));
        assert_eq!(snapshot(w.cache.path()), before);
        assert!(
            w.requests_to(Route::Token).len() == 1,
            "no code was redeemed"
        );
    }
    // And the cached login still works.
    let out = cli(&["token", &url], w.cache.path()).output().unwrap();
    assert!(out.status.success());
}

/// Records the sections and checks, as each ends, what the store holds.
struct Recorder {
    dir: std::path::PathBuf,
    url: url::Url,
    events: Mutex<Vec<String>>,
}

impl CriticalSection for Recorder {
    fn enter(&self) {
        self.events.lock().unwrap().push("enter".into());
    }
    fn leave(&self) {
        let stored = FileTokenStorage::new(&self.dir)
            .load_tokens(&self.url)
            .unwrap()
            .map(|s| s.tokens.access_token.secret().to_owned());
        self.events
            .lock()
            .unwrap()
            .push(format!("leave {}", stored.unwrap_or_default()));
    }
}

/// A [`Recorder`] the test keeps a handle on.
struct Shared(Arc<Recorder>);

impl CriticalSection for Shared {
    fn enter(&self) {
        self.0.enter();
    }
    fn leave(&self) {
        self.0.leave();
    }
}

#[test]
fn the_library_opens_a_section_before_each_token_request_and_closes_it_after_the_write() {
    let w = strict();
    let recorder = Arc::new(Recorder {
        dir: w.cache.path().to_owned(),
        url: w.server.mcp_url(),
        events: Mutex::new(Vec::new()),
    });
    let session = w
        .builder()
        .critical_section(Shared(Arc::clone(&recorder)))
        .build()
        .unwrap();
    // A login: one section, around the code exchange only (not the browser).
    let first = session.access_token().unwrap();
    // A refresh: one more.
    w.expire_cached_token(&session);
    let second = session.access_token().unwrap();
    // A fresh token: none.
    session.access_token().unwrap();
    let events = recorder.events.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            "enter".to_owned(),
            format!("leave {}", first.secret()),
            "enter".to_owned(),
            format!("leave {}", second.secret()),
        ]
    );
}

#[test]
fn a_device_login_holds_each_poll_and_never_the_wait_between() {
    let w = crate::device::device_world(ServerConfig::default());
    let recorder = Arc::new(Recorder {
        dir: w.cache.path().to_owned(),
        url: w.server.mcp_url(),
        events: Mutex::new(Vec::new()),
    });
    let (person, _) = crate::device::person(false, Duration::from_millis(1500));
    let session = w
        .builder()
        .device_login(person)
        .critical_section(Shared(Arc::clone(&recorder)))
        .build()
        .unwrap();
    let token = session.access_token().unwrap();
    let polls = w.requests_to(Route::Token).len();
    assert!(polls >= 2, "approved before a second poll");
    let events = recorder.events.lock().unwrap().clone();
    // One section per poll; pending ones leave nothing stored, the last one the tokens.
    let mut expected = Vec::new();
    for _ in 1..polls {
        expected.extend(["enter".to_owned(), "leave ".to_owned()]);
    }
    expected.extend(["enter".to_owned(), format!("leave {}", token.secret())]);
    assert_eq!(events, expected);
}

#[test]
fn an_invalid_grant_after_an_unfinished_refresh_says_why_a_login_is_needed() {
    let w = strict();
    let session = w.session();
    session.access_token().unwrap();
    let storage = session.file_store().unwrap();
    let url = session.server_url().clone();
    let spent = stored(&session);
    let spent_token = spent.tokens.refresh_token.clone().unwrap();
    // A refresh the server answered (rotating the refresh token) whose process then died
    // before the write: the cache still holds the spent token, and the mark of that refresh.
    w.expire_cached_token(&session);
    session.refresh().unwrap();
    let mut lost = spent;
    lost.tokens.expires_at = Some(1);
    storage.save_tokens(&url, &lost).unwrap();
    let started = mcp_oauth_client::internals::unix_now() - 3;
    let mark = RefreshMark::new(&spent_token, started);
    storage.save_refresh_mark(&url, Some(&mark)).unwrap();
    // `status` tells, before anything is tried.
    let status = cli(&["status", "--json"], w.cache.path()).output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(rows[0]["unfinished_refresh_started"], started, "{rows}");
    let status = cli(&["status"], w.cache.path()).output().unwrap();
    assert!(
        String::from_utf8_lossy(&status.stdout).contains(" s ago and never finished"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );

    let out = cli(&["token", url.as_str(), "--no-login"], w.cache.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8));
    let err = String::from_utf8_lossy(&out.stderr);
    let explained: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("did not finish"))
        .collect();
    assert_eq!(explained.len(), 1, "{err}");
    assert!(explained[0].contains("a new login is needed"), "{err}");

    // The refusal was explained once: the mark is gone, and the same refusal again is not
    // blamed on an interruption; nor is a mark of another refresh token.
    assert_eq!(storage.load_refresh_mark(&url).unwrap(), None);
    let out = cli(&["token", url.as_str(), "--no-login"], w.cache.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("did not finish"));
    let other = RefreshMark::new(&mcp_oauth_client::Secret::new("another"), started);
    storage.save_refresh_mark(&url, Some(&other)).unwrap();
    let out = cli(&["token", url.as_str(), "--no-login"], w.cache.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("did not finish"));
}

#[test]
fn a_refresh_left_without_an_answer_keeps_its_mark_and_an_answered_one_removes_it() {
    let w = strict();
    let session = w.session();
    session.access_token().unwrap();
    w.expire_cached_token(&session);
    let storage = session.file_store().unwrap();
    let url = session.server_url().clone();
    let mut stored = stored(&session);
    let endpoint = stored.token_endpoint.clone();
    let refresh_token = stored.tokens.refresh_token.clone().unwrap();
    // The token endpoint on a port where nothing listens: no answer.
    stored.token_endpoint = format!("http://127.0.0.1:{}/token", free_port());
    storage.save_tokens(&url, &stored).unwrap();
    let e = session.access_token().unwrap_err();
    assert_eq!(e.kind(), mcp_oauth_client::ErrorKind::Transport, "{e}");
    let mark = storage.load_refresh_mark(&url).unwrap();
    assert!(mark.is_some_and(|m| m.presented(&refresh_token)));
    // Answered (here with new tokens): the mark goes.
    stored.token_endpoint = endpoint;
    storage.save_tokens(&url, &stored).unwrap();
    session.access_token().unwrap();
    assert_eq!(storage.load_refresh_mark(&url).unwrap(), None);
    // Answered with an error: it goes too, and the tokens stay as they were.
    w.expire_cached_token(&session);
    let before = std::fs::read(storage.tokens_path(&url)).unwrap();
    w.server
        .set_fault(Route::Token, Fault::status(503).times(1));
    session.access_token().unwrap_err();
    assert_eq!(storage.load_refresh_mark(&url).unwrap(), None);
    assert_eq!(std::fs::read(storage.tokens_path(&url)).unwrap(), before);
}
