//! The `mcp-oauth` binary against the embedded server: commands, output, exit codes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mcp_oauth_client::testing::{Route, ServerConfig, TestServer, follow_redirects};

use crate::common::{TempDir, World};

/// The CLI with `args` and the cache `cache`, in an environment without a desktop session:
/// no browser can start unless a test names one (`BROWSER`).
pub(crate) fn cli(args: &[&str], cache: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
    cmd.args(args).arg("--cache-dir").arg(cache);
    for var in [
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "BROWSER",
        "WSL_DISTRO_NAME",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A CLI process whose stderr is read line by line: each line is sent on the channel as it
/// comes, and the reader thread returns all of it.
pub(crate) struct Watched {
    pub(crate) child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<String>,
}

impl Watched {
    pub(crate) fn spawn(mut cmd: Command) -> Watched {
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        Watched {
            child,
            lines,
            reader,
        }
    }

    /// The first line (within 20 s) for which `pick` returns something.
    pub(crate) fn wait_for<T>(&self, mut pick: impl FnMut(&str) -> Option<T>) -> Option<T> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            if let Some(found) = pick(&line) {
                return Some(found);
            }
        }
    }

    /// The authorization URL the CLI printed.
    fn authorization_url(&self) -> Option<url::Url> {
        self.wait_for(|line| {
            let url = line.trim();
            (url.starts_with("http") && url.contains("/authorize?"))
                .then(|| url::Url::parse(url).ok())
                .flatten()
        })
    }

    /// Waits (up to 30 s: a process that does not end is killed and the test fails) for the
    /// process to end; its output.
    pub(crate) fn finish(mut self) -> Output {
        let status = crate::common::wait_bounded(&mut self.child, Duration::from_secs(30));
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut self.child.stdout.take().unwrap(), &mut stdout).unwrap();
        Output {
            status,
            stdout: stdout.into_bytes(),
            stderr: self.reader.join().unwrap().into_bytes(),
        }
    }
}

/// `login URL --no-browser`, with this test acting as the user's browser: it reads the printed
/// authorization URL from stderr and follows it.
fn login_as_user(server: &TestServer, cache: &std::path::Path, extra: &[&str]) -> Output {
    let mut cmd = cli(&["login", server.mcp_url().as_str(), "--no-browser"], cache);
    cmd.args(extra);
    complete_login(cmd)
}

/// Runs `cmd` (a login with `--no-browser`), following the authorization URL it prints as the
/// user's browser would; its output.
pub(crate) fn complete_login(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null());
    let watched = Watched::spawn(cmd);
    if let Some(url) = watched.authorization_url() {
        let _ = follow_redirects(&url);
    }
    watched.finish()
}

/// Logs in through the CLI as a user would; returns what it cached.
fn logged_in(w: &World) -> mcp_oauth_client::StoredTokens {
    let out = login_as_user(&w.server, w.cache.path(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    mcp_oauth_client::FileTokenStorage::new(w.cache.path())
        .load_tokens(&w.server.mcp_url())
        .unwrap()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn login_then_token_is_usable_as_a_bearer_and_needs_no_request() {
    let w = World::new();
    let out = login_as_user(&w.server, w.cache.path(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Logged in to"));
    w.server.clear_requests();
    let out = cli(&["token", w.server.mcp_url().as_str()], w.cache.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = text(&out.stdout);
    let token = token.trim_end();
    assert!(!token.is_empty() && !token.contains(char::is_whitespace));
    assert!(w.server.requests().is_empty());
    assert_eq!(w.mcp_status(token), 200);
}

#[test]
fn token_json_has_no_refresh_token_and_refresh_forces_a_refresh() {
    let w = World::new();
    logged_in(&w);
    let url = w.server.mcp_url();
    let out = cli(&["token", url.as_str(), "--json"], w.cache.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["token_type"], "Bearer");
    assert!(json["expires_in"].as_u64().unwrap() > 3000);
    assert!(json.get("refresh_token").is_none());
    let refresh = mcp_oauth_client::FileTokenStorage::new(w.cache.path())
        .load_tokens(&url)
        .unwrap()
        .unwrap()
        .tokens
        .refresh_token
        .unwrap();
    assert!(!text(&out.stdout).contains(refresh.secret()));

    w.server.clear_requests();
    let out = cli(&["token", url.as_str(), "--refresh"], w.cache.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = w.requests_to(Route::Token);
    assert_eq!(token.len(), 1);
    assert_eq!(
        token[0].form_param("grant_type").as_deref(),
        Some("refresh_token")
    );
    assert_ne!(
        text(&out.stdout).trim(),
        json["access_token"].as_str().unwrap()
    );
}

#[test]
fn status_json_shape_and_no_secrets() {
    let w = World::new();
    let stored = logged_in(&w);
    let out = cli(&["status", "--json"], w.cache.path()).output().unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let mut keys: Vec<&str> = row
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "client_id",
            "expired",
            "expires_at",
            "issuer",
            "refresh_token",
            "scope",
            "server_url",
            "unfinished_refresh_started"
        ]
    );
    assert_eq!(row["unfinished_refresh_started"], serde_json::Value::Null);
    assert_eq!(row["server_url"], w.server.mcp_url().as_str());
    assert_eq!(row["issuer"], w.server.issuer());
    assert_eq!(row["refresh_token"], true);
    assert_eq!(row["expired"], false);
    let human = cli(&["status"], w.cache.path()).output().unwrap();
    for output in [text(&out.stdout), text(&human.stdout)] {
        assert!(!output.contains(stored.tokens.access_token.secret()));
        assert!(!output.contains(stored.tokens.refresh_token.as_ref().unwrap().secret()));
    }
    assert!(text(&human.stdout).contains("refresh token: yes"));
    let human = text(&human.stdout);
    assert!(
        human.contains("expires:       in 59 min") || human.contains("expires:       in 1 h 0 min"),
        "{human}"
    );
}

#[test]
fn logout_revokes_both_tokens_and_a_later_token_needs_a_new_login() {
    let w = World::new();
    let stored = logged_in(&w);
    let out = cli(&["logout", w.server.mcp_url().as_str()], w.cache.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Revoked the refresh token and the access token"),
        "{}",
        text(&out.stderr)
    );
    let revoked = w.server.revoked_tokens();
    assert_eq!(
        revoked,
        [
            stored.tokens.refresh_token.unwrap().secret().to_owned(),
            stored.tokens.access_token.secret().to_owned()
        ]
    );
    assert_eq!(w.mcp_status(stored.tokens.access_token.secret()), 401);
    // Nothing cached: `token` has to log in again (and here nobody approves in time).
    w.server.clear_requests();
    let out = cli(
        &[
            "token",
            w.server.mcp_url().as_str(),
            "--no-browser",
            "--timeout",
            "1",
        ],
        w.cache.path(),
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("/authorize?"));
    assert!(w.requests_to(Route::Token).is_empty());
}

#[test]
fn exit_codes_per_failure() {
    let cache = TempDir::new();
    // With a "browser" that opens nothing: a login may be tried, and fails where it should.
    let code = |args: &[&str]| {
        cli(args, cache.path())
            .env("BROWSER", "true")
            .output()
            .unwrap()
            .status
            .code()
    };
    // Bad command lines.
    assert_eq!(code(&["frobnicate"]), Some(2));
    assert_eq!(code(&["token"]), Some(2));
    assert_eq!(
        code(&["token", "http://127.0.0.1:1/mcp", "--bogus"]),
        Some(2)
    );
    // Network: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    assert_eq!(
        code(&[
            "token",
            &format!("http://127.0.0.1:{port}/mcp"),
            "--timeout",
            "10"
        ]),
        Some(5)
    );
    // Protocol: an authorization server without PKCE S256.
    let no_pkce = TestServer::start_with(ServerConfig {
        code_challenge_methods: None,
        ..ServerConfig::default()
    })
    .unwrap();
    assert_eq!(
        code(&["token", no_pkce.mcp_url().as_str(), "--timeout", "10"]),
        Some(6)
    );
    // Denied by the user.
    let deny = TestServer::start_with(ServerConfig {
        deny_authorization: true,
        ..ServerConfig::default()
    })
    .unwrap();
    let out = login_as_user(&deny, cache.path(), &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("access_denied"));
    // Storage: the cache "directory" is a file.
    let file = cache.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"))
        .args(["clear-all", "--cache-dir"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    // Errors are one line naming the step.
    let out = cli(&["token", no_pkce.mcp_url().as_str()], cache.path())
        .env("BROWSER", "true")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("mcp-oauth: authorization server metadata discovery failed"),
        "{stderr}"
    );
}

#[test]
fn every_command_has_help_with_examples() {
    let cache = TempDir::new();
    for command in ["login", "token", "status", "logout", "clear-all", "demo"] {
        let out = cli(&[command, "--help"], cache.path()).output().unwrap();
        assert!(out.status.success());
        let help = text(&out.stdout);
        assert!(
            help.contains("USAGE:") && help.contains("EXAMPLES:"),
            "{command}: {help}"
        );
        let again = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"))
            .args(["help", command])
            .output()
            .unwrap();
        assert_eq!(text(&again.stdout), help);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"))
        .arg("help")
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("EXIT CODES:"));
}

/// Starts `login URL --no-browser` and returns the child with the authorization URL it printed.
fn start_headless_login(
    server: &TestServer,
    cache: &std::path::Path,
) -> (std::process::Child, String) {
    let mut child = cli(&["login", server.mcp_url().as_str(), "--no-browser"], cache)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        if line.contains("/authorize?") {
            break line.trim().to_owned();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    (child, url)
}

#[test]
fn headless_login_accepts_the_redirect_url_pasted_on_stdin() {
    use std::io::Write;
    let w = World::new();
    let (mut child, url) = start_headless_login(&w.server, w.cache.path());
    // The browser is elsewhere: it gets the redirect but cannot reach this machine's listener.
    let response = mcp_oauth_client::http::new_agent()
        .get(&url)
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 302);
    let location = response
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mut stdin = child.stdin.take().unwrap();
    // A stray line and a forged address first: refused, the wait goes on.
    writeln!(stdin, "not a url").unwrap();
    let forged = location.replace("state=", "state=x");
    writeln!(stdin, "{forged}").unwrap();
    writeln!(stdin, "{location}").unwrap();
    stdin.flush().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "login did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    assert_eq!(w.requests_to(Route::Token).len(), 1);
    let out = cli(&["token", w.server.mcp_url().as_str()], w.cache.path())
        .output()
        .unwrap();
    assert_eq!(w.mcp_status(text(&out.stdout).trim()), 200);
}

#[test]
fn a_response_for_another_login_is_refused_in_one_line_and_the_login_goes_on() {
    let w = World::new();
    let mut cmd = cli(
        &["token", w.server.mcp_url().as_str(), "--no-browser"],
        w.cache.path(),
    );
    cmd.args(["--timeout", "20"]);
    let watched = Watched::spawn(cmd);
    let url = watched.authorization_url().expect("no authorization URL");
    let redirect = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    // A stale tab's response reaches the listener first.
    let stale = url::Url::parse(&format!("{redirect}?code=old&state=an-older-login")).unwrap();
    let page = follow_redirects(&stale).unwrap();
    assert_eq!(page.status, 400);
    assert!(
        page.body
            .contains("does not belong to the login in progress")
    );
    assert!(page.body.contains("start the login again"), "{}", page.body);
    let refused = watched.wait_for(|line| line.contains("refused").then(|| line.to_owned()));
    assert_eq!(
        refused.as_deref(),
        Some(
            "mcp-oauth: refused an authorization response that does not belong to this login \
             (the state does not match this login); still waiting for the browser"
        )
    );
    // The person then approves in the right tab.
    follow_redirects(&url).unwrap();
    let out = watched.finish();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("refused").count(), 1, "{stderr}");
    let token = text(&out.stdout);
    assert_eq!(w.mcp_status(token.trim()), 200);
    let codes: Vec<_> = w
        .requests_to(Route::Token)
        .iter()
        .map(|r| r.form_param("code"))
        .collect();
    assert_eq!(codes.len(), 1);
    assert_ne!(codes[0].as_deref(), Some("old"));
}

/// Bytes a server could use to drive a terminal: ESC (colours, titles, clearing), BEL, CR
/// (overwriting a line), and the bidi override that reorders what follows.
const TERMINAL_TRICKS: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J\r\u{202e}\u{2028}\u{2029}";

/// True when `out` carries none of [`TERMINAL_TRICKS`] nor a bare CR.
fn clean(out: &[u8]) -> bool {
    let text = text(out);
    !text.contains(['\u{1b}', '\u{7}', '\r', '\u{202e}', '\u{2028}', '\u{2029}'])
}

#[test]
fn an_issuer_with_escape_sequences_reaches_neither_the_progress_lines_nor_the_error() {
    let w = World::new();
    let mut prm = crate::common::get_json(&format!(
        "{}.well-known/oauth-protected-resource/mcp",
        w.server.base_url()
    ));
    prm["authorization_servers"] =
        serde_json::json!([format!("{}/{TERMINAL_TRICKS}x", w.server.issuer())]);
    w.server.set_fault(
        Route::ResourceMetadata,
        mcp_oauth_client::testing::Fault::json(200, prm),
    );
    let out = cli(
        &["login", w.server.mcp_url().as_str(), "--no-browser"],
        w.cache.path(),
    )
    .args(["--timeout", "5"])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("resource metadata: authorization server"),
        "{stderr}"
    );
    assert!(stderr.contains("no metadata found"), "{stderr}");
    assert!(clean(&out.stderr), "{stderr:?}");
}

/// Logs in through the CLI, then rewrites the token file with `edit` as another process could.
fn logged_in_then_tampered(w: &World, edit: impl FnOnce(&mut serde_json::Value)) {
    logged_in(w);
    let storage = mcp_oauth_client::FileTokenStorage::new(w.cache.path());
    let path = storage.tokens_path(&w.server.mcp_url());
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut file);
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
}

#[test]
fn status_prints_a_tampered_cache_files_text_harmlessly() {
    let w = World::new();
    logged_in_then_tampered(&w, |file| {
        file["issuer"] = format!("https://as.example{TERMINAL_TRICKS}").into();
        file["client_id"] = format!("client{TERMINAL_TRICKS}").into();
        file["tokens"]["scope"] = format!("mcp:read{TERMINAL_TRICKS}").into();
    });
    for args in [&["status"][..], &["status", "--json"]] {
        let out = cli(args, w.cache.path()).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(clean(&out.stdout), "{:?}", text(&out.stdout));
        assert!(text(&out.stdout).contains("client]0;owned[2J"));
    }
}

#[test]
fn a_cached_access_token_with_cr_lf_is_never_printed() {
    let w = World::new();
    logged_in_then_tampered(&w, |file| {
        file["tokens"]["access_token"] = "abc\r\nX-Injected: yes".into();
    });
    let out = cli(
        &["token", w.server.mcp_url().as_str(), "--no-browser"],
        w.cache.path(),
    )
    .args(["--timeout", "1"])
    .output()
    .unwrap();
    assert!(!text(&out.stdout).contains("X-Injected"), "{:?}", out);
    assert!(text(&out.stdout).is_empty());
}

#[test]
fn a_client_secret_on_the_command_line_is_refused_with_where_to_put_it() {
    let w = World::new();
    let out = cli(
        &[
            "token",
            w.server.mcp_url().as_str(),
            "--client-id",
            "c",
            "--client-secret",
            "s3cret-in-ps",
        ],
        w.cache.path(),
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--client-secret-file"), "{stderr}");
    assert!(stderr.contains("MCP_OAUTH_CLIENT_SECRET"), "{stderr}");
    assert!(!stderr.contains("s3cret-in-ps"), "{stderr}");
    assert!(w.server.requests().is_empty());
}

#[test]
fn the_client_secret_comes_from_a_file_or_the_environment() {
    use crate::common::{free_port, register_out_of_band};
    let w = World::new();
    let port = free_port();
    let client = register_out_of_band(&w, port, mcp_oauth_client::AuthMethod::ClientSecretPost);
    let secret = client.client_secret.as_ref().unwrap().secret().to_owned();
    let secrets = TempDir::new();
    let file = secrets.path().join("secret");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let port = port.to_string();
    let common = [
        "--client-id",
        client.client_id.as_str(),
        "--callback-port",
        &port,
    ];
    // From a file.
    let cache = TempDir::new();
    let mut args = common.to_vec();
    args.extend(["--client-secret-file", file.to_str().unwrap()]);
    let out = login_as_user(&w.server, cache.path(), &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // From the environment.
    let cache = TempDir::new();
    let mut cmd = cli(
        &["login", w.server.mcp_url().as_str(), "--no-browser"],
        cache.path(),
    );
    cmd.args(common).env("MCP_OAUTH_CLIENT_SECRET", &secret);
    let watched = Watched::spawn(cmd);
    follow_redirects(&watched.authorization_url().unwrap()).unwrap();
    let out = watched.finish();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exchanges = w.requests_to(Route::Token);
    assert_eq!(exchanges.len(), 2);
    for r in exchanges {
        assert_eq!(
            r.form_param("client_secret").as_deref(),
            Some(secret.as_str())
        );
    }
}

#[test]
fn token_no_login_exits_8_when_only_a_login_would_help_and_prints_the_cached_token_otherwise() {
    let w = World::new();
    let out = cli(
        &["token", w.server.mcp_url().as_str(), "--no-login"],
        w.cache.path(),
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(8), "{}", text(&out.stderr));
    assert!(text(&out.stdout).is_empty());
    assert!(
        w.server.requests().is_empty(),
        "nothing was asked of the server"
    );
    let stored = logged_in(&w);
    let out = cli(
        &["token", w.server.mcp_url().as_str(), "--no-login"],
        w.cache.path(),
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        stored.tokens.access_token.secret()
    );
}

#[test]
fn a_closed_stdout_ends_the_cli_quietly() {
    let w = World::new();
    logged_in(&w);
    for args in [&["status", "--json"][..], &["status"], &["help", "status"]] {
        // A pipe whose reading end is already closed: every write to it fails (EPIPE).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = cli(args, w.cache.path())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn token_with_client_credentials_takes_the_secret_from_the_environment_and_the_key_from_a_file() {
    let w = World::with(ServerConfig {
        token_endpoint_auth_methods: vec!["client_secret_basic".into(), "private_key_jwt".into()],
        ..ServerConfig::default()
    });
    w.server
        .add_client("svc", "client_secret_basic", Some("s3cret"), None);
    let url = w.server.mcp_url().to_string();
    let cache = TempDir::new();
    // The secret from the environment; stdin closed: nothing is asked, nothing opened.
    let out = cli(
        &["token", &url, "--client-credentials", "--client-id", "svc"],
        cache.path(),
    )
    .env("MCP_OAUTH_CLIENT_SECRET", "s3cret")
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    assert_eq!(w.mcp_status(&token), 200);
    assert!(!text(&out.stderr).contains("s3cret"));
    assert!(w.requests_to(Route::Authorize).is_empty());

    // A private_key_jwt client, its key in a PEM file.
    let key_file = crate::common::data_file("client-es256.pem");
    let pem = std::fs::read_to_string(&key_file).unwrap();
    let key =
        mcp_oauth_client::SigningKey::from_pem(&pem, mcp_oauth_client::Step::Configure).unwrap();
    w.server
        .add_client("svc-key", "private_key_jwt", None, Some(key.public_jwk()));
    let cache = TempDir::new();
    let out = cli(
        &[
            "token",
            &url,
            "--client-credentials",
            "--client-id",
            "svc-key",
            "--client-key-file",
            key_file.to_str().unwrap(),
            "--json",
        ],
        cache.path(),
    )
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["token_type"], "Bearer");
    assert!(!text(&out.stdout).contains("PRIVATE KEY") && !text(&out.stderr).contains("PRIVATE"));
    let last = w.requests_to(Route::Token).pop().unwrap();
    assert!(last.form_param("client_assertion").is_some());

    // Without any credential for the client: a configuration error naming the grant's step.
    let out = cli(
        &["token", &url, "--client-credentials"],
        TempDir::new().path(),
    )
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("token grant"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn login_device_prints_where_to_go_and_the_code_then_stores_the_tokens() {
    let w = World::with(ServerConfig {
        device_interval: 1,
        ..ServerConfig::default()
    });
    let cache = TempDir::new();
    let mut cmd = cli(
        &[
            "login",
            w.server.mcp_url().as_str(),
            "--device",
            "--timeout",
            "20",
        ],
        cache.path(),
    );
    cmd.stdin(Stdio::null());
    let watched = Watched::spawn(cmd);
    watched
        .wait_for(|l| l.contains("and enter the code:").then_some(()))
        .expect("no code shown");
    let complete = watched
        .wait_for(|l| l.strip_prefix("Or open ").map(str::to_owned))
        .expect("no complete link shown");
    follow_redirects(&url::Url::parse(&complete).unwrap()).unwrap();
    let out = watched.finish();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(w.requests_to(Route::Authorize).is_empty());
    // The token command uses the device login's tokens.
    let out = cli(
        &["token", w.server.mcp_url().as_str(), "--no-login"],
        cache.path(),
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(w.mcp_status(text(&out.stdout).trim()), 200);
}

#[test]
fn token_header_json_prints_the_authorization_header_as_json() {
    let w = World::new();
    let cache = TempDir::new();
    let out = login_as_user(&w.server, cache.path(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(
        &[
            "token",
            w.server.mcp_url().as_str(),
            "--header-json",
            "--no-login",
        ],
        cache.path(),
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let header = json["Authorization"].as_str().unwrap();
    let token = header.strip_prefix("Bearer ").unwrap();
    assert_eq!(w.mcp_status(token), 200);
    assert_eq!(json.as_object().unwrap().len(), 1);
}

#[test]
fn client_auth_method_chooses_how_a_configured_client_authenticates() {
    // The server offers both secret methods; the client was registered with Basic only, and a
    // client with a secret would pick the form body by default.
    let w = World::with(ServerConfig {
        token_endpoint_auth_methods: vec![
            "client_secret_post".into(),
            "client_secret_basic".into(),
        ],
        ..ServerConfig::default()
    });
    w.server
        .add_client("svc", "client_secret_basic", Some("s3cret"), None);
    let url = w.server.mcp_url().to_string();
    let run = |extra: &[&str]| {
        let cache = TempDir::new();
        let mut args = vec!["token", &url, "--client-credentials", "--client-id", "svc"];
        args.extend_from_slice(extra);
        cli(&args, cache.path())
            .env("MCP_OAUTH_CLIENT_SECRET", "s3cret")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let chosen = run(&[]);
    assert_eq!(chosen.status.code(), Some(6), "{}", text(&chosen.stderr));
    w.server.clear_requests();
    let basic = run(&["--client-auth-method", "client_secret_basic"]);
    assert!(basic.status.success(), "{}", text(&basic.stderr));
    let grant = &w.requests_to(Route::Token)[0];
    assert!(grant.header("authorization").unwrap().starts_with("Basic "));
    assert!(grant.form_param("client_secret").is_none());
    let bad = run(&["--client-auth-method", "tls_client_auth"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("--client-auth-method takes"));
}

#[test]
fn token_gives_a_bearer_token_where_the_mcp_server_takes_dpop_and_refuses_where_it_requires_it() {
    use mcp_oauth_client::testing::McpDpop;
    let w = World::with(ServerConfig {
        dpop: true,
        ..ServerConfig::default()
    });
    let url = w.server.mcp_url().to_string();
    // `login` binds (both sides take DPoP); `token` then gets a Bearer token, with one login.
    let stored = logged_in(&w);
    assert!(stored.tokens.is_dpop());
    let out = complete_login(cli(&["token", &url, "--no-browser"], w.cache.path()));
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let token = text(&out.stdout).trim().to_owned();
    assert_eq!(w.mcp_status(&token), 200, "usable as Authorization: Bearer");
    assert!(
        stderr.contains("DPoP-bound; logging in for a Bearer token"),
        "{stderr}"
    );
    assert!(!stderr.contains("bound to a DPoP key"), "{stderr}");
    // The next call prints it from the cache, silently.
    let out = cli(&["token", &url, "--no-login"], w.cache.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), token);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    // --header-json likewise.
    let out = cli(
        &["token", &url, "--no-login", "--header-json"],
        w.cache.path(),
    )
    .output()
    .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(header["Authorization"], format!("Bearer {token}"));
    // --dpop asks for the bound kind where a login is needed, and says once what it is.
    let cache = TempDir::new();
    let out = complete_login(cli(
        &["token", &url, "--dpop", "--no-browser"],
        cache.path(),
    ));
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("bound to a DPoP key").count(), 1, "{stderr}");

    // A server that takes bound tokens only: a clear error, no browser.
    let strict = World::with(ServerConfig {
        dpop: true,
        mcp_dpop: McpDpop::Required,
        ..ServerConfig::default()
    });
    let token = || {
        cli(
            &["token", strict.server.mcp_url().as_str(), "--no-browser"],
            strict.cache.path(),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap()
    };
    let out = token();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("takes DPoP-bound tokens only"), "{stderr}");
    assert!(stderr.contains("mcp-oauth proxy"), "{stderr}");
    assert!(strict.requests_to(Route::Authorize).is_empty());
    // With bound tokens cached there: the same error, and no word of a login that does not
    // happen.
    assert!(logged_in(&strict).tokens.is_dpop());
    strict.server.clear_requests();
    let out = token();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("mcp-oauth proxy"), "{stderr}");
    assert!(!stderr.contains("logging in"), "{stderr}");
    assert!(strict.requests_to(Route::Authorize).is_empty());
    assert!(strict.requests_to(Route::Token).is_empty());
}

#[test]
fn a_login_whose_tokens_cannot_be_stored_fails_with_the_caches_exit_code() {
    let w = World::new();
    let url = w.server.mcp_url().to_string();
    // A cache "directory" that is a file, or below one: refused before any browser.
    let file = w.cache.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    for dir in [file.clone(), file.join("below")] {
        let out = cli(&["login", &url, "--no-browser"], &dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "{stderr}");
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
        assert!(!stderr.contains("Logged in"), "{stderr}");
    }
    assert!(w.requests_to(Route::Authorize).is_empty());
    // The directory goes away while the browser is awaited: logged in, but nothing stored.
    let cache = TempDir::new();
    let dir = cache.path().join("cache");
    let mut cmd = cli(&["login", &url, "--no-browser"], &dir);
    cmd.stdin(Stdio::null());
    let watched = Watched::spawn(cmd);
    let authorize = watched.authorization_url().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, "now a file").unwrap();
    follow_redirects(&authorize).unwrap();
    let out = watched.finish();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("not cached"), "{stderr}");
    assert!(!stderr.contains("Logged in"), "{stderr}");
}

#[test]
fn with_no_browser_and_no_terminal_a_login_fails_at_once_saying_what_to_run() {
    let w = World::new();
    let url = w.server.mcp_url().to_string();
    // A timeout, so that a login that waits after all fails the test in seconds, not minutes.
    for args in [
        vec!["token", &url, "--timeout", "10"],
        vec!["login", &url, "--timeout", "10"],
    ] {
        let started = std::time::Instant::now();
        let out = cli(&args, w.cache.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(8), "{args:?}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            stderr.contains("--device") && stderr.contains("mcp-oauth login"),
            "{stderr}"
        );
        assert!(!stderr.contains("Opening your browser"), "{stderr}");
    }
    // A browser that cannot be started, and no terminal: the same, at once.
    let started = std::time::Instant::now();
    let out = cli(&["login", &url], w.cache.path())
        .env("BROWSER", "/nonexistent/browser")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(w.requests_to(Route::Token).is_empty());
}

#[test]
fn command_lines_are_checked_per_command_with_exit_code_2() {
    let cache = TempDir::new();
    for (args, says) in [
        (
            vec!["token", "mcp.example.com/mcp"],
            "not an absolute http(s) URL",
        ),
        (vec!["token", "http://mcp.example.com/mcp"], "plain http"),
        (
            vec!["clear-all", "--device"],
            "--device does not apply to clear-all",
        ),
        (
            vec!["login", "https://mcp.example.com/mcp", "--json"],
            "--json does not apply to login",
        ),
        (
            vec!["token", "https://mcp.example.com/mcp", "--timeout", "x"],
            "--timeout takes a number",
        ),
        // The bridge's standard input is the MCP client's: never a secret to read.
        (
            vec![
                "proxy",
                "https://mcp.example.com/mcp",
                "--client-secret-file",
                "-",
            ],
            "proxy's standard input is the MCP client's messages",
        ),
        // The demo's cache is its own; clear-all removes files, not keyring items.
        (
            vec!["demo", "--keyring"],
            "--keyring does not apply to demo",
        ),
        (
            vec!["clear-all", "--keyring"],
            "--keyring does not apply to clear-all",
        ),
    ] {
        let out = cli(&args, cache.path()).output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no completions for tcsh"));
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout).trim(),
        format!("mcp-oauth {}", env!("CARGO_PKG_VERSION"))
    );
    let help = |command: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"))
            .args(["help", command])
            .output()
            .unwrap();
        text(&out.stdout)
    };
    let clear_all = help("clear-all");
    assert!(
        clear_all.contains("--cache-dir") && !clear_all.contains("--scopes"),
        "{clear_all}"
    );
    let token = help("token");
    assert!(
        token.contains("--json") && token.contains("--refresh"),
        "{token}"
    );
    let overview = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"))
        .arg("help")
        .output()
        .unwrap();
    let overview = text(&overview.stdout);
    for section in ["EXIT CODES:", "ENVIRONMENT:", "FILES:", "SIGNALS:"] {
        assert!(overview.contains(section), "{section}");
    }
}

#[test]
fn completions_are_scripts_of_their_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let script = text(&out.stdout);
        assert!(script.contains("client-credentials"), "{shell}");
        if shell == "bash" {
            let dir = TempDir::new();
            let path = dir.path().join("mcp-oauth.bash");
            std::fs::write(&path, &script).unwrap();
            let checked = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(checked.status.success(), "{}", text(&checked.stderr));
            // Completing `mcp-oauth token --no-l` offers --no-login.
            let probe = format!(
                "source {}; COMP_WORDS=(mcp-oauth token --no-l); COMP_CWORD=2; _mcp_oauth; echo \"${{COMPREPLY[@]}}\"",
                path.display()
            );
            let offered = Command::new("bash").arg("-c").arg(&probe).output().unwrap();
            assert_eq!(text(&offered.stdout).trim(), "--no-login");
        }
    }
}

#[test]
fn verbosity_and_rust_log() {
    let w = World::new();
    let url = w.server.mcp_url().to_string();
    let login = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["login", url.as_str(), "--no-browser"];
        args.extend_from_slice(extra);
        let mut cmd = cli(&args, w.cache.path());
        cmd.envs(env.iter().copied());
        complete_login(cmd)
    };
    let normal = login(&[], &[]);
    assert!(text(&normal.stderr).contains("resource metadata: authorization server"));
    let quiet = login(&["-q"], &[]);
    assert!(quiet.status.success());
    assert!(
        !text(&quiet.stderr).contains("resource metadata"),
        "{}",
        text(&quiet.stderr)
    );
    assert!(!text(&quiet.stderr).contains("Logged in"));
    // -q: what logout and clear-all did is not said either; only errors are.
    let out = cli(&["logout", url.as_str(), "-q"], w.cache.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let out = cli(&["clear-all", "-q"], w.cache.path()).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    // The library's log, its steps once (as log lines, not also as progress lines).
    let verbose = login(&["-v"], &[]);
    let verbose = text(&verbose.stderr);
    assert!(verbose.contains("info: resource metadata"), "{verbose}");
    assert_eq!(verbose.matches("resource metadata").count(), 1, "{verbose}");
    let logged = login(&["-q"], &[("RUST_LOG", "mcp_oauth_client=info")]);
    assert!(
        text(&logged.stderr).contains("info: "),
        "{}",
        text(&logged.stderr)
    );
    let bad = cli(&["status"], w.cache.path())
        .env("RUST_LOG", "mcp=loud")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("RUST_LOG"));
}

#[test]
fn a_web_server_without_oauth_is_named_as_such() {
    let web = crate::habits::plain_web_server();
    let cache = TempDir::new();
    let out = cli(&["token", &web.url("/mcp")], cache.path())
        .env("BROWSER", "true")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("does not offer OAuth for MCP"), "{stderr}");
    assert!(!stderr.contains("registration"), "{stderr}");
    assert!(!crate::habits::registered_at(&web));
}

#[test]
fn a_bridge_without_a_login_names_the_command_that_logs_in() {
    let w = World::new();
    let url = w.server.mcp_url().to_string();
    let mut proxy = crate::bridge::Proxy::start(&url, &w.cache, &["--no-login"]);
    let reply = proxy.call(1, "initialize", serde_json::json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}));
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("mcp-oauth login {url}")),
        "{message}"
    );
    assert!(!message.contains("interactive"), "{message}");
    assert!(proxy.finish().0.success());
}
