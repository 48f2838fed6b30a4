//! The bridge under a hostile or broken server: answers too large to hold, redirects to other
//! origins, a server that refuses every token, and a client that leaves while requests are in
//! flight.

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_oauth_client::bridge::Bridge;
use mcp_oauth_client::testing::{Fault, Route};
use serde_json::{Value, json};

use crate::bridge::Proxy;
use crate::common::World;

/// What a writer shared with the test received.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn messages(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// The peak resident memory of a process so far, in KiB (Linux).
#[cfg(target_os = "linux")]
fn peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn a_large_answer_costs_about_its_size_in_memory_not_a_tree_of_it() {
    let w = World::new();
    let mut proxy = Proxy::start(w.server.mcp_url().as_str(), &w.cache, &[]);
    proxy.initialize();
    assert_eq!(proxy.call(2, "ping", json!({}))["result"], json!({}));
    let before = peak_kib(proxy.child.id());
    // A 6 MiB text in one event: a tree of it and the copies made on its way were about four
    // times its size.
    let text = "x".repeat(6 << 20);
    crate::bridge::answer_once_in_an_event(&w, 3, &text);
    let answer = proxy.call(
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}}),
    );
    assert_eq!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .len(),
        6 << 20
    );
    let grew = peak_kib(proxy.child.id()).saturating_sub(before);
    assert!(
        grew < 2 * 6 * 1024 + 1024,
        "the peak grew by {grew} KiB for a 6 MiB answer"
    );
    assert!(proxy.finish().0.success());
}

#[test]
fn a_redirect_to_another_origin_is_not_followed_with_the_sessions_headers() {
    let w = World::new();
    // Another origin that records whatever reaches it.
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("http://{}/mcp", elsewhere.local_addr().unwrap());
    elsewhere.set_nonblocking(true).unwrap();
    let mut proxy = Proxy::start(
        w.server.mcp_url().as_str(),
        &w.cache,
        &["--header", "X-Tenant: acme-secret"],
    );
    // Stateless requests (no event stream of the session's takes the fault first).
    let meta = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}});
    assert!(proxy.call(1, "tools/list", meta.clone())["result"].is_object());
    for status in [302, 307] {
        w.server.set_fault(
            Route::Mcp,
            Fault::status(status).header("Location", &target).times(1),
        );
        let answer = proxy.call(10 + u64::from(status), "tools/list", meta.clone());
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("redirect"),
            "{answer}"
        );
    }
    assert!(proxy.finish().0.success());
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        elsewhere.accept().is_err(),
        "a request reached the other origin"
    );
}

#[test]
fn a_server_refusing_every_token_gets_one_new_token_then_errors_not_a_login_per_message() {
    let w = World::new();
    let mut proxy = Proxy::start(w.server.mcp_url().as_str(), &w.cache, &[]);
    proxy.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}));
    assert_eq!(proxy.recv()["id"], 1);
    // From now on every token is refused, the fresh one too.
    let challenge = format!(
        r#"Bearer error="invalid_token", resource_metadata="{}.well-known/oauth-protected-resource/mcp""#,
        w.server.base_url()
    );
    w.server.set_fault(
        Route::Mcp,
        Fault::status(401).header("WWW-Authenticate", &challenge),
    );
    // `initialized` (then the event stream, which never logs in) and three requests.
    proxy.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    for id in 2..5 {
        let answer = proxy.call(id, "tools/list", json!({}));
        assert!(answer["error"].is_object(), "{answer}");
    }
    std::thread::sleep(Duration::from_secs(3));
    let (status, stderr) = proxy.finish();
    assert!(status.success(), "{stderr}");
    // One more token (a refresh) for the first refusal, and nothing else: no token request,
    // no browser, for the later messages or the event stream.
    let logins = stderr.matches("Open this URL").count();
    assert_eq!(logins, 1, "{stderr}");
    let tokens = w.requests_to(Route::Token);
    assert_eq!(
        tokens.len(),
        2,
        "the login's code exchange and one refresh: {:?}",
        w.request_lines()
    );
    assert!(stderr.contains("no more logins"), "{stderr}");
}

#[test]
fn requests_still_in_flight_when_the_input_ends_each_get_an_error() {
    let w = World::new();
    let session = Arc::new(w.session());
    session.access_token().unwrap();
    // The server takes far longer than the bridge waits at the end.
    w.server
        .set_fault(Route::Mcp, Fault::slow(Duration::from_secs(20)));
    let out = Captured::default();
    let input: Vec<u8> = (1..=3)
        .map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "ping"}).to_string() + "\n")
        .collect::<String>()
        .into_bytes();
    let started = std::time::Instant::now();
    Bridge::new(Arc::clone(&session), out.clone(), Vec::new())
        .unwrap()
        .drain_timeout(Duration::from_millis(500))
        .run(BufReader::new(&input[..]))
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let mut ids: Vec<i64> = out
        .messages()
        .iter()
        .map(|m| {
            assert_eq!(m["error"]["code"], -32000, "{m}");
            m["id"].as_i64().unwrap()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3]);
    // Nothing is written after the bridge returned, even when the answers come.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(out.messages().len(), 3);
}
