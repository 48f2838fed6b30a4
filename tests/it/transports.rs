//! `mcp-oauth proxy` on every revision of MCP's HTTP transports: 2026-07-28's stateless
//! requests with their headers, 2025's Streamable HTTP sessions (`bridge`), and 2024-11-05's
//! HTTP+SSE; and what goes over the limits.

use std::time::Duration;

use mcp_oauth_client::testing::{Route, ServerConfig};
use serde_json::{Value, json};

use crate::bridge::Proxy;
use crate::common::World;

/// `params` with the `_meta` of a revision 2026-07-28 request.
fn stateless(mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    });
    params
}

#[test]
fn stateless_requests_carry_their_revisions_headers_and_no_session() {
    let w = World::new();
    let mut proxy = Proxy::start(w.server.mcp_url().as_str(), &w.cache, &[]);
    let discovered = proxy.call(1, "server/discover", stateless(json!({})));
    assert_eq!(
        discovered["result"]["supportedVersions"],
        json!(["2026-07-28"]),
        "{discovered}"
    );
    let listed = proxy.call(2, "tools/list", stateless(json!({})));
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    // The tool whose x-mcp-header annotation breaks the rules is not offered.
    assert_eq!(names, ["echo", "confirm", "region"]);
    // A tool argument that goes in a header too, not ASCII: Base64 there.
    let ran = proxy.call(
        3,
        "tools/call",
        stateless(json!({"name": "region", "arguments": {"region": "日本"}})),
    );
    assert_eq!(ran["result"]["content"][0]["text"], "ran in 日本", "{ran}");
    let echoed = proxy.call(
        4,
        "tools/call",
        stateless(json!({"name": "echo", "arguments": {"text": "hi"}})),
    );
    assert_eq!(echoed["result"]["content"][0]["text"], "hi");
    let (status, stderr) = proxy.finish();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("misannotated"),
        "the dropped tool is named: {stderr}"
    );
    let mcp = w.requests_to(Route::Mcp);
    assert!(
        mcp.iter().all(|r| r.method == "POST"),
        "no GET stream, no DELETE"
    );
    assert!(mcp.iter().all(|r| r.header("mcp-session-id").is_none()));
    let call = mcp.iter().rfind(|r| r.body.contains("\"region\"")).unwrap();
    assert_eq!(call.header("mcp-method"), Some("tools/call"));
    assert_eq!(call.header("mcp-name"), Some("region"));
    assert_eq!(call.header("mcp-param-region"), Some("=?base64?5pel5pys?="));
    assert_eq!(call.header("mcp-protocol-version"), Some("2026-07-28"));
}

#[test]
fn a_tool_call_refused_for_its_headers_is_sent_again_after_listing_the_tools() {
    let w = World::new();
    let mut proxy = Proxy::start(w.server.mcp_url().as_str(), &w.cache, &[]);
    // Never listed: the bridge does not know the argument goes in a header.
    let ran = proxy.call(
        1,
        "tools/call",
        stateless(json!({"name": "region", "arguments": {"region": "eu"}})),
    );
    assert_eq!(ran["result"]["content"][0]["text"], "ran in eu", "{ran}");
    assert!(proxy.finish().0.success());
    let bodies: Vec<String> = w
        .requests_to(Route::Mcp)
        .into_iter()
        .filter(|r| r.header("authorization").is_some())
        .map(|r| r.body)
        .collect();
    assert_eq!(
        bodies.len(),
        3,
        "the call, a listing, the call again: {bodies:?}"
    );
    assert!(bodies[1].contains("tools/list"));
}

#[test]
fn a_subscription_stream_stays_open_beside_other_requests_and_its_cancellation_closes_it() {
    let w = World::new();
    let mut proxy = Proxy::start(w.server.mcp_url().as_str(), &w.cache, &[]);
    proxy.call(1, "tools/list", stateless(json!({})));
    proxy.send(
        &json!({"jsonrpc": "2.0", "id": 2, "method": "subscriptions/listen",
        "params": stateless(json!({"notifications": {"toolsListChanged": true}}))}),
    );
    let acknowledged = proxy.recv();
    assert_eq!(
        acknowledged["method"], "notifications/subscriptions/acknowledged",
        "{acknowledged}"
    );
    let changed = proxy.recv();
    assert_eq!(
        changed["method"], "notifications/tools/list_changed",
        "{changed}"
    );
    assert_eq!(
        changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        2
    );
    // Other requests go on meanwhile.
    let echoed = proxy.call(
        3,
        "tools/call",
        stateless(json!({"name": "echo", "arguments": {"text": "still here"}})),
    );
    assert_eq!(echoed["result"]["content"][0]["text"], "still here");
    // Cancelled: not sent on, no answer, and the bridge ends at once.
    proxy.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 2}}),
    );
    let started = std::time::Instant::now();
    let (status, stderr) = proxy.finish();
    assert!(status.success(), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        !w.requests_to(Route::Mcp)
            .iter()
            .any(|r| r.body.contains("notifications/cancelled"))
    );
}

#[test]
fn an_http_sse_server_of_2024_11_05_is_found_and_used() {
    let w = World::with(ServerConfig {
        legacy_sse: true,
        ..ServerConfig::default()
    });
    for transport in [None, Some("sse")] {
        let cache = crate::common::TempDir::new();
        let extra: Vec<&str> = transport
            .map(|t| vec!["--transport", t])
            .unwrap_or_default();
        let mut proxy = Proxy::start(w.server.mcp_url().as_str(), &cache, &extra);
        let init = proxy.initialize();
        assert_eq!(
            init["result"]["serverInfo"]["name"], "mcp-oauth-client test server",
            "{init}"
        );
        let tools = proxy.call(2, "tools/list", json!({}));
        assert_eq!(tools["result"]["tools"][0]["name"], "echo");
        let echoed = proxy.call(
            3,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "old"}}),
        );
        assert_eq!(echoed["result"]["content"][0]["text"], "old");
        let (status, stderr) = proxy.finish();
        assert!(status.success(), "{stderr}");
    }
    let posts = w
        .requests_to(Route::Mcp)
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/mcp/messages")
        .count();
    assert_eq!(posts, 8, "initialize, initialized, two calls, twice");
    // `streamable` does not fall back.
    let mut proxy = Proxy::start(
        w.server.mcp_url().as_str(),
        &w.cache,
        &["--transport", "streamable"],
    );
    let refused = proxy.call(1, "initialize", json!({"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}));
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("405"),
        "{refused}"
    );
    assert!(proxy.finish().0.success());
}

/// A client that probes with `server/discover` first (the MCP Python SDK's automatic mode):
/// against an HTTP+SSE server, the probe's refusal tells the bridge the transport, and the
/// client's `initialize` that follows goes there without being refused again.
#[test]
fn a_refused_2026_probe_leads_straight_to_http_sse() {
    let w = World::with(ServerConfig {
        legacy_sse: true,
        ..ServerConfig::default()
    });
    let mut proxy = Proxy::start(w.server.mcp_url().as_str(), &w.cache, &[]);
    let probe = proxy.call(1, "server/discover", stateless(json!({})));
    assert!(
        probe["error"]["message"].as_str().unwrap().contains("405"),
        "{probe}"
    );
    let init = proxy.initialize();
    assert_eq!(
        init["result"]["serverInfo"]["name"], "mcp-oauth-client test server",
        "{init}"
    );
    let echoed = proxy.call(
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "after the probe"}}),
    );
    assert_eq!(echoed["result"]["content"][0]["text"], "after the probe");
    let (status, stderr) = proxy.finish();
    assert!(status.success(), "{stderr}");
    // The probe went out twice, without a token (401, the login) and with one (405).
    let requests: Vec<String> = w
        .requests_to(Route::Mcp)
        .into_iter()
        .map(|r| {
            let token = r.headers.iter().any(|(n, _)| n == "authorization");
            format!(
                "{} {}{}",
                r.method,
                r.path,
                if token { " +token" } else { "" }
            )
        })
        .collect();
    let refused_posts = requests.iter().filter(|r| *r == "POST /mcp +token").count();
    assert_eq!(
        refused_posts, 1,
        "only the probe is POSTed to the stream's URL: {requests:?}"
    );
}

#[test]
fn messages_over_the_limit_are_answered_with_their_own_ids() {
    let w = World::new();
    let mut proxy = Proxy::start(w.server.mcp_url().as_str(), &w.cache, &[]);
    proxy.initialize();
    // A line over the limit, whose start names its id.
    let big = "x".repeat(mcp_oauth_client::bridge::MAX_MESSAGE + 10);
    proxy.send_raw(&format!(
        r#"{{"jsonrpc": "2.0", "id": "big-1", "method": "tools/call", "params": {{"name": "echo", "arguments": {{"text": "{big}"}}}}}}"#
    ));
    let refused = proxy.recv();
    assert_eq!(
        (refused["id"].clone(), refused["error"]["code"].clone()),
        (json!("big-1"), json!(-32600)),
        "{refused}"
    );
    // An event over the limit in an answer: its request is told why.
    crate::bridge::answer_once_in_an_event(&w, 7, &big);
    let answer = proxy.call(
        7,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}}),
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than"),
        "{answer}"
    );
    // The bridge goes on.
    assert_eq!(proxy.call(8, "ping", json!({}))["result"], json!({}));
    assert!(proxy.finish().0.success());
}
