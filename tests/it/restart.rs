//! A refresh after a process restart needs no discovery: the token file carries the token
//! endpoint. The second process is the real `mcp-oauth` binary.

use std::process::Command;

use mcp_oauth_client::testing::Route;

use crate::common::World;

#[test]
fn expired_token_after_a_process_restart_makes_one_refresh_and_no_browser() {
    let w = World::new();
    let session = w.session();
    session.access_token().unwrap();
    w.expire_cached_token(&session);
    drop(session);
    w.server.clear_requests();

    let out = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"))
        .args(["token", w.server.mcp_url().as_str(), "--timeout", "3"])
        .arg("--cache-dir")
        .arg(w.cache.path())
        .env("BROWSER", "false")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let token = token.trim();
    assert_eq!(w.request_lines(), ["POST /token"]);
    assert_eq!(
        w.requests_to(Route::Token)[0]
            .form_param("grant_type")
            .as_deref(),
        Some("refresh_token")
    );
    assert_eq!(w.mcp_status(token), 200);
    // The new process stored what it got: a third process makes no request at all.
    w.server.clear_requests();
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"))
        .args(["token", w.server.mcp_url().as_str()])
        .arg("--cache-dir")
        .arg(w.cache.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), token);
    assert!(w.server.requests().is_empty());
}
