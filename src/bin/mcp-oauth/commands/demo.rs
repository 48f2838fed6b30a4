//! `demo`: the embedded authorization server and MCP endpoint on 127.0.0.1, and the whole flow
//! against them, each step with its time (a build with the feature `demo`).

use std::time::{Duration, Instant};

use mcp_oauth_client::Session;
use mcp_oauth_client::internals::unix_now;
use mcp_oauth_client::testing::{HeadlessBrowser, TestServer};

use crate::Failure;
use crate::args::Options;

/// Starts the embedded authorization server and runs the whole flow against it, printing
/// each step with its time.
pub(crate) fn demo(options: &Options) -> Result<(), Failure> {
    let server = TestServer::start()
        .map_err(|e| Failure::Other(format!("cannot start the embedded server: {e:#}")))?;
    // A cache of its own, removed at the end, unless one is named (and kept).
    let named = options.cache_dir.clone();
    let cache = named.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "mcp-oauth-demo-{}-{}",
            std::process::id(),
            unix_now()
        ))
    });
    errln!(
        "Embedded authorization server and MCP endpoint: {}",
        server.mcp_url()
    );
    errln!("Token cache for this demo: {}\n", cache.display());

    let browser = HeadlessBrowser::new();
    let mut builder = options.builder(server.mcp_url().as_str())?;
    // At -v the log says the same, line for line.
    if options.verbosity == crate::terminal::Verbosity::Normal {
        builder = builder.on_progress(crate::terminal::progress_printer(Instant::now()));
    }
    let mut builder = builder
        .cache_dir(&cache)
        .callback_timeout(Duration::from_secs(options.timeout.unwrap_or(120)));
    if !options.browser {
        builder = builder.authorize_hook(browser.hook());
    }
    let session = builder.build()?;
    let result = demo_steps(&server, &session);
    if named.is_none() {
        let _ = std::fs::remove_dir_all(&cache);
    }
    result?;
    errln!("\nDone: discovery, registration, browser login with PKCE, cache and refresh all ran.");
    Ok(())
}

fn demo_steps(server: &TestServer, session: &Session) -> Result<(), Failure> {
    errln!("1. An MCP request with no token: the 401 starts the login");
    let started = Instant::now();
    let reply = mcp_initialize(session)?;
    errln!(
        "   initialize -> {reply} after {} ms",
        started.elapsed().as_millis()
    );
    show_requests(server);

    errln!("\n2. Again, from the cache:");
    server.clear_requests();
    let started = Instant::now();
    session.access_token()?;
    errln!(
        "   token in {} us, {} request(s) to the server",
        started.elapsed().as_micros(),
        server.requests().len()
    );

    errln!("\n3. After the access token expired (the cached expiry is moved to now):");
    let storage = session.store();
    if let Some(mut stored) = storage.load_tokens(session.server_url())? {
        stored.tokens.expires_at = Some(unix_now());
        storage.save_tokens(session.server_url(), &stored)?;
    }
    server.clear_requests();
    let started = Instant::now();
    session.access_token()?;
    errln!("   refreshed in {} ms", started.elapsed().as_millis());
    show_requests(server);
    Ok(())
}

fn show_requests(server: &TestServer) {
    let requests = server.requests();
    errln!("   the server received {} request(s):", requests.len());
    for r in requests {
        errln!("     {} {}", r.method, r.path);
    }
}

/// `initialize` on the MCP endpoint through the session; returns a one-line summary.
fn mcp_initialize(session: &Session) -> Result<String, Failure> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "mcp-oauth demo", "version": env!("CARGO_PKG_VERSION")}}
    })
    .to_string();
    let mut response = session.send(|agent| {
        agent
            .post(session.server_url().as_str())
            .header("accept", "application/json, text/event-stream")
            .content_type("application/json")
            .send(&body)
    })?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| Failure::Other(format!("reading the MCP answer: {e:#}")))?;
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    Ok(format!(
        "HTTP {status} from {}",
        value["result"]["serverInfo"]["name"]
    ))
}
