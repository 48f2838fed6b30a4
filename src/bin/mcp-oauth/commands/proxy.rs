//! `proxy`: the stdio bridge. Stdout carries JSON-RPC only; progress, prompts and errors go
//! to stderr.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use mcp_oauth_client::bridge::Bridge;

use crate::Failure;
use crate::args::Options;
use crate::wiring::Person;

pub(crate) fn proxy(options: &Options) -> Result<(), Failure> {
    let done = Arc::new(AtomicBool::new(false));
    let person = Person::here(options, true);
    let session = options.session_for(person, true, &done, false)?;
    let url = options.url().to_owned();
    let hint = match (options.no_login, person) {
        (true, _) => format!("run `mcp-oauth login {url}` first"),
        (false, Person::Nobody) => format!(
            "no browser can be started here: run `mcp-oauth login {url}` in a terminal, or \
             `mcp-oauth login {url} --device`"
        ),
        _ => format!("run `mcp-oauth login {url}`"),
    };
    let bridge = Bridge::new(session, std::io::stdout(), options.headers.clone())?
        .transport(options.transport)
        .login_hint(hint);
    let result = bridge.run(std::io::stdin().lock());
    // A request the bridge stopped waiting for may be inside a refresh: its tokens first.
    if let Some(deferral) = crate::signals::install() {
        deferral.wait_closed(Duration::from_secs(60));
    }
    result?;
    Ok(())
}
