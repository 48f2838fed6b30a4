//! The example MCP client (`examples/mcp_client.rs`) against the embedded server. `cargo test`
//! builds the examples before it runs the tests; a run of this binary alone (`--test it`)
//! uses whatever example binary the last full build left.

use std::process::Command;

use mcp_oauth_client::testing::{Route, ServerConfig};

use crate::common::World;

/// The example binary `name`, beside this test binary's directory.
fn example(name: &str) -> Command {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run cargo test",
        path.display()
    );
    Command::new(path)
}

#[test]
fn the_example_client_speaks_the_protocol_version_the_server_agreed_to() {
    // A server of an older revision: it answers initialize with 2025-06-18 and refuses, with
    // 400, a request naming the revision the client asked for.
    let w = World::with(ServerConfig {
        protocol_versions: Some(vec!["2025-03-26".into(), "2025-06-18".into()]),
        ..ServerConfig::default()
    });
    let out = example("mcp_client")
        .arg(w.server.mcp_url().as_str())
        .env("MCP_OAUTH_CACHE_DIR", w.cache.path())
        .env("MCP_OAUTH_HEADLESS", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("tools: [\"echo\""), "{stderr}");
    let posts: Vec<_> = w
        .requests_to(Route::Mcp)
        .into_iter()
        .filter(|r| r.method == "POST" && r.header("mcp-session-id").is_some())
        .collect();
    assert_eq!(posts.len(), 3, "initialized, tools/list, tools/call");
    for r in posts {
        assert_eq!(
            r.header("mcp-protocol-version"),
            Some("2025-06-18"),
            "{}",
            r.body
        );
    }
}
