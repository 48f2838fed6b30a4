//! `mcp-oauth proxy`: the stdio bridge driven over real pipes by a test client, against the
//! embedded server's MCP endpoint.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use mcp_oauth_client::testing::{Fault, Route, ServerConfig, follow_redirects};
use serde_json::{Value, json};

use crate::common::{TempDir, World};

/// A running `mcp-oauth proxy`: its stdin, the messages on its stdout, its stderr so far.
pub(crate) struct Proxy {
    pub(crate) child: Child,
    stdin: Option<ChildStdin>,
    messages: Receiver<Value>,
    /// Every stdout line that was not one JSON object.
    junk: Receiver<String>,
    stdout: std::thread::JoinHandle<()>,
    stderr: std::thread::JoinHandle<String>,
}

/// The MCP endpoint's next answer: an event stream with one event, the result of request
/// `id` whose text is `text`.
pub(crate) fn answer_once_in_an_event(w: &World, id: u64, text: &str) {
    let event = format!(
        "event: message\ndata: {{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{{\"content\":[{{\"type\":\"text\",\"text\":\"{text}\"}}]}}}}\n\n"
    );
    w.server.set_fault(
        Route::Mcp,
        Fault {
            content_type: "text/event-stream".into(),
            body: event,
            ..Fault::status(200)
        }
        .times(1),
    );
}

impl Proxy {
    /// Starts the bridge to `url` with `cache`; it completes any browser login itself.
    pub(crate) fn start(url: &str, cache: &TempDir, extra: &[&str]) -> Proxy {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"))
            .args([
                "proxy",
                url,
                "--no-browser",
                "--timeout",
                "20",
                "--cache-dir",
            ])
            .arg(cache.path())
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, messages) = channel();
        let (junk_tx, junk) = channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stdout = std::thread::spawn(move || {
            for line in stdout.lines() {
                let line = line.unwrap();
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) if v.is_object() => tx.send(v).unwrap(),
                    _ => junk_tx.send(line).unwrap(),
                }
            }
        });
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in stderr.lines() {
                let line = line.unwrap();
                // The person in the browser, approving at once.
                if let Some(url) = line.trim().strip_prefix("http") {
                    let url = url::Url::parse(&format!("http{url}")).unwrap();
                    std::thread::spawn(move || follow_redirects(&url));
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        Proxy {
            stdin: child.stdin.take(),
            child,
            messages,
            junk,
            stdout,
            stderr,
        }
    }

    pub(crate) fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    pub(crate) fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
    }

    /// The next message from the bridge.
    pub(crate) fn recv(&self) -> Value {
        match self.messages.recv_timeout(Duration::from_secs(20)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => panic!("no message within 20 s"),
            Err(RecvTimeoutError::Disconnected) => panic!("the bridge closed its stdout"),
        }
    }

    /// Sends a request and returns its response (other messages in between are returned too).
    pub(crate) fn call(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let reply = self.recv();
        assert_eq!(reply["id"], id, "{reply}");
        reply
    }

    pub(crate) fn initialize(&mut self) -> Value {
        let reply = self.call(
            1,
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        reply
    }

    /// Closes stdin and waits (up to 30 s) for the bridge to end and its output to be read;
    /// its status and stderr.
    pub(crate) fn finish(mut self) -> (std::process::ExitStatus, String) {
        drop(self.stdin.take());
        let status = crate::common::wait_bounded(&mut self.child, Duration::from_secs(30));
        self.stdout.join().unwrap();
        let junk: Vec<String> = self.junk.try_iter().collect();
        assert!(
            junk.is_empty(),
            "stdout carried more than JSON-RPC: {junk:?}"
        );
        (status, self.stderr.join().unwrap())
    }
}

#[test]
fn the_bridge_logs_in_on_the_first_401_then_forwards_requests_and_ends_the_session() {
    let w = World::new();
    let mut proxy = Proxy::start(w.server.mcp_url().as_str(), &w.cache, &[]);
    let init = proxy.initialize();
    assert_eq!(
        init["result"]["serverInfo"]["name"],
        "mcp-oauth-client test server"
    );
    let tools = proxy.call(2, "tools/list", json!({}));
    assert_eq!(tools["result"]["tools"][0]["name"], "echo");
    let echoed = proxy.call(
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}}),
    );
    assert_eq!(echoed["result"]["content"][0]["text"], "hi");
    // A line that is not JSON: a parse error, and the bridge goes on.
    proxy.send_raw("{not json");
    let error = proxy.recv();
    assert_eq!(
        (error["id"].clone(), error["error"]["code"].clone()),
        (Value::Null, json!(-32700))
    );
    assert_eq!(proxy.call(4, "ping", json!({}))["result"], json!({}));
    let (status, stderr) = proxy.finish();
    assert!(status.success(), "{stderr}");
    assert_eq!(
        w.requests_to(Route::Authorize).len(),
        1,
        "{:?}",
        w.request_lines()
    );
    // The session ended with a DELETE carrying its id; every MCP request carried the id and
    // the protocol version after initialize.
    let mcp = w.requests_to(Route::Mcp);
    let delete = mcp
        .iter()
        .find(|r| r.method == "DELETE")
        .expect("no DELETE");
    let session_id = delete.header("mcp-session-id").unwrap();
    for r in mcp
        .iter()
        .filter(|r| r.method == "POST" && !r.body.contains("initialize"))
    {
        assert_eq!(r.header("mcp-session-id"), Some(session_id), "{}", r.body);
        assert_eq!(r.header("mcp-protocol-version"), Some("2025-06-18"));
    }
}

#[test]
fn a_restarted_bridge_uses_the_cached_token_and_refreshes_an_expired_one() {
    let w = World::new();
    let url = w.server.mcp_url().to_string();
    let mut first = Proxy::start(&url, &w.cache, &[]);
    first.initialize();
    assert!(first.finish().0.success());
    w.server.clear_requests();
    let mut again = Proxy::start(&url, &w.cache, &["--no-login"]);
    again.initialize();
    assert!(again.finish().0.success());
    assert!(
        w.requests_to(Route::Token).is_empty(),
        "{:?}",
        w.request_lines()
    );
    // Expired: one refresh, no browser.
    let session = w.session();
    w.expire_cached_token(&session);
    w.server.clear_requests();
    let mut expired = Proxy::start(&url, &w.cache, &["--no-login"]);
    expired.initialize();
    assert!(expired.finish().0.success());
    let tokens = w.requests_to(Route::Token);
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        tokens[0].form_param("grant_type").as_deref(),
        Some("refresh_token")
    );
    assert!(w.requests_to(Route::Authorize).is_empty());
}

#[test]
fn a_server_request_in_an_event_stream_is_answered_through_stdin_while_others_go_on() {
    let w = World::with(ServerConfig {
        mcp_sse_answers: true,
        ..ServerConfig::default()
    });
    let mut proxy = Proxy::start(w.server.mcp_url().as_str(), &w.cache, &[]);
    proxy.initialize();
    // An answer in an event stream.
    assert_eq!(
        proxy.call(2, "tools/list", json!({}))["result"]["tools"][1]["name"],
        "confirm"
    );
    // The tool asks the client back.
    proxy.send(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "confirm", "arguments": {}}}));
    let ask = proxy.recv();
    assert_eq!(ask["method"], "elicitation/create", "{ask}");
    // Meanwhile another request is answered: the pending tool call holds up nothing.
    assert_eq!(proxy.call(4, "ping", json!({}))["result"], json!({}));
    proxy.send(&json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {"ok": true}}}));
    let done = proxy.recv();
    assert_eq!(done["id"], 3, "{done}");
    let text = done["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("\"accept\""), "{text}");
    assert!(proxy.finish().0.success());
}

#[test]
fn an_unreachable_server_gives_each_request_a_json_rpc_error() {
    let cache = TempDir::new();
    let port = crate::common::free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let mut proxy = Proxy::start(&url, &cache, &["--no-login"]);
    let started = std::time::Instant::now();
    let reply = proxy.call(1, "initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}));
    assert_eq!(reply["error"]["code"], -32000, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not reached"),
        "{reply}"
    );
    let reply = proxy.call(2, "tools/list", json!({}));
    assert_eq!(reply["error"]["code"], -32000, "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(proxy.finish().0.success());
}

#[test]
fn messages_before_initialized_keep_their_order_at_a_server_that_refuses_early_requests() {
    // A server on the MCP Python SDK 1.x: a request that overtakes `notifications/initialized`
    // is refused, and notifications are answered 202 with an empty JSON body.
    let w = World::with(ServerConfig {
        mcp_strict_initialization: true,
        ..ServerConfig::default()
    });
    let url = w.server.mcp_url().to_string();
    for run in 0..30 {
        let mut proxy = Proxy::start(&url, &w.cache, &[]);
        // All three at once, as MCP clients write them.
        proxy.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}));
        proxy.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        proxy.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
        assert_eq!(proxy.recv()["id"], 1);
        let tools = proxy.recv();
        assert_eq!(tools["id"], 2, "run {run}: {tools}");
        assert_eq!(
            tools["result"]["tools"][0]["name"], "echo",
            "run {run}: {tools}"
        );
        let (status, stderr) = proxy.finish();
        assert!(status.success(), "{stderr}");
        assert!(!stderr.contains("lost"), "run {run}: {stderr}");
    }
    assert_eq!(w.requests_to(Route::Authorize).len(), 1);
}
