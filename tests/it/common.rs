//! Shared fixtures: a server, a private cache directory, a session wired to a headless browser.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mcp_oauth_client::testing::{
    HeadlessBrowser, RecordedRequest, Route, ServerConfig, TestServer,
};
use mcp_oauth_client::{AuthMethod, Session, SessionBuilder, registration::ClientRegistration};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory of this test process. The name holds a process-wide counter:
    /// a clock alone can give two threads the same name, and then one test's drop deletes
    /// the other's cache in the middle of a flow.
    pub fn new() -> TempDir {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("mcp-oauth-it-{}-{n}", std::process::id());
        let p = std::env::temp_dir().join(name);
        // A leftover of an earlier process with the same pid is not ours to share.
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The names of the files in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// One test's world: a server, a cache directory and a headless browser.
pub struct World {
    pub server: TestServer,
    pub cache: TempDir,
    pub browser: HeadlessBrowser,
}

impl World {
    pub fn new() -> World {
        World::with(ServerConfig::default())
    }

    pub fn with(config: ServerConfig) -> World {
        World {
            server: TestServer::start_with(config).unwrap(),
            cache: TempDir::new(),
            browser: HeadlessBrowser::new(),
        }
    }

    /// A builder for the server's MCP URL, the world's cache and browser, a 10 s callback wait.
    pub fn builder(&self) -> SessionBuilder {
        Session::builder(self.server.mcp_url().as_str())
            .cache_dir(self.cache.path())
            .callback_timeout(Duration::from_secs(10))
            .authorize_hook(self.browser.hook())
    }

    pub fn session(&self) -> Session {
        self.builder().build().unwrap()
    }

    /// A builder for a service: the client credentials grant of client `id` with `secret`
    /// (which the server must know: `TestServer::add_client`).
    pub fn service_builder(&self, id: &str, secret: &str) -> SessionBuilder {
        self.builder()
            .client_id(id)
            .client_secret(secret)
            .client_credentials()
    }

    /// The requests the server received, as `METHOD path`.
    pub fn request_lines(&self) -> Vec<String> {
        self.server
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// The requests to one route.
    /// The authorization requests a browser made: not the client's own look, before it sends
    /// the browser there, at whether the server still knows a cached client (it carries the
    /// library's `User-Agent`).
    pub fn browser_authorizations(&self) -> Vec<RecordedRequest> {
        self.requests_to(Route::Authorize)
            .into_iter()
            .filter(|r| {
                !r.header("user-agent")
                    .is_some_and(|ua| ua.starts_with("mcp-oauth-client/"))
            })
            .collect()
    }

    pub fn requests_to(&self, route: Route) -> Vec<RecordedRequest> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.route == Some(route))
            .collect()
    }

    /// A session that logged in and whose cached token has since expired; the request log
    /// is empty.
    pub fn session_with_expired_token(&self) -> Session {
        let session = self.session();
        session.access_token().unwrap();
        self.expire_cached_token(&session);
        self.server.clear_requests();
        session
    }

    /// Whether the session's cache holds readable tokens.
    pub fn has_cached_tokens(&self, session: &Session) -> bool {
        session
            .file_store()
            .unwrap()
            .load_tokens(session.server_url())
            .unwrap()
            .is_some()
    }

    /// Moves the cached token's expiry to now, as if its lifetime had passed.
    pub fn expire_cached_token(&self, session: &Session) {
        let storage = session.file_store().unwrap();
        let mut stored = storage.load_tokens(session.server_url()).unwrap().unwrap();
        stored.tokens.expires_at = Some(mcp_oauth_client::internals::unix_now());
        storage.save_tokens(session.server_url(), &stored).unwrap();
    }

    /// An MCP `ping` with `token` as bearer; returns the HTTP status.
    pub fn mcp_status(&self, token: &str) -> u16 {
        self.ping_with(&[("authorization", format!("Bearer {token}"))])
    }

    /// An MCP `ping` sent with `headers` and no session; returns the HTTP status.
    pub fn ping_with(&self, headers: &[(&str, String)]) -> u16 {
        let agent = mcp_oauth_client::http::new_agent();
        let mut req = agent
            .post(self.server.mcp_url().as_str())
            .header("accept", "application/json")
            .content_type("application/json");
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        req.send(PING).unwrap().status().as_u16()
    }

    /// The requests the server received, but those to `route`.
    pub fn requests_except(&self, route: Route) -> Vec<RecordedRequest> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.route != Some(route))
            .collect()
    }
}

/// What the session's file store holds for its server (which must be something).
pub fn stored(session: &Session) -> mcp_oauth_client::StoredTokens {
    session
        .file_store()
        .unwrap()
        .load_tokens(session.server_url())
        .unwrap()
        .unwrap()
}

/// Waits up to `within` for `child` to end; past it the child is killed and the test fails.
pub fn wait_bounded(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not end within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A file of `tests/data`.
pub fn data_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    mcp_oauth_client::callback::CallbackListener::bind(Default::default(), 0)
        .unwrap()
        .port()
}

/// A client registered with `method` for a redirect URI on `port`, as an administrator would.
pub fn register_out_of_band(w: &World, port: u16, method: AuthMethod) -> ClientRegistration {
    let agent = mcp_oauth_client::http::new_agent();
    let md = mcp_oauth_client::discovery::discover_auth_server_metadata(&agent, &w.server.issuer())
        .unwrap()
        .unwrap();
    mcp_oauth_client::registration::register(
        &agent,
        md.registration_endpoint.as_deref().unwrap(),
        &md.issuer,
        &mcp_oauth_client::registration::RegistrationRequest::new("admin", method)
            .redirect_uri(Some(&format!("http://127.0.0.1:{port}/callback"))),
    )
    .unwrap()
}

/// An MCP `ping` request body.
pub const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

/// An MCP `ping` through `session.send` (a 401 logs in, a 403 steps up); the final status.
pub fn ping(session: &Session) -> mcp_oauth_client::Result<u16> {
    session
        .send(|agent| {
            agent
                .post(session.server_url().as_str())
                .header("accept", "application/json")
                .content_type("application/json")
                .send(PING)
        })
        .map(|mut r| {
            // Read to the end, as a client does, so the connection goes back to the pool.
            let _ = r.body_mut().read_to_string();
            r.status().as_u16()
        })
}

/// GETs `url` and parses its JSON body.
pub fn get_json(url: &str) -> serde_json::Value {
    let body = ureq::get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&body).unwrap()
}
