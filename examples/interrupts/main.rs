//! The interruption harness: many `mcp-oauth token --no-login` processes share one cache while
//! a signal goes to a random running one every few milliseconds; it prints what the signals
//! cost. Against the embedded server in strict refresh-reuse mode (a spent refresh token
//! presented again revokes the whole grant, as RFC 9700 recommends), with short-lived access
//! tokens so that refreshes, and their rotations, happen all the time.
//!
//! ```sh
//! cargo build --all-features --bin mcp-oauth --example interrupts
//! target/debug/examples/interrupts                      # SIGINT and SIGTERM at random
//! target/debug/examples/interrupts --signals kill       # SIGKILL: what no handler can hold
//! ```
//!
//! Options: `--signals int,term|kill|…` (default `int,term`), `--processes 8`, `--calls 400`
//! (per process), `--every-ms 10`, `--lifetime 2` (access token seconds), `--slow-token-ms 20`
//! (the token endpoint answers this much later: a wider window for the signals), `--cli PATH`
//! (default: `mcp-oauth` beside this program's directory). `--url URL --cache-dir DIR` runs
//! against a server of your own instead, whose cache holds a login already; a lost grant is
//! then logged in again with `mcp-oauth login URL` (through `$BROWSER`).
//!
//! A call that exits with 8 (`--no-login`: a login is needed) counts as a lost grant; the
//! harness logs in again and goes on, so the figure is how many authorizations the signals
//! cost. It exits 1 when a cache file is left corrupt or open to others, when a call that was
//! not interrupted failed, and, with SIGINT and SIGTERM only, when they cost a login, left a
//! half-written file, or a last call left alone fails. `--lifetime 0` makes every call
//! refresh (and rotate the refresh token): the hardest case.

#[cfg(unix)]
mod harness;

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    harness::main()
}

#[cfg(not(unix))]
fn main() {
    eprintln!("interrupts: signals as this harness sends them exist on Unix only");
}
