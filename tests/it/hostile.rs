//! Hostile input: a catalogue of misbehaving servers and callers, each over loopback.
//!
//! Every refusal case checks the same four things ([`refused`]): the call returned instead of
//! panicking, the error has the expected kind and step, the token file is byte for byte what
//! it was before, and no secret the flow handled (state, code, verifier, tokens, client
//! secret) appears in the error's `Display` or `Debug`, or in any log line. Servers misbehave
//! through the test server's faults; byte-level junk comes from [`RawServer`], a listener in
//! this file that answers whatever a case tells it to.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex, Once};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mcp_oauth_client::BrowserStep;
use mcp_oauth_client::testing::{Fault, Route, ServerConfig, follow_redirects};
use mcp_oauth_client::{
    Error, ErrorKind, Secret, Session, Step, internals::unix_now, token::MAX_EXPIRES_IN,
};
use serde_json::{Value, json};
use url::Url;

use crate::common::{World, get_json};

// -------------------------------------------------------------------------------------------
// The harness

/// Every log line any test of this binary produced, to look for secrets in.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct CaptureLog;

impl log::Log for CaptureLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        LOG.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if log::set_logger(&CaptureLog).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    });
}

/// The token file's bytes, `None` when there is none.
fn token_file(session: &Session) -> Option<Vec<u8>> {
    std::fs::read(
        session
            .file_store()
            .unwrap()
            .tokens_path(session.server_url()),
    )
    .ok()
}

/// Runs `call` and checks what every refusal promises; returns the error for more checks.
fn refused(
    w: &World,
    session: &Session,
    kind: ErrorKind,
    step: Step,
    call: impl FnOnce() -> mcp_oauth_client::Result<Secret>,
) -> Error {
    refused_with(w, session, &Vec::new, kind, step, call)
}

/// One case of the most common shape: a fresh world, `setup` making its server misbehave,
/// and a login that must be refused, before any browser opens when the refusal comes before
/// the authorization request. Returns the world and the error for more checks.
fn login_case(kind: ErrorKind, step: Step, setup: impl FnOnce(&World)) -> (World, Error) {
    let w = World::new();
    setup(&w);
    let s = w.session();
    let e = login_refused(&w, &s, kind, step);
    let before_the_browser = [
        Step::ResourceDiscovery,
        Step::AuthServerDiscovery,
        Step::Registration,
        Step::Authorization,
    ];
    if before_the_browser.contains(&step) {
        assert_eq!(
            w.browser.opened(),
            0,
            "a browser opened despite the refusal"
        );
    }
    (w, e)
}

/// Named cases of the [`login_case`] shape whose only checks are the common ones: each
/// entry is `test_name: ErrorKind in Step, |world| { make the server misbehave }`.
macro_rules! refusals {
    ($($name:ident: $kind:ident in $step:ident, |$w:ident| $setup:block;)*) => {
        $(
            #[test]
            fn $name() {
                login_case(ErrorKind::$kind, Step::$step, |$w: &World| $setup);
            }
        )*
    };
}

/// [`refused`] for the most common call: `session.access_token()`.
fn login_refused(w: &World, session: &Session, kind: ErrorKind, step: Step) -> Error {
    refused(w, session, kind, step, || session.access_token())
}

/// [`refused`], with `extra` secrets that the test server's log cannot show (those sent to a
/// [`RawServer`]), read once the call is over.
fn refused_with(
    w: &World,
    session: &Session,
    extra: &dyn Fn() -> Vec<String>,
    kind: ErrorKind,
    step: Step,
    call: impl FnOnce() -> mcp_oauth_client::Result<Secret>,
) -> Error {
    capture_logs();
    let before = token_file(session);
    let outcome = catch_unwind(AssertUnwindSafe(call));
    let e = match outcome {
        Ok(Err(e)) => e,
        Ok(Ok(_)) => panic!("the hostile input was accepted"),
        Err(_) => panic!("the client panicked"),
    };
    assert_eq!((e.kind(), e.step()), (kind, step), "{e}");
    assert_eq!(token_file(session), before, "the stored tokens changed");
    assert_no_secret(w, session, &extra(), &e);
    e
}

/// Checks that no secret of this world shows in the error or in a log line.
fn assert_no_secret(w: &World, session: &Session, extra: &[String], e: &Error) {
    let mut secrets = secrets_seen(w, session);
    secrets.extend(extra.iter().cloned());
    let text = format!("{e}\n{e:#}\n{e:?}");
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "a control character in {text:?}"
    );
    // The headless browser's own navigation (ureq logging its GETs of `/authorize` and
    // `/callback`) carries state and code by design; it is the browser, not the client.
    let log: String = LOG
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|l| {
            !(l.contains(" ureq") && (l.contains("/authorize?") || l.contains("/callback?")))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(
            !text.contains(secret.as_str()),
            "a secret in the error: {text}"
        );
        let leak = log.lines().find(|l| l.contains(secret.as_str()));
        assert!(leak.is_none(), "a secret in the log: {leak:?}");
    }
}

/// Every secret value that crossed the wire or sits in the cache: `state` and codes in
/// queries and callback URLs; codes, verifiers, refresh tokens and client secrets in forms;
/// bearer and basic credentials; tokens and secrets in the cache files.
fn secrets_seen(w: &World, session: &Session) -> Vec<String> {
    let mut out = Vec::new();
    for r in w.server.requests() {
        for name in ["state", "code"] {
            out.extend(r.query_param(name).map(str::to_owned));
        }
        out.extend(form_secrets(r.body.as_bytes()));
        if let Some(auth) = r.header("authorization") {
            out.extend(auth.split_once(' ').map(|(_, v)| v.to_owned()));
        }
    }
    for visit in w
        .browser
        .wait_for_visits(0, Duration::ZERO)
        .into_iter()
        .flatten()
    {
        for (k, v) in visit.final_url.query_pairs() {
            if k == "code" || k == "state" {
                out.push(v.into_owned());
            }
        }
    }
    let dir = session.file_store().unwrap().dir();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if let Ok(file) = serde_json::from_slice::<Value>(&std::fs::read(entry.path()).unwrap()) {
            json_secrets(&file, &mut out);
        }
    }
    out
}

fn form_secrets(body: &[u8]) -> Vec<String> {
    url::form_urlencoded::parse(body)
        .filter(|(k, _)| {
            [
                "code",
                "code_verifier",
                "refresh_token",
                "client_secret",
                "device_code",
            ]
            .contains(&k.as_ref())
        })
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn json_secrets(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s)
                        if ["access_token", "refresh_token", "client_secret"]
                            .contains(&k.as_str()) =>
                    {
                        out.push(s.clone());
                    }
                    other => json_secrets(other, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| json_secrets(v, out)),
        _ => {}
    }
}

/// An agent whose requests give up after 800 ms, for servers that hang.
fn impatient_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(800)))
        .build()
        .new_agent()
}

/// The test server's real authorization server metadata.
fn as_metadata(w: &World) -> Value {
    get_json(&format!(
        "{}/.well-known/oauth-authorization-server",
        w.server.issuer()
    ))
}

/// The test server's real protected resource metadata.
fn resource_metadata(w: &World) -> Value {
    get_json(&format!(
        "{}.well-known/oauth-protected-resource/mcp",
        w.server.base_url()
    ))
}

/// Serves `edit`ed authorization server metadata from now on.
fn edit_as_metadata(w: &World, edit: impl FnOnce(&mut Value)) {
    let mut md = as_metadata(w);
    edit(&mut md);
    w.server
        .set_fault(Route::AuthServerMetadata, Fault::json(200, md));
}

/// Serves `edit`ed protected resource metadata from now on.
fn edit_resource_metadata(w: &World, edit: impl FnOnce(&mut Value)) {
    let mut md = resource_metadata(w);
    edit(&mut md);
    w.server
        .set_fault(Route::ResourceMetadata, Fault::json(200, md));
}

/// A fault with a raw body of any content type.
fn raw_fault(status: u16, content_type: &str, body: impl Into<String>) -> Fault {
    Fault {
        body: body.into(),
        content_type: content_type.into(),
        ..Fault::status(status)
    }
}

/// A session that logged in and whose token has expired, so its next call refreshes.
fn expired_session(w: &World) -> Session {
    let session = w.session();
    session.access_token().unwrap();
    w.expire_cached_token(&session);
    session
}

/// Rewrites one field of the stored token file, as a tampering process would.
fn tamper_token_file(session: &Session, field: &str, value: Value) {
    let path = session
        .file_store()
        .unwrap()
        .tokens_path(session.server_url());
    let mut file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    file[field] = value;
    std::fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
}

// -------------------------------------------------------------------------------------------
// A raw server, for byte-level junk

type Answer = dyn Fn(&[u8], &mut TcpStream) + Send + Sync;

/// A loopback listener that reads each request (head and `Content-Length` body) and lets the
/// case answer with any bytes at all. Requests are kept for the secret checks.
pub(crate) struct RawServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    accept: Option<JoinHandle<()>>,
}

impl RawServer {
    pub(crate) fn start(
        answer: impl Fn(&[u8], &mut TcpStream) + Send + Sync + 'static,
    ) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let accept = thread::spawn({
            let (stop, requests) = (Arc::clone(&stop), Arc::clone(&requests));
            move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut stream) = stream else { continue };
                    let (answer, requests) = (Arc::clone(&answer), Arc::clone(&requests));
                    thread::spawn(move || {
                        let request = read_request(&mut stream);
                        requests.lock().unwrap().push(request.clone());
                        answer(&request, &mut stream);
                    });
                }
            }
        });
        RawServer {
            addr,
            stop,
            requests,
            accept: Some(accept),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests it received so far, as sent.
    pub(crate) fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.lock().unwrap().clone()
    }

    /// The secrets in the forms it received.
    fn secrets(&self) -> Vec<String> {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .flat_map(|r| form_secrets(body_of(r)))
            .collect()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Reads a request head and its `Content-Length` body, within five seconds.
fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return data;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return data,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
        }
    }
}

fn write(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes);
    let _ = stream.flush();
}

/// The body of a raw request (after the head), empty when there is none.
fn body_of(request: &[u8]) -> &[u8] {
    request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&request[..0], |i| &request[i + 4..])
}

/// A server that echoes what it was sent: every request is answered `status` with an OAuth
/// `error` whose description is the request, body first.
fn echoing_server(status: u16, error: &'static str) -> RawServer {
    RawServer::start(move |request, stream| {
        let head = &request[..request.len() - body_of(request).len()];
        let echo = format!(
            "{} {}",
            String::from_utf8_lossy(body_of(request)),
            String::from_utf8_lossy(head)
        );
        let body = json!({"error": error, "error_description": echo}).to_string();
        let reply = format!(
            "HTTP/1.1 {status} Echo\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        write(stream, reply.as_bytes());
    })
}

/// A raw server whose `/token` answers with `reply`, and the metadata pointing there.
fn raw_token_endpoint(w: &World, reply: &'static [u8]) -> RawServer {
    let raw = RawServer::start(move |_, stream| write(stream, reply));
    let token = raw.url("/token");
    edit_as_metadata(w, |md| md["token_endpoint"] = token.into());
    raw
}

/// A login whose token endpoint answers the bytes `reply` fails in transport, after asking
/// it exactly once.
fn raw_token_case(reply: &'static [u8]) {
    let w = World::new();
    let raw = raw_token_endpoint(&w, reply);
    let s = w.session();
    refused_with(
        &w,
        &s,
        &|| raw.secrets(),
        ErrorKind::Transport,
        Step::CodeExchange,
        || s.access_token(),
    );
    assert_eq!(raw.requests.lock().unwrap().len(), 1);
}

// -------------------------------------------------------------------------------------------
// Callback helpers

fn query_param(url: &Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

/// The listener address of an authorization URL's redirect URI.
fn callback_addr(url: &Url) -> SocketAddr {
    let redirect = Url::parse(&query_param(url, "redirect_uri")).unwrap();
    format!("127.0.0.1:{}", redirect.port().unwrap())
        .parse()
        .unwrap()
}

/// A hook that sends the browser to the callback with a forged query (given the real
/// `state`) instead of approving.
fn forged_callback(
    query: impl Fn(&str) -> String + Send + 'static,
) -> impl FnMut(&BrowserStep) + Send {
    move |step: &BrowserStep| {
        let url = &step.authorization_url;
        let forged = format!(
            "{}?{}",
            query_param(url, "redirect_uri"),
            query(&query_param(url, "state"))
        );
        let forged = Url::parse(&forged).unwrap();
        thread::spawn(move || follow_redirects(&forged));
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Sends `bytes` on a new connection to the callback port and returns the status line of
/// the answer (empty when there was none).
fn send_raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or("").to_owned()
}

fn request_for(addr: SocketAddr, target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes()
}

/// A hook that first runs `junk` against the callback port (collecting the status lines it
/// got back), then approves like the browser.
fn junk_then_approve(
    junk: impl Fn(SocketAddr) -> Vec<String> + Send + Sync + 'static,
) -> (impl FnMut(&BrowserStep) + Send, Arc<Mutex<Vec<String>>>) {
    let answers = Arc::new(Mutex::new(Vec::new()));
    let junk = Arc::new(junk);
    let hook = {
        let answers = Arc::clone(&answers);
        move |step: &BrowserStep| {
            let url = &step.authorization_url;
            let (url, answers, junk) = (url.clone(), Arc::clone(&answers), Arc::clone(&junk));
            thread::spawn(move || {
                let got = junk(callback_addr(&url));
                answers.lock().unwrap().extend(got);
                let _ = follow_redirects(&url);
            });
        }
    };
    (hook, answers)
}

/// A login whose browser is preceded by `junk` succeeds; returns the junk's status lines.
fn login_survives(junk: impl Fn(SocketAddr) -> Vec<String> + Send + Sync + 'static) -> Vec<String> {
    let w = World::new();
    let (hook, answers) = junk_then_approve(junk);
    let session = w.builder().authorize_hook(hook).build().unwrap();
    let token = session.access_token().unwrap();
    assert_eq!(w.mcp_status(token.secret()), 200);
    answers.lock().unwrap().clone()
}

fn status_of(line: &str) -> &str {
    line.split(' ').nth(1).unwrap_or("")
}

// -------------------------------------------------------------------------------------------
// Protected resource metadata

refusals! {
    prm_resource_naming_another_origin_is_refused: Refused in ResourceDiscovery, |w| {
        edit_resource_metadata(w, |md| {
            md["resource"] = "https://evil.example.com/mcp".into()
        });
    };
    prm_resource_deeper_than_the_server_is_refused: Refused in ResourceDiscovery, |w| {
        let deeper = format!("{}/admin", w.server.mcp_url());
        edit_resource_metadata(w, |md| md["resource"] = deeper.into());
    };
    prm_resource_on_another_port_of_the_same_host_is_refused: Refused in ResourceDiscovery, |w| {
        edit_resource_metadata(w, |md| md["resource"] = "http://127.0.0.1:1/mcp".into());
    };
    prm_that_is_an_html_page_is_invalid: InvalidResponse in ResourceDiscovery, |w| {
        w.server.set_fault(
            Route::ResourceMetadata,
            raw_fault(200, "text/html", "<html><body>Welcome</body></html>"),
        );
    };
    prm_that_is_a_json_array_is_invalid: InvalidResponse in ResourceDiscovery, |w| {
        w.server
            .set_fault(Route::ResourceMetadata, Fault::json(200, json!([1, 2])));
    };
    prm_without_authorization_servers_is_invalid: InvalidResponse in ResourceDiscovery, |w| {
        edit_resource_metadata(w, |md| md["authorization_servers"] = json!([]));
    };
    prm_nested_twenty_thousand_deep_is_invalid_not_a_stack_overflow: InvalidResponse in ResourceDiscovery, |w| {
        let deep = format!(
            r#"{{"resource":{}{},"authorization_servers":["{}"]}}"#,
            "[".repeat(20_000),
            "]".repeat(20_000),
            w.server.issuer()
        );
        w.server.set_fault(
            Route::ResourceMetadata,
            raw_fault(200, "application/json", deep),
        );
    };
}

#[test]
fn prm_larger_than_the_metadata_limit_is_invalid() {
    let (_, e) = login_case(ErrorKind::InvalidResponse, Step::ResourceDiscovery, |w| {
        let padding = "x".repeat(mcp_oauth_client::discovery::METADATA_LIMIT);
        edit_resource_metadata(w, |md| md["padding"] = padding.into());
    });
    assert!(e.to_string().contains("larger than allowed"), "{e}");
}

#[test]
fn prm_larger_than_the_body_limit_is_not_read_whole() {
    let (_, e) = login_case(ErrorKind::Transport, Step::ResourceDiscovery, |w| {
        let huge = "x".repeat(mcp_oauth_client::http::OAUTH_BODY_LIMIT as usize + 1);
        w.server.set_fault(
            Route::ResourceMetadata,
            raw_fault(200, "application/json", huge),
        );
    });
    assert!(e.to_string().contains("larger than allowed"), "{e}");
}

refusals! {
    prm_answering_500_stops_discovery: Status in ResourceDiscovery, |w| {
        w.server
            .set_fault(Route::ResourceMetadata, Fault::status(500));
    };
}

#[test]
fn prm_redirecting_elsewhere_is_not_followed() {
    let (_, e) = login_case(ErrorKind::Refused, Step::ResourceDiscovery, |w| {
        w.server.set_fault(
            Route::ResourceMetadata,
            Fault::status(302).header("Location", "https://evil.example.com/prm"),
        );
    });
    assert!(e.to_string().contains("redirect"), "{e}");
}

#[test]
fn a_challenge_pointing_metadata_at_plain_http_on_a_remote_host_is_refused() {
    let w = World::new();
    let s = w.session();
    let header = r#"Bearer resource_metadata="http://evil.example.com/.well-known/oauth-protected-resource""#;
    refused(&w, &s, ErrorKind::Refused, Step::ResourceDiscovery, || {
        s.on_unauthorized(Some(header))
    });
    assert!(w.server.requests().is_empty(), "{:?}", w.request_lines());
}

refusals! {
    prm_naming_a_plain_http_remote_authorization_server_is_refused: Refused in AuthServerDiscovery, |w| {
        edit_resource_metadata(w, |md| {
            md["authorization_servers"] = json!(["http://as.evil.example.com"])
        });
    };
    prm_naming_an_authorization_server_that_is_not_a_url_is_invalid: InvalidResponse in AuthServerDiscovery, |w| {
        edit_resource_metadata(w, |md| md["authorization_servers"] = json!(["not a url"]));
    };
}

#[test]
fn an_oversized_challenge_header_is_ignored_and_discovery_uses_well_known_urls() {
    let w = World::new();
    let s = w.session();
    let header = format!(
        r#"Bearer resource_metadata="http://evil.example.com/prm", scope="{}""#,
        "a ".repeat(mcp_oauth_client::www_authenticate::MAX_HEADER_LEN)
    );
    let token = s.on_unauthorized(Some(&header)).unwrap();
    assert_eq!(w.mcp_status(token.secret()), 200);
}

// -------------------------------------------------------------------------------------------
// Authorization server metadata

refusals! {
    an_issuer_with_a_trailing_slash_is_a_mismatch: Refused in AuthServerDiscovery, |w| {
        let issuer = format!("{}/", w.server.issuer());
        edit_as_metadata(w, |md| md["issuer"] = issuer.into());
    };
    a_token_endpoint_on_plain_http_remote_is_refused: Refused in AuthServerDiscovery, |w| {
        edit_as_metadata(w, |md| {
            md["token_endpoint"] = "http://as.evil.example.com/token".into()
        });
    };
    a_javascript_authorization_endpoint_is_refused: Refused in AuthServerDiscovery, |w| {
        edit_as_metadata(w, |md| {
            md["authorization_endpoint"] = "javascript:alert(1)".into()
        });
    };
    a_file_registration_endpoint_is_refused: Refused in AuthServerDiscovery, |w| {
        edit_as_metadata(w, |md| {
            md["registration_endpoint"] = "file:///etc/passwd".into()
        });
    };
    a_revocation_endpoint_that_is_not_a_url_is_invalid: InvalidResponse in AuthServerDiscovery, |w| {
        edit_as_metadata(w, |md| md["revocation_endpoint"] = "::not a url::".into());
    };
    metadata_without_a_token_endpoint_is_invalid: InvalidResponse in AuthServerDiscovery, |w| {
        edit_as_metadata(w, |md| {
            md.as_object_mut().unwrap().remove("token_endpoint");
        });
    };
    metadata_with_a_numeric_issuer_is_invalid: InvalidResponse in AuthServerDiscovery, |w| {
        edit_as_metadata(w, |md| md["issuer"] = json!(42));
    };
}

#[test]
fn metadata_offering_only_plain_pkce_is_refused() {
    let (w, _) = login_case(ErrorKind::Refused, Step::AuthServerDiscovery, |w| {
        edit_as_metadata(w, |md| {
            md["code_challenge_methods_supported"] = json!(["plain"])
        });
    });
    assert!(w.requests_to(Route::Register).is_empty());
}

refusals! {
    metadata_answering_503_stops_discovery: Status in AuthServerDiscovery, |w| {
        w.server
            .set_fault(Route::AuthServerMetadata, Fault::status(503));
    };
}

#[test]
fn metadata_that_hangs_times_out() {
    let w = World::new();
    w.server.set_fault(
        Route::AuthServerMetadata,
        Fault::status(200).delay(Duration::from_secs(3)),
    );
    let s = w.builder().agent(impatient_agent()).build().unwrap();
    let started = Instant::now();
    let e = login_refused(&w, &s, ErrorKind::Transport, Step::AuthServerDiscovery);
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

refusals! {
    an_authorization_endpoint_query_that_sets_redirect_uri_is_refused: Refused in Authorization, |w| {
        let steered = format!(
            "{}/authorize?redirect_uri={}",
            w.server.issuer(),
            encode("https://evil.example.com/cb")
        );
        edit_as_metadata(w, |md| md["authorization_endpoint"] = steered.into());
    };
    an_authorization_endpoint_with_a_fragment_is_invalid: InvalidResponse in Authorization, |w| {
        let endpoint = format!("{}/authorize#frag", w.server.issuer());
        edit_as_metadata(w, |md| md["authorization_endpoint"] = endpoint.into());
    };
}

// -------------------------------------------------------------------------------------------
// Registration

#[test]
fn a_redirect_on_registration_is_not_followed() {
    let (w, e) = login_case(ErrorKind::Refused, Step::Registration, |w| {
        w.server.set_fault(
            Route::Register,
            Fault::status(307).header("Location", "https://evil.example.com/register"),
        );
    });
    assert!(e.to_string().contains("redirect"), "{e}");
    assert_eq!(w.requests_to(Route::Register).len(), 1);
}

refusals! {
    a_registration_with_an_empty_client_id_is_invalid: InvalidResponse in Registration, |w| {
        w.server
            .set_fault(Route::Register, Fault::json(201, json!({"client_id": ""})));
    };
    a_registration_granting_a_secret_method_without_a_secret_is_invalid: InvalidResponse in Registration, |w| {
        w.server.set_fault(
            Route::Register,
            Fault::json(
                201,
                json!({"client_id": "c", "token_endpoint_auth_method": "client_secret_basic"}),
            ),
        );
    };
}

#[test]
fn a_registration_rejected_with_an_oauth_error_keeps_the_code() {
    let (_, e) = login_case(ErrorKind::OAuth, Step::Registration, |w| {
        w.server.set_fault(
            Route::Register,
            Fault::oauth_error(400, "invalid_client_metadata"),
        );
    });
    assert_eq!(e.oauth_error(), Some("invalid_client_metadata"));
}

refusals! {
    a_registration_answer_that_is_not_json_is_invalid: InvalidResponse in Registration, |w| {
        w.server
            .set_fault(Route::Register, raw_fault(201, "text/plain", "created!"));
    };
    an_oversized_registration_answer_is_not_read_whole: Transport in Registration, |w| {
        let huge = format!(
            r#"{{"client_id":"{}"}}"#,
            "c".repeat(mcp_oauth_client::http::OAUTH_BODY_LIMIT as usize)
        );
        w.server
            .set_fault(Route::Register, raw_fault(201, "application/json", huge));
    };
}

#[test]
fn a_registration_error_with_control_characters_cannot_forge_log_lines() {
    let (_, e) = login_case(ErrorKind::OAuth, Step::Registration, |w| {
        w.server.set_fault(
        Route::Register,
        Fault::json(
            400,
            json!({"error": "invalid_client_metadata\u{1b}[2J", "error_description": "bad\nINFO forged: login ok\r\n"}),
        ),
    );
    });
    assert!(!e.to_string().contains('\n'), "{e}");
}

// -------------------------------------------------------------------------------------------
// The authorization response and the callback listener

#[test]
fn a_denied_authorization_is_an_access_denied_error() {
    let w = World::with(ServerConfig {
        deny_authorization: true,
        ..ServerConfig::default()
    });
    let s = w.session();
    let e = login_refused(&w, &s, ErrorKind::OAuth, Step::Callback);
    assert!(e.is_access_denied());
    assert!(w.requests_to(Route::Token).is_empty());
}

#[test]
fn an_iss_for_another_issuer_is_refused_and_no_code_redeemed() {
    let w = World::new();
    let s = w
        .builder()
        .authorize_hook(forged_callback(|state| {
            format!(
                "code=stolen&state={}&iss={}",
                encode(state),
                encode("https://evil.example.com")
            )
        }))
        .build()
        .unwrap();
    login_refused(&w, &s, ErrorKind::Refused, Step::Callback);
    assert!(w.requests_to(Route::Token).is_empty());
}

#[test]
fn a_response_with_the_right_state_but_no_code_or_error_is_refused() {
    let w = World::new();
    let issuer = w.server.issuer();
    let s = w
        .builder()
        .authorize_hook(forged_callback(move |state| {
            format!("state={}&iss={}", encode(state), encode(&issuer))
        }))
        .build()
        .unwrap();
    login_refused(&w, &s, ErrorKind::Refused, Step::Callback);
}

#[test]
fn an_error_response_echoing_the_state_keeps_it_out_of_the_error() {
    let w = World::new();
    let issuer = w.server.issuer();
    let state_seen = Arc::new(Mutex::new(String::new()));
    let seen = Arc::clone(&state_seen);
    let s = w
        .builder()
        .authorize_hook(forged_callback(move |state| {
            *seen.lock().unwrap() = state.to_owned();
            format!(
                "error=server_error&error_description={}&state={}&iss={}",
                encode(&format!("state {state} is odd")),
                encode(state),
                encode(&issuer)
            )
        }))
        .build()
        .unwrap();
    let e = login_refused(&w, &s, ErrorKind::OAuth, Step::Callback);
    let state = state_seen.lock().unwrap().clone();
    assert!(!format!("{e} {e:#} {e:?}").contains(&state), "{e}");
    assert_eq!(e.oauth_description(), Some("state [redacted] is odd"));
}

#[test]
fn a_listener_that_only_gets_junk_times_out() {
    let w = World::new();
    let s = w
        .builder()
        .callback_timeout(Duration::from_secs(1))
        .authorize_hook(|step: &BrowserStep| {
            let url = &step.authorization_url;
            let addr = callback_addr(url);
            thread::spawn(move || {
                send_raw(addr, b"\x00\x01junk\r\n\r\n");
                send_raw(addr, &request_for(addr, "/callback?code=x&state=wrong"));
            });
        })
        .build()
        .unwrap();
    login_refused(&w, &s, ErrorKind::Timeout, Step::Callback);
}

#[test]
fn a_thousand_junk_connections_then_the_real_callback_completes() {
    let answers = login_survives(|addr| {
        (0..1000)
            .map(|i| {
                let junk = match i % 6 {
                    0 => b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03".to_vec(),
                    1 => request_for(addr, "/favicon.ico"),
                    2 => request_for(addr, &format!("/callback?code=c{i}&state=wrong{i}")),
                    3 => format!("DELETE /callback HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes(),
                    4 => b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
                    _ => b"GET /callback HTTP/1.1\r\nHost: evil.example.com\r\n\r\n".to_vec(),
                };
                send_raw(addr, &junk)
            })
            .collect()
    });
    assert_eq!(answers.len(), 1000);
    for line in &answers {
        assert!(status_of(line).starts_with('4'), "{line}");
    }
}

#[test]
fn slow_clients_sending_a_byte_a_second_do_not_hold_the_flow() {
    let w = World::new();
    let answered = Arc::new(Mutex::new(Vec::new()));
    let slow = Arc::clone(&answered);
    let s = w
        .builder()
        .authorize_hook(move |step: &BrowserStep| {
            let url = &step.authorization_url;
            let addr = callback_addr(url);
            let ready = Arc::new(Barrier::new(9));
            for _ in 0..8 {
                let (ready, slow) = (Arc::clone(&ready), Arc::clone(&slow));
                thread::spawn(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    stream.write_all(b"G").unwrap();
                    ready.wait();
                    let mut writer = stream.try_clone().unwrap();
                    thread::spawn(move || {
                        for byte in b"ET /callback?state=slow HTTP/1.1\r\n".iter() {
                            thread::sleep(Duration::from_secs(1));
                            if writer.write_all(&[*byte]).is_err() {
                                break;
                            }
                        }
                    });
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let mut answer = String::new();
                    let _ = stream.read_to_string(&mut answer);
                    slow.lock().unwrap().push((Instant::now(), answer));
                });
            }
            ready.wait();
            let url = url.clone();
            thread::spawn(move || follow_redirects(&url));
        })
        .build()
        .unwrap();
    s.access_token().unwrap();
    let done = Instant::now();
    // The slow clients are answered (408) when their two seconds are up, after the login.
    let deadline = Instant::now() + Duration::from_secs(10);
    while answered.lock().unwrap().len() < 8 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let answered = answered.lock().unwrap();
    assert_eq!(answered.len(), 8);
    for (at, answer) in answered.iter() {
        assert!(
            *at > done,
            "a slow client was answered before the login ended"
        );
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
}

#[test]
fn an_oversized_callback_request_is_answered_431_and_the_wait_goes_on() {
    let answers = login_survives(|addr| {
        let big = format!(
            "GET /callback?state={} HTTP/1.1\r\nHost: {addr}\r\n\r\n",
            "x".repeat(mcp_oauth_client::callback::MAX_CALLBACK_REQUEST)
        );
        vec![send_raw(addr, big.as_bytes())]
    });
    assert_eq!(status_of(&answers[0]), "431");
}

#[test]
fn a_post_to_the_callback_is_answered_405_and_the_wait_goes_on() {
    let answers = login_survives(|addr| {
        let post = format!(
            "POST /callback HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 17\r\n\r\ncode=x&state=abcd"
        );
        vec![send_raw(addr, post.as_bytes())]
    });
    assert_eq!(status_of(&answers[0]), "405");
}

#[test]
fn a_callback_with_a_foreign_host_header_is_answered_400_and_the_wait_goes_on() {
    let answers = login_survives(|addr| {
        let rebinding =
            b"GET /callback?code=c&state=s HTTP/1.1\r\nHost: attacker.example:80\r\n\r\n";
        let twice = format!("GET /callback HTTP/1.1\r\nHost: {addr}\r\nHost: {addr}\r\n\r\n");
        vec![send_raw(addr, rebinding), send_raw(addr, twice.as_bytes())]
    });
    assert_eq!(status_of(&answers[0]), "400");
    assert_eq!(status_of(&answers[1]), "400");
}

#[test]
fn fifty_concurrent_wrong_state_callbacks_are_answered_and_ignored() {
    let answers = login_survives(|addr| {
        let go = Arc::new(Barrier::new(50));
        let threads: Vec<_> = (0..50)
            .map(|i| {
                let go = Arc::clone(&go);
                thread::spawn(move || {
                    go.wait();
                    send_raw(
                        addr,
                        &request_for(addr, &format!("/callback?code=c&state=w{i}")),
                    )
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(answers.len(), 50);
    for line in &answers {
        assert_eq!(status_of(line), "400", "{line}");
    }
}

#[test]
fn a_connection_that_sends_nothing_and_closes_does_not_end_the_wait() {
    let answers = login_survives(|addr| {
        vec![
            send_raw(addr, b""),
            send_raw(addr, b"GET /callback?code=c&state=s HTTP/1.1\r\nHost: 127"),
        ]
    });
    assert_eq!(status_of(&answers[0]), "408");
    assert_eq!(status_of(&answers[1]), "408");
}

// -------------------------------------------------------------------------------------------
// The code exchange

#[test]
fn a_redirect_on_the_code_exchange_is_not_followed() {
    let (_, e) = login_case(ErrorKind::Refused, Step::CodeExchange, |w| {
        w.server.set_fault(
            Route::Token,
            Fault::status(302).header("Location", "https://evil.example.com/token"),
        );
    });
    assert!(e.to_string().contains("redirect"), "{e}");
    assert!(!e.to_string().contains("evil"), "{e}");
}

refusals! {
    a_mac_token_type_is_refused: InvalidResponse in CodeExchange, |w| {
        w.server.set_fault(
            Route::Token,
            Fault::json(
                200,
                json!({"access_token": "t0k3n-mac-123456", "token_type": "mac"}),
            ),
        );
    };
    a_dpop_token_type_is_refused: InvalidResponse in CodeExchange, |w| {
        w.server.set_fault(
            Route::Token,
            Fault::json(
                200,
                json!({"access_token": "t0k3n-dpop-12345", "token_type": "DPoP", "expires_in": 60}),
            ),
        );
    };
    an_empty_access_token_is_invalid: InvalidResponse in CodeExchange, |w| {
        w.server.set_fault(
            Route::Token,
            Fault::json(200, json!({"access_token": "", "token_type": "Bearer"})),
        );
    };
    a_token_answer_that_is_an_html_page_is_invalid: InvalidResponse in CodeExchange, |w| {
        w.server
            .set_fault(Route::Token, raw_fault(200, "text/html", "<html>ok</html>"));
    };
    an_expires_in_beyond_double_range_is_invalid: InvalidResponse in CodeExchange, |w| {
        w.server.set_fault(
            Route::Token,
            raw_fault(
                200,
                "application/json",
                r#"{"access_token":"t0k3n-1e400-abcd","token_type":"Bearer","expires_in":1e400}"#,
            ),
        );
    };
}

#[test]
fn a_token_error_echoing_the_code_and_verifier_keeps_them_out() {
    let w = World::new();
    let raw = echoing_server(400, "invalid_grant");
    let token = raw.url("/token");
    edit_as_metadata(&w, |md| md["token_endpoint"] = token.into());
    let s = w.session();
    let e = refused_with(
        &w,
        &s,
        &|| raw.secrets(),
        ErrorKind::OAuth,
        Step::CodeExchange,
        || s.access_token(),
    );
    let sent = raw.secrets();
    assert_eq!(sent.len(), 2, "the code and the verifier were sent");
    let text = format!("{e} {e:#} {e:?}");
    for secret in &sent {
        assert!(!text.contains(secret.as_str()), "{text}");
    }
    assert!(text.contains("[redacted]"), "{text}");
}

#[test]
fn a_token_endpoint_closing_mid_body_is_a_transport_error() {
    raw_token_case(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"access_token\":\"abc");
}

#[test]
fn a_token_endpoint_that_never_answers_times_out() {
    let w = World::new();
    let raw = RawServer::start(|_, _| thread::sleep(Duration::from_secs(3)));
    let token = raw.url("/token");
    edit_as_metadata(&w, |md| md["token_endpoint"] = token.into());
    let s = w.builder().agent(impatient_agent()).build().unwrap();
    let e = refused_with(
        &w,
        &s,
        &|| raw.secrets(),
        ErrorKind::Transport,
        Step::CodeExchange,
        || s.access_token(),
    );
    assert!(e.to_string().contains("timed out"), "{e}");
}

#[test]
fn a_token_endpoint_answering_binary_junk_is_a_transport_error() {
    raw_token_case(b"\x00\xff\xfe\x16\x03\x01 not http at all\r\n\r\n");
}

#[test]
fn a_token_endpoint_claiming_a_huge_content_length_allocates_nothing_for_it() {
    raw_token_case(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 99999999999999\r\n\r\n{}");
}

#[test]
fn a_token_endpoint_with_a_megabyte_header_is_a_transport_error() {
    let w = World::new();
    let raw = RawServer::start(|_, stream| {
        let mut reply = b"HTTP/1.1 200 OK\r\nX-Junk: ".to_vec();
        reply.extend(std::iter::repeat_n(b'a', 1024 * 1024));
        reply.extend_from_slice(b"\r\nContent-Length: 2\r\n\r\n{}");
        write(stream, &reply);
    });
    let token = raw.url("/token");
    edit_as_metadata(&w, |md| md["token_endpoint"] = token.into());
    let s = w.session();
    refused_with(
        &w,
        &s,
        &|| raw.secrets(),
        ErrorKind::Transport,
        Step::CodeExchange,
        || s.access_token(),
    );
}

#[test]
fn a_token_endpoint_with_a_huge_chunk_size_is_a_transport_error() {
    raw_token_case(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n{}");
}

// -------------------------------------------------------------------------------------------
// Refresh: the stored tokens survive every failure

#[test]
fn a_redirect_on_refresh_is_not_followed_and_the_tokens_stay() {
    let w = World::new();
    let s = expired_session(&w);
    w.server.set_fault(
        Route::Token,
        Fault::status(301).header("Location", "https://evil.example.com/token"),
    );
    login_refused(&w, &s, ErrorKind::Refused, Step::Refresh);
    assert_eq!(w.browser.opened(), 1);
}

#[test]
fn a_mac_token_on_refresh_is_refused_and_the_tokens_stay() {
    let w = World::new();
    let s = expired_session(&w);
    w.server.set_fault(
        Route::Token,
        Fault::json(
            200,
            json!({"access_token": "mac-token-abcdef", "token_type": "MAC"}),
        ),
    );
    login_refused(&w, &s, ErrorKind::InvalidResponse, Step::Refresh);
}

#[test]
fn a_truncated_refresh_answer_is_invalid_and_the_tokens_stay() {
    let w = World::new();
    let s = expired_session(&w);
    w.server.set_fault(
        Route::Token,
        raw_fault(200, "application/json", r#"{"access_token":"abc"#),
    );
    login_refused(&w, &s, ErrorKind::InvalidResponse, Step::Refresh);
}

#[test]
fn a_deeply_nested_refresh_answer_is_invalid_and_the_tokens_stay() {
    let w = World::new();
    let s = expired_session(&w);
    w.server.set_fault(
        Route::Token,
        raw_fault(200, "application/json", nested_expiry()),
    );
    let e = login_refused(&w, &s, ErrorKind::InvalidResponse, Step::Refresh);
    assert!(format!("{e:#}").contains("recursion limit"), "{e:#}");
}

/// A token response whose `expires_in` (read as any JSON value) nests 20 000 objects deep.
fn nested_expiry() -> String {
    format!(
        r#"{{"access_token":"nested-expiry-token","expires_in":{}1{}}}"#,
        "{\"a\":".repeat(20_000),
        "}".repeat(20_000)
    )
}

#[test]
fn a_token_answer_nested_past_the_depth_limit_is_invalid() {
    let (_, e) = login_case(ErrorKind::InvalidResponse, Step::CodeExchange, |w| {
        w.server.set_fault(
            Route::Token,
            raw_fault(200, "application/json", nested_expiry()),
        );
    });
    assert!(format!("{e:#}").contains("recursion limit"), "{e:#}");
}

#[test]
fn a_device_poll_error_echoing_the_device_code_keeps_it_out() {
    let w = World::with(ServerConfig {
        device_interval: 1,
        ..ServerConfig::default()
    });
    let raw = echoing_server(400, "expired_token");
    let token = raw.url("/token");
    edit_as_metadata(&w, |md| md["token_endpoint"] = token.into());
    let session = w.builder().device_login(|_| {}).build().unwrap();
    capture_logs();
    let e = session.access_token().unwrap_err();
    assert_eq!(e.oauth_error(), Some("expired_token"), "{e}");
    let sent = raw.secrets();
    assert_eq!(sent.len(), 1, "the device code was sent once");
    let text = format!("{e} {e:#} {e:?}");
    assert!(
        !text.contains(&sent[0]),
        "the device code is in the error: {text}"
    );
    assert_no_secret(&w, &session, &sent, &e);
}

#[test]
fn a_refresh_error_echoing_the_refresh_token_keeps_it_out() {
    let w = World::new();
    let s = expired_session(&w);
    let raw = echoing_server(503, "temporarily_unavailable");
    tamper_token_file(&s, "token_endpoint", raw.url("/token").into());
    let e = refused_with(
        &w,
        &s,
        &|| raw.secrets(),
        ErrorKind::OAuth,
        Step::Refresh,
        || s.access_token(),
    );
    assert_eq!(raw.secrets().len(), 1, "the refresh token was sent");
    assert_eq!(e.oauth_error(), Some("temporarily_unavailable"));
}

#[test]
fn a_cache_file_steering_refresh_to_plain_http_is_refused() {
    let w = World::new();
    let s = expired_session(&w);
    tamper_token_file(
        &s,
        "token_endpoint",
        "http://as.evil.example.com/token".into(),
    );
    login_refused(&w, &s, ErrorKind::Refused, Step::Refresh);
}

// -------------------------------------------------------------------------------------------
// Odd values handled sanely rather than refused

/// Logs in with a token response of `extra` fields and returns the stored expiry and the time
/// of the login.
fn stored_expiry(expires_in: Value) -> (Option<u64>, u64) {
    let w = World::new();
    let mut response = json!({"access_token": "odd-expiry-token-123", "token_type": "bEaReR"});
    response["expires_in"] = expires_in;
    w.server.set_fault(Route::Token, Fault::json(200, response));
    let s = w.session();
    let now = unix_now();
    s.access_token().unwrap();
    let stored = crate::common::stored(&s);
    (stored.tokens.expires_at, now)
}

#[test]
fn a_negative_expires_in_means_already_expired() {
    let (at, now) = stored_expiry(json!(-3600));
    assert!(at.unwrap() <= now + 1);
}

#[test]
fn a_huge_expires_in_is_capped() {
    let (at, now) = stored_expiry(json!(1e300));
    let at = at.unwrap();
    assert!(at >= now + MAX_EXPIRES_IN && at <= unix_now() + MAX_EXPIRES_IN);
}

#[test]
fn a_non_numeric_expires_in_leaves_the_expiry_unknown() {
    assert_eq!(stored_expiry(json!("tomorrow")).0, None);
    assert_eq!(stored_expiry(json!({"seconds": 5})).0, None);
}

#[test]
fn a_string_expires_in_is_read() {
    let (at, now) = stored_expiry(json!("120"));
    assert!((now + 120..=unix_now() + 120).contains(&at.unwrap()));
}

#[test]
fn an_unknown_metadata_member_nested_twenty_thousand_deep_is_skipped() {
    let w = World::new();
    let mut md = resource_metadata(&w).to_string();
    md.pop();
    md.push_str(&format!(
        r#","x":{}{}}}"#,
        "[".repeat(20_000),
        "]".repeat(20_000)
    ));
    w.server.set_fault(
        Route::ResourceMetadata,
        raw_fault(200, "application/json", md),
    );
    let token = w.session().access_token().unwrap();
    assert_eq!(w.mcp_status(token.secret()), 200);
}

// -------------------------------------------------------------------------------------------
// Revocation

/// The session's stored refresh token and its client, for a revocation request.
fn revocation_parts(
    s: &Session,
    issuer: &str,
) -> (Secret, mcp_oauth_client::registration::ClientRegistration) {
    let stored = crate::common::stored(s);
    let client = s
        .file_store()
        .unwrap()
        .load_client(issuer)
        .unwrap()
        .unwrap();
    (stored.tokens.refresh_token.unwrap(), client)
}

#[test]
fn a_redirect_on_revocation_is_not_followed() {
    let w = World::new();
    let s = w.session();
    s.access_token().unwrap();
    w.server.set_fault(
        Route::Revoke,
        Fault::status(302).header("Location", "https://evil.example.com/revoke"),
    );
    let (token, client) = revocation_parts(&s, &w.server.issuer());
    let endpoint = format!("{}/revoke", w.server.issuer());
    let request = mcp_oauth_client::revocation::RevocationRequest::new(
        mcp_oauth_client::token::ClientEndpoint::new(&endpoint, &client),
        &token,
        mcp_oauth_client::TokenTypeHint::RefreshToken,
    );
    let e = refused(&w, &s, ErrorKind::Refused, Step::Revocation, || {
        mcp_oauth_client::revocation::revoke(&mcp_oauth_client::http::new_agent(), &request)
            .map(|()| token.clone())
    });
    assert!(e.to_string().contains("redirect"), "{e}");
    assert!(w.server.revoked_tokens().is_empty());
}

#[test]
fn a_revocation_error_echoing_the_token_keeps_it_out() {
    let w = World::new();
    let s = w.session();
    s.access_token().unwrap();
    let raw = echoing_server(400, "unsupported_token_type");
    let (token, client) = revocation_parts(&s, &w.server.issuer());
    let endpoint = raw.url("/revoke");
    let request = mcp_oauth_client::revocation::RevocationRequest::new(
        mcp_oauth_client::token::ClientEndpoint::new(&endpoint, &client),
        &token,
        mcp_oauth_client::TokenTypeHint::RefreshToken,
    );
    let e = refused(&w, &s, ErrorKind::OAuth, Step::Revocation, || {
        mcp_oauth_client::revocation::revoke(&mcp_oauth_client::http::new_agent(), &request)
            .map(|()| token.clone())
    });
    assert!(!format!("{e} {e:#} {e:?}").contains(token.secret()), "{e}");
}

// -------------------------------------------------------------------------------------------
// A damaged cache

#[test]
fn a_token_file_with_a_token_in_the_wrong_place_leaks_it_nowhere() {
    capture_logs();
    let w = World::new();
    let first = w.session();
    let old = first.access_token().unwrap();
    // `tokens` should be an object; a damaged file holds the bare access token there.
    tamper_token_file(&first, "tokens", old.secret().into());
    let e = first
        .file_store()
        .unwrap()
        .load_tokens(first.server_url())
        .unwrap_err();
    assert_eq!((e.kind(), e.step()), (ErrorKind::Storage, Step::TokenCheck));
    assert!(!format!("{e} {e:#} {e:?}").contains(old.secret()), "{e}");
    // A new session reports the file, treats it as absent and logs in again.
    let second = w.session();
    let new = second.access_token().unwrap();
    assert_ne!(new.secret(), old.secret());
    let log = LOG.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
    assert!(!log.contains(old.secret()), "the old token is in the log");
}

#[test]
fn a_401_whose_body_comes_a_byte_every_two_seconds_does_not_hold_send() {
    // A server that answers the MCP request 401 and then sends its 100-byte body slowly; every
    // other request gets an empty 404 (the login then fails quickly, at registration).
    let raw = RawServer::start(|request, stream| {
        if request.starts_with(b"POST /mcp ") {
            write(
                stream,
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"mcp\"\r\n\
                  Content-Length: 100\r\n\r\n",
            );
            for _ in 0..100 {
                thread::sleep(Duration::from_secs(2));
                if stream.write_all(b"x").is_err() {
                    return;
                }
            }
        } else {
            write(
                stream,
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            );
        }
    });
    let cache = crate::common::TempDir::new();
    let session = Session::builder(raw.url("/mcp"))
        .cache_dir(cache.path())
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let started = Instant::now();
    thread::spawn(move || {
        let result = session.send(|agent| {
            agent
                .post(session.server_url().as_str())
                .content_type("application/json")
                .send("{}")
        });
        let _ = tx.send(result.map(|r| r.status().as_u16()));
    });
    let result = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("send is held by the slow body");
    let e = result.unwrap_err();
    assert_eq!(e.step(), Step::Registration, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn two_hundred_idle_and_eight_slow_connections_do_not_keep_the_redirect_out() {
    // Before the browser comes, a local process opens 200 connections that send nothing and 8
    // that send a byte a second, and keeps them open.
    let held = Arc::new(Mutex::new(Vec::new()));
    let holder = Arc::clone(&held);
    let answers = login_survives(move |addr| {
        let mut held = holder.lock().unwrap();
        for _ in 0..200 {
            held.push(TcpStream::connect(addr).unwrap());
        }
        for _ in 0..8 {
            let stream = TcpStream::connect(addr).unwrap();
            let mut writer = stream.try_clone().unwrap();
            thread::spawn(move || {
                for byte in b"GET /callback?state=slow HTTP/1.1\r\n" {
                    if writer.write_all(&[*byte]).is_err() {
                        return;
                    }
                    thread::sleep(Duration::from_secs(1));
                }
            });
            held.push(stream);
        }
        Vec::new()
    });
    assert!(answers.is_empty());
    assert_eq!(held.lock().unwrap().len(), 208);
}

/// The bytes ureq's protocol layer dumps at trace level, one 16-byte row per log line
/// (`4745 5420 ... GET /...`): decoded from the hex columns and joined, so a secret split
/// across rows is found too.
fn http_bytes_in_logs(lines: &[String]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for line in lines.iter().filter(|l| l.starts_with("TRACE ureq_proto")) {
        let row = line.split_once(": ").map_or("", |(_, r)| r);
        let hex: String = row.chars().take(40).filter(|c| *c != ' ').collect();
        for pair in hex.as_bytes().chunks(2) {
            if let Ok(b) = u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("--"), 16) {
                bytes.push(b);
            }
        }
    }
    bytes
}

/// With the default `log-max-debug` feature (without it, a logger must keep `ureq_proto` at
/// debug or below: the README says so).
#[cfg(feature = "log-max-debug")]
#[test]
fn no_secret_reaches_a_logger_set_to_trace_for_every_target() {
    capture_logs();
    assert_eq!(log::max_level(), log::LevelFilter::Trace);
    let w = World::new();
    let session = w.session();
    let token = session.access_token().unwrap();
    w.expire_cached_token(&session);
    let refreshed = session.access_token().unwrap();
    assert_eq!(crate::common::ping(&session).unwrap(), 200);
    let mut secrets = secrets_seen(&w, &session);
    secrets.push(token.secret().to_owned());
    secrets.push(refreshed.secret().to_owned());
    session.logout().unwrap();
    let lines = LOG.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // The logger did receive the HTTP layer's lines.
    assert!(
        lines.iter().any(|l| l.starts_with("DEBUG ureq")),
        "no ureq log line"
    );
    let text = lines.join("\n");
    let bytes = http_bytes_in_logs(&lines);
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(!text.contains(secret.as_str()), "a secret in the log text");
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a secret in the HTTP bytes logged at trace"
        );
    }
}
