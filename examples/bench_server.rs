//! The embedded authorization server + MCP endpoint as a standalone process, for the peer
//! benchmarks (`benches/peers/run.sh`).
//!
//! Starts one [`TestServer`] on 127.0.0.1 (an ephemeral port), prints its MCP URL on the first
//! line of stdout, then reads commands from stdin, one per line:
//!
//! - `take`: prints one JSON line with every request received since the last `take` (method,
//!   path, route, TCP connection number, `User-Agent`, whether it carried `Authorization`, and
//!   the JSON-RPC method of MCP requests), then empties the log;
//! - `lifetime SECS`: sets the `expires_in` of access tokens issued from now on;
//! - end of input: prints one JSON line with the totals and exits.
//!
//! ```sh
//! cargo run --release --features test-server --example bench_server
//! ```

use std::collections::BTreeSet;
use std::io::{BufRead, Write};

use mcp_oauth_client::testing::{RecordedRequest, Route, TestServer};
use serde_json::{Value, json};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = TestServer::start()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", server.mcp_url())?;
    out.flush()?;
    let mut total_requests = 0usize;
    let mut connections = BTreeSet::new();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        match words.next() {
            Some("take") => {
                let log = server.requests();
                server.clear_requests();
                total_requests += log.len();
                connections.extend(log.iter().map(|r| r.connection));
                let requests: Vec<Value> = log.iter().map(describe).collect();
                writeln!(out, "{}", json!({ "requests": requests }))?;
            }
            Some("lifetime") => {
                let secs = words.next().and_then(|s| s.parse().ok()).unwrap_or(3600);
                server.set_access_token_lifetime(secs);
                writeln!(out, "{}", json!({ "lifetime": secs }))?;
            }
            Some(other) => writeln!(
                out,
                "{}",
                json!({ "error": format!("unknown command {other}") })
            )?,
            None => continue,
        }
        out.flush()?;
    }
    total_requests += server.requests().len();
    writeln!(
        out,
        "{}",
        json!({
            "requests_total": total_requests,
            "connections_total": connections.len(),
            "clients_registered": server.registered_clients(),
        })
    )?;
    Ok(())
}

/// One request of the log as JSON, without its secrets (no header values but the user agent,
/// no bodies but the JSON-RPC method).
fn describe(r: &RecordedRequest) -> Value {
    let rpc = if r.route == Some(Route::Mcp) {
        serde_json::from_str::<Value>(&r.body)
            .ok()
            .and_then(|m| m.get("method").and_then(Value::as_str).map(str::to_owned))
    } else {
        None
    };
    json!({
        "method": r.method,
        "path": r.path,
        "route": r.route.map(|route| format!("{route:?}")),
        "connection": r.connection,
        "user_agent": r.header("user-agent"),
        "authorization": r.header("authorization").is_some(),
        "grant_type": r.form_param("grant_type"),
        "rpc": rpc,
    })
}
