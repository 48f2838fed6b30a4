//! The library inside other programs (issue "An API that embeds cleanly"): logins that block
//! no one, non-interactive sessions, the browser step as a value, a quiet library, the
//! one-time launch URL.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_oauth_client::testing::{Route, follow_redirects};
use mcp_oauth_client::{
    BrowserStep, CacheLock, ErrorKind, PasteOutcome, Session, Step, StoredTokens, TokenStore,
    registration::ClientRegistration,
};

use crate::common::{TempDir, World};

#[test]
fn a_login_waiting_for_the_browser_does_not_hold_up_a_caller_with_a_fresh_token() {
    let w = World::new();
    w.session().access_token().unwrap(); // a valid token in the cache
    let (entered, browsing) = std::sync::mpsc::channel();
    let session = Arc::new(
        w.builder()
            .authorize_hook(move |step: &BrowserStep| {
                entered.send(()).unwrap();
                // The person takes 3 s in the browser.
                let launch = step.launch_url.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(3));
                    follow_redirects(&launch).unwrap();
                });
            })
            .build()
            .unwrap(),
    );
    let a = {
        let session = Arc::clone(&session);
        std::thread::spawn(move || session.login())
    };
    browsing.recv_timeout(Duration::from_secs(5)).unwrap();
    let started = Instant::now();
    let token = session.access_token().unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "thread B waited {took:?}");
    assert_eq!(w.mcp_status(token.secret()), 200);
    let new = a.join().unwrap().unwrap();
    assert_ne!(new.secret(), token.secret(), "A's login went through");
}

#[test]
fn a_non_interactive_session_with_nothing_cached_fails_at_once_without_hook_or_port() {
    let w = World::new();
    // Holding the pinned callback port: a session that tried to bind it would fail otherwise.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let called = Arc::new(Mutex::new(0));
    let count = Arc::clone(&called);
    let session = w
        .builder()
        .interactive(false)
        .callback_port(port)
        .authorize_hook(move |_: &BrowserStep| *count.lock().unwrap() += 1)
        .build()
        .unwrap();
    let started = Instant::now();
    let e = session.access_token().unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind(), ErrorKind::LoginRequired, "{e}");
    assert!(took < Duration::from_millis(100), "{took:?}");
    assert_eq!(*called.lock().unwrap(), 0);
    assert!(w.server.requests().is_empty(), "{:?}", w.request_lines());
    // The same with send(): the 401 leads to discovery, then LoginRequired, no browser.
    let e = crate::common::ping(&session).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LoginRequired, "{e}");
    assert_eq!(*called.lock().unwrap(), 0);
    assert!(w.requests_to(Route::Register).is_empty());
}

#[test]
fn a_non_interactive_session_uses_and_refreshes_cached_tokens() {
    let w = World::new();
    w.session().access_token().unwrap();
    let daemon = w.builder().interactive(false).build().unwrap();
    daemon.access_token().unwrap();
    w.expire_cached_token(&daemon);
    w.server.clear_requests();
    let token = daemon.access_token().unwrap();
    assert_eq!(w.request_lines(), ["POST /token"]);
    assert_eq!(w.mcp_status(token.secret()), 200);
}

#[test]
fn refresh_uses_the_cached_token_endpoint_without_discovery() {
    let w = World::new();
    let session = w.session();
    let before = session.access_token().unwrap();
    w.server.clear_requests();
    let after = session.refresh().unwrap();
    assert_ne!(before.secret(), after.secret());
    assert_eq!(w.request_lines(), ["POST /token"]);
}

#[test]
fn the_hook_gets_the_step_and_a_paste_delivers_the_response() {
    let w = World::new();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&outcomes);
    let session = w
        .builder()
        .authorize_hook(move |step: &BrowserStep| {
            assert_eq!(step.redirect_uri.path(), "/callback");
            assert!(step.remaining() > Duration::from_secs(5));
            assert!(step.launch_url.path().starts_with("/start/"));
            assert!(!step.launch_url.as_str().contains("state="));
            // A browser on another machine: the person copies where it ended.
            let (url, paster, seen) = (
                step.authorization_url.clone(),
                step.paster(),
                Arc::clone(&seen),
            );
            std::thread::spawn(move || {
                let mut seen = seen.lock().unwrap();
                seen.push(paster.deliver("not a url"));
                seen.push(paster.deliver("http://127.0.0.1:1/callback?code=x&state=other"));
                let ended_on = follow_redirects_stopping_at_callback(&url);
                seen.push(paster.deliver(ended_on.as_str()));
                seen.push(paster.deliver(ended_on.as_str()));
            });
        })
        .build()
        .unwrap();
    let token = session.access_token().unwrap();
    assert_eq!(w.mcp_status(token.secret()), 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while outcomes.lock().unwrap().len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        *outcomes.lock().unwrap(),
        [
            PasteOutcome::NotACallback,
            PasteOutcome::NotThisLogin,
            PasteOutcome::Delivered,
            PasteOutcome::Over,
        ]
    );
}

/// Follows the authorization server's redirects and returns the callback URL it ends on,
/// without requesting it (the listener is not reachable from "another machine").
fn follow_redirects_stopping_at_callback(url: &url::Url) -> url::Url {
    let (_, location) = get_once(url);
    url.join(&location.unwrap()).unwrap()
}

#[test]
fn cancel_login_ends_the_wait_at_once_and_leaves_the_cache_as_it_was() {
    let w = World::new();
    w.session().access_token().unwrap();
    let path = w
        .session()
        .file_store()
        .unwrap()
        .tokens_path(&w.server.mcp_url());
    let before = std::fs::read(&path).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let session = Arc::new(
        w.builder()
            .authorize_hook(move |_: &BrowserStep| tx.send(()).unwrap()) // never approves
            .build()
            .unwrap(),
    );
    assert!(!session.cancel_login(), "nothing waits yet");
    let login = {
        let session = Arc::clone(&session);
        std::thread::spawn(move || session.login())
    };
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    // The hook has returned; the listener is waiting (or about to).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !session.cancel_login() {
        assert!(Instant::now() < deadline, "the login never waited");
        std::thread::sleep(Duration::from_millis(5));
    }
    let e = login.join().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    assert_eq!(e.step(), Step::Callback);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// GETs `url` without following a redirect: the status and the `Location`.
fn get_once(url: &url::Url) -> (u16, Option<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let r = agent.get(url.as_str()).call().unwrap();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (r.status().as_u16(), location)
}

#[test]
fn a_launch_url_opened_twice_stops_the_login() {
    // Another local user read the launch URL from the browser's command line and opened it
    // before the browser did: it learns where it redirects, the browser is then second.
    let w = World::new();
    let browser_page = Arc::new(Mutex::new(None));
    let page = Arc::clone(&browser_page);
    let session = w
        .builder()
        .authorize_hook(move |step: &BrowserStep| {
            let (launch, page) = (step.launch_url.clone(), Arc::clone(&page));
            std::thread::spawn(move || {
                let (status, location) = get_once(&launch);
                assert_eq!(status, 302);
                assert!(location.unwrap().contains("state="));
                let visit = follow_redirects(&launch).unwrap();
                *page.lock().unwrap() = Some(visit);
            });
        })
        .build()
        .unwrap();
    let e = session.access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert!(e.to_string().contains("opened twice"), "{e}");
    assert!(w.requests_to(Route::Token).is_empty());
    let deadline = Instant::now() + Duration::from_secs(5);
    while browser_page.lock().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let visit = browser_page.lock().unwrap().take().unwrap();
    assert_eq!(visit.status, 400);
    assert!(visit.body.contains("already used"), "{}", visit.body);
}

#[test]
fn a_launch_url_redirects_once_to_the_authorization_url() {
    let w = World::new();
    let launches = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&launches);
    let session = w
        .builder()
        .authorize_hook(move |step: &BrowserStep| {
            let (launch, seen) = (step.launch_url.clone(), Arc::clone(&seen));
            let authorization = step.authorization_url.clone();
            std::thread::spawn(move || {
                let (status, location) = get_once(&launch);
                let location = location.unwrap();
                seen.lock()
                    .unwrap()
                    .push((status, location == authorization.as_str()));
                follow_redirects(&url::Url::parse(&location).unwrap()).unwrap();
            });
        })
        .build()
        .unwrap();
    session.access_token().unwrap();
    assert_eq!(*launches.lock().unwrap(), [(302, true)]);
}

/// Not a test of its own: a browser for `BROWSER` (see the next test). Started by the
/// library's `webbrowser` call through a script, it follows the URL in
/// `MCP_OAUTH_TEST_BROWSE` like a browser whose user approves.
#[test]
fn browser_child() {
    if let Ok(url) = std::env::var("MCP_OAUTH_TEST_BROWSE") {
        follow_redirects(&url::Url::parse(&url).unwrap()).unwrap();
    }
}

/// Not a test of its own: a program that logs in with every default (no hook), run by the
/// next test with its stderr captured.
#[test]
fn default_login_child() {
    let (Ok(url), Ok(cache)) = (
        std::env::var("MCP_OAUTH_TEST_LOGIN_URL"),
        std::env::var("MCP_OAUTH_TEST_LOGIN_CACHE"),
    ) else {
        return;
    };
    let session = Session::builder(url)
        .cache_dir(cache)
        .callback_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    session.access_token().unwrap();
}

#[cfg(unix)]
#[test]
fn a_login_through_the_system_browser_writes_nothing_to_stderr() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let bin = std::env::current_exe().unwrap();
    let scripts = TempDir::new();
    let browser = scripts.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!(
            "#!/bin/sh\nMCP_OAUTH_TEST_BROWSE=\"$1\" exec '{}' --exact embedding::browser_child --test-threads=1 >/dev/null 2>&1\n",
            bin.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(&bin)
        .args([
            "--exact",
            "embedding::default_login_child",
            "--test-threads=1",
            "--quiet",
        ])
        .env("BROWSER", &browser)
        .env("MCP_OAUTH_TEST_LOGIN_URL", w.server.mcp_url().as_str())
        .env("MCP_OAUTH_TEST_LOGIN_CACHE", w.cache.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stderr.is_empty(),
        "stderr: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The login really went through the system browser path.
    assert_eq!(w.requests_to(Route::Token).len(), 1);
    assert!(w.has_cached_tokens(&w.session()));
}

/// A token store in memory, as a program would plug in a keyring or a database.
#[derive(Debug, Default, Clone)]
struct MemoryStore {
    inner: Arc<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    tokens: Mutex<std::collections::HashMap<String, StoredTokens>>,
    clients: Mutex<std::collections::HashMap<String, ClientRegistration>>,
    locked: Mutex<bool>,
    freed: std::sync::Condvar,
    locks_taken: std::sync::atomic::AtomicUsize,
}

/// Releases a [`MemoryStore`] lock on drop.
struct Release(Arc<MemoryInner>);

impl Drop for Release {
    fn drop(&mut self) {
        *self.0.locked.lock().unwrap() = false;
        self.0.freed.notify_all();
    }
}

impl TokenStore for MemoryStore {
    fn load_tokens(&self, server_url: &url::Url) -> mcp_oauth_client::Result<Option<StoredTokens>> {
        Ok(self
            .inner
            .tokens
            .lock()
            .unwrap()
            .get(server_url.as_str())
            .cloned())
    }
    fn save_tokens(
        &self,
        server_url: &url::Url,
        tokens: &StoredTokens,
    ) -> mcp_oauth_client::Result<()> {
        self.inner
            .tokens
            .lock()
            .unwrap()
            .insert(server_url.to_string(), tokens.clone());
        Ok(())
    }
    fn load_client(&self, issuer: &str) -> mcp_oauth_client::Result<Option<ClientRegistration>> {
        Ok(self.inner.clients.lock().unwrap().get(issuer).cloned())
    }
    fn save_client(&self, client: &ClientRegistration) -> mcp_oauth_client::Result<()> {
        self.inner
            .clients
            .lock()
            .unwrap()
            .insert(client.issuer.clone(), client.clone());
        Ok(())
    }
    fn remove_client(&self, issuer: &str) -> mcp_oauth_client::Result<()> {
        self.inner.clients.lock().unwrap().remove(issuer);
        Ok(())
    }
    fn clear(&self, server_url: &url::Url) -> mcp_oauth_client::Result<()> {
        self.inner
            .tokens
            .lock()
            .unwrap()
            .remove(server_url.as_str());
        Ok(())
    }
    fn lock(&self, _: &url::Url, wait: Duration) -> mcp_oauth_client::Result<CacheLock> {
        let mut locked = self.inner.locked.lock().unwrap();
        let deadline = Instant::now() + wait;
        while *locked {
            let left = deadline.saturating_duration_since(Instant::now());
            locked = self.inner.freed.wait_timeout(locked, left).unwrap().0;
        }
        *locked = true;
        self.inner
            .locks_taken
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(CacheLock::new(Release(Arc::clone(&self.inner))))
    }
}

#[test]
fn a_token_store_of_the_programs_own_keeps_tokens_out_of_files() {
    let w = World::new();
    let store = MemoryStore::default();
    let session = |store: &MemoryStore| w.builder().token_store(store.clone()).build().unwrap();
    let first = session(&store);
    assert!(first.file_store().is_none());
    let token = first.access_token().unwrap();
    assert_eq!(w.mcp_status(token.secret()), 200);
    assert!(
        !w.cache.path().exists() || crate::common::names(w.cache.path()).is_empty(),
        "no file written"
    );
    // Another session on the same store: the cached token, no request.
    w.server.clear_requests();
    let second = session(&store);
    assert_eq!(second.access_token().unwrap().secret(), token.secret());
    assert!(w.server.requests().is_empty());
    // A refresh goes through the store's lock.
    let locks = store
        .inner
        .locks_taken
        .load(std::sync::atomic::Ordering::SeqCst);
    let refreshed = second.refresh().unwrap();
    assert_ne!(refreshed.secret(), token.secret());
    assert_eq!(w.request_lines(), ["POST /token"]);
    assert!(
        store
            .inner
            .locks_taken
            .load(std::sync::atomic::Ordering::SeqCst)
            > locks
    );
    assert_eq!(
        store
            .load_tokens(&w.server.mcp_url())
            .unwrap()
            .unwrap()
            .tokens
            .access_token
            .secret(),
        refreshed.secret()
    );
    second.clear().unwrap();
    assert!(store.load_tokens(&w.server.mcp_url()).unwrap().is_none());
}

#[test]
fn a_front_end_is_told_each_step_as_a_typed_event() {
    use mcp_oauth_client::Progress;
    let w = crate::common::World::new();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    let session = w
        .builder()
        .on_progress(move |event: &Progress| log.lock().unwrap().push(event.clone()))
        .build()
        .unwrap();
    session.access_token().unwrap();
    let issuer = w.server.issuer();
    let events = seen.lock().unwrap().clone();
    assert_eq!(events.len(), 5, "{events:?}");
    assert!(
        matches!(&events[0], Progress::AuthorizationServer { issuer: i } if *i == issuer),
        "{events:?}"
    );
    assert!(
        matches!(&events[1], Progress::ServerMetadata { .. }),
        "{events:?}"
    );
    assert!(
        matches!(&events[2], Progress::Registered { .. }),
        "{events:?}"
    );
    assert!(
        matches!(&events[3], Progress::WaitingForBrowser { .. }),
        "{events:?}"
    );
    assert_eq!(events[4], Progress::Exchanging);
    w.expire_cached_token(&session);
    session.access_token().unwrap();
    let events = seen.lock().unwrap().clone();
    assert_eq!(events.len(), 6, "{events:?}");
    assert!(
        matches!(&events[5], Progress::Refreshing { .. }),
        "{events:?}"
    );
}
