//! A blocking OAuth 2.1 client that logs a program in to an OAuth-protected MCP server.
//!
//! Blocking on purpose: no async runtime, plain `std` threads, sockets and files, so that sync
//! programs and small binaries get the MCP authorization flow without tokio. It is the Rust
//! counterpart of FastMCP's `OAuth` helper. The library never reads stdin nor writes to the
//! terminal: what a person sees is the front end's (the `mcp-oauth` CLI is one).
//!
//! ```no_run
//! use mcp_oauth_client::Session;
//!
//! let session = Session::builder("https://mcp.example.com/mcp")
//!     .scopes("files:read")
//!     .build()?;
//! // A 401 starts the login (discovery, registration, the browser, PKCE); tokens are then
//! // cached, refreshed, and the request is sent again.
//! let reply = session.send(|agent| {
//!     agent
//!         .post(session.server_url().as_str())
//!         .content_type("application/json")
//!         .send(r#"{"jsonrpc": "2.0", "id": 1, "method": "ping"}"#)
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Three embeddings
//! **A daemon or a job** never opens a browser: it uses the cached token (refreshing it) and
//! tells a person when only a login would help.
//! ```no_run
//! use mcp_oauth_client::{ErrorKind, Session};
//!
//! let session = Session::builder("https://mcp.example.com/mcp")
//!     .interactive(false)
//!     .build()?;
//! match session.access_token() {
//!     Ok(token) => { /* use token.secret() */ }
//!     Err(e) if e.kind() == ErrorKind::LoginRequired => {
//!         // Nothing was opened or bound: ask someone to run `mcp-oauth login URL`.
//!     }
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//! **A GUI** shows the browser step its own way: the hook gets a [`BrowserStep`]; it starts
//! the system browser with the one-time launch URL, shows the authorization URL for copying,
//! and can hand over an address the person pasted. Another thread may
//! [`cancel_login`](Session::cancel_login).
//! ```no_run
//! use mcp_oauth_client::{BrowserStep, Session, browser::open_browser};
//!
//! let session = Session::builder("https://mcp.example.com/mcp")
//!     .authorize_hook(|step: &BrowserStep| {
//!         let _ = open_browser(&step.launch_url);
//!         // show step.authorization_url and step.remaining(); keep step.paster() for a
//!         // "paste the address" field
//!     })
//!     .build()?;
//! # Ok::<(), mcp_oauth_client::Error>(())
//! ```
//! **A test harness** runs the embedded authorization server and MCP endpoint (feature
//! `test-server`) and a headless browser that approves at once.
//! ```
//! # #[cfg(feature = "test-server")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use mcp_oauth_client::Session;
//! use mcp_oauth_client::testing::{HeadlessBrowser, TestServer};
//!
//! let server = TestServer::start()?;
//! let browser = HeadlessBrowser::new();
//! let cache = std::env::temp_dir().join(format!("doc-harness-{}", std::process::id()));
//! let session = Session::builder(server.mcp_url().as_str())
//!     .cache_dir(&cache)
//!     .authorize_hook(browser.hook())
//!     .build()?;
//! session.access_token()?; // the whole login, over loopback
//! # std::fs::remove_dir_all(&cache)?;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "test-server"))]
//! # fn main() {}
//! ```
//!
//! **A service without a person** uses a grant with no browser: client credentials (with a
//! secret, or `private_key_jwt` with a key file), the JWT bearer grant with a workload
//! identity token, or enterprise-managed authorization (see [`SessionBuilder::grant`]). It
//! never binds a port; the grant runs again when the token expires.
//! ```no_run
//! use mcp_oauth_client::{Assertion, Session};
//!
//! let service = Session::builder("https://mcp.example.com/mcp")
//!     .client_id("svc-1")
//!     .client_key_file("/etc/svc-1/key.pem")
//!     .client_credentials()
//!     .build()?;
//! let workload = Session::builder("https://mcp.example.com/mcp")
//!     .jwt_bearer(Assertion::File("/var/run/secrets/tokens/mcp".into()))
//!     .build()?;
//! # Ok::<(), mcp_oauth_client::Error>(())
//! ```
//! Where the authorization server advertises DPoP (RFC 9449), any of these logins binds its
//! tokens to a key the session holds and stores with them; the session's agent sends each
//! request with a fresh proof ([`dpop`]).
//!
//! # The flow, and where each step lives
//! Each protocol step is a module: a pure part (parse and build, fuzzed) and one blocking
//! exchange taking a `&ureq::Agent`, usable alone.
//!
//! | step | spec | pure part | exchange |
//! | --- | --- | --- | --- |
//! | token check | MCP authorization | [`TokenSet::is_fresh`] | [`TokenStore::load_tokens`] |
//! | refresh | RFC 6749 §6, RFC 8707 | [`token::parse_token_response`] | [`token::refresh`] |
//! | resource metadata | RFC 9728 | [`www_authenticate::parse_www_authenticate`], [`discovery::resource_metadata_urls`], [`discovery::parse_resource_metadata`] | [`discovery::discover_resource_metadata`] |
//! | authorization server metadata | RFC 8414, OIDC Discovery | [`discovery::auth_server_metadata_urls`], [`discovery::parse_auth_server_metadata`] | [`discovery::discover_auth_server_metadata`] |
//! | where a server may send the client | MCP security | [`address::classify_address`] | the session's resolver |
//! | client | RFC 7591, RFC 6749 §2.3 | [`registration::ConfiguredClient`], [`registration::build_registration_request`], [`registration::parse_registration_response`], [`client_auth::choose_auth_method`] | [`registration::register`] |
//! | authorization request | RFC 6749 §4.1, RFC 7636, RFC 8707 | [`pkce::PkceVerifier`], [`scope::select_scopes`], [`authorize::build_authorization_url`] | the browser: [`BrowserStep`], [`browser::open_browser`] |
//! | callback | RFC 8252, RFC 9207 | [`callback::parse_callback_request`], [`callback::validate_callback`] | [`callback::CallbackListener`] |
//! | code exchange | RFC 6749 §4.1.3 | [`token::parse_token_response`] | [`token::exchange_code`] |
//! | device login | RFC 8628 | [`device::parse_device_authorization_response`] | [`device::request_device_authorization`], [`device::poll_for_tokens`] |
//! | grants without a browser | RFC 6749 §4.4, RFC 7523, RFC 8693 | [`grant::parse_token_exchange_response`], [`jwt::SigningKey::from_pem`] | [`grant::client_credentials`], [`grant::jwt_bearer`], [`grant::exchange_for_id_jag`] |
//! | sender-constrained tokens | RFC 9449 | [`dpop::Dpop::proof`], [`jwt::decode_unverified`] | every token and MCP request |
//! | revocation | RFC 7009 | | [`revocation::revoke`] |
//! | storage | | [`storage::parse_stored_tokens`] | [`TokenStore`], [`FileTokenStorage`] |
//!
//! [`Session`] runs them in order, only as far as needed.
//!
//! # Layers
//! Each layer uses the ones below it, never one above; no two source files import each other
//! through any path (`python3 .ci/module-cycles` checks it, in CI).
//!
//! 1. **Wire**: [`error`](Error) (errors, [`printable`]), [`local`] (the clock, the files a
//!    user names), [`secret`](Secret), [`address`] (where a server may send the client),
//!    [`scope`], [`www_authenticate`], [`jwt`], [`dpop`], [`http`] (the agent, bounded
//!    exchanges, JSON limits).
//! 2. **Steps**, one module each, usable alone: [`discovery`], [`client`] and [`client_auth`],
//!    [`registration`], [`pkce`], [`authorize`], [`callback`], [`browser`], [`token`] (with
//!    [`token::ClientEndpoint`], which every request at the authorization server starts
//!    from), [`device`], [`grant`], [`revocation`]. A step never uses the session.
//! 3. **Storage**: [`storage`] (the cache files, their locks, the keyring).
//! 4. **Session**: `session/flow.rs` holds the entry points and the locks; each part of a flow
//!    is a module of its concept, given what it needs and never using `flow.rs`: the cache
//!    entry (`cache`), the DPoP key (`keys`), the token check and refresh (`refresh`),
//!    discovery and its checks (`servers`), client choice and registration (`clients`), and
//!    the logins (`browser_login`, `device_login`, `grant_login`).
//! 5. **Front ends**: [`bridge`] (the public [`Session`] API and its agent only) and the
//!    `mcp-oauth` CLI (a binary on the public API). [`testing`] (feature `test-server`) stands
//!    beside the client: it uses the wire and a few steps' parsers and names, never the
//!    session.
//!
//! # Interruptions
//! A refresh at a server that rotates refresh tokens spends the old token when the server
//! answers; a code exchange spends the code. A process stopped between that answer and the
//! write of the new tokens has lost them, and a server with reuse detection then revokes the
//! grant at the next refresh: a new login. So the session writes new tokens first, durably
//! (`fsync` of the file and its directory), before anything else is done with them, and tells
//! a [`CriticalSection`] ([`SessionBuilder::critical_section`]) when such a window opens and
//! closes, for a front end to hold SIGINT and SIGTERM meanwhile (the `mcp-oauth` CLI does,
//! with `signal-hook`; the library installs no signal handler). Waiting for the browser is
//! never inside one. Before each refresh request a [`storage::RefreshMark`] is recorded and
//! removed once its answer is handled: one left behind (a SIGKILL, a power cut) lets the next
//! refresh, refused with `invalid_grant`, say why a login is needed
//! (`interrupts::an_invalid_grant_after_an_unfinished_refresh_says_why_a_login_is_needed`).
//!
//! # Security
//! Each rule names the test (in `tests/it/`) that holds it.
//! - **PKCE `S256` only**: an authorization server that does not advertise it is refused before
//!   any browser opens (`security::an_as_without_code_challenge_methods_is_refused_before_any_browser_opens`,
//!   `security::an_as_offering_only_plain_pkce_is_refused`).
//! - **`state`** is 32 random bytes compared in constant time; a response with another `state`
//!   is answered with a page saying so and the wait goes on
//!   (`login::callback_with_wrong_state_is_answered_and_ignored_then_the_right_one_completes`,
//!   `cli::a_response_for_another_login_is_refused_in_one_line_and_the_login_goes_on`).
//! - **Issuers**: the RFC 9207 `iss` is checked before the code is redeemed
//!   (`hostile::an_iss_for_another_issuer_is_refused_and_no_code_redeemed`,
//!   `security::a_missing_iss_from_a_server_that_advertises_rfc9207_is_refused_and_no_code_redeemed`);
//!   the metadata `issuer` must match exactly (`security::an_issuer_mismatch_in_as_metadata_stops_the_flow`)
//!   and the resource metadata must name this server
//!   (`security::a_resource_metadata_resource_for_another_server_stops_the_flow`).
//! - **The `resource` indicator** binds tokens to the MCP server (RFC 8707;
//!   `scopes::resource_is_sent_on_authorize_token_and_refresh`).
//! - **Client credentials** are bound to the issuer that issued them; a resource that moves to
//!   another authorization server gets a new registration there
//!   (`agent::after_the_resource_moves_to_another_authorization_server_the_client_registers_there`).
//! - **Transport**: HTTPS except to loopback, and plain HTTP to loopback only when the MCP server
//!   is on loopback (`security::plain_http_to_a_remote_server_is_refused_at_build`); no
//!   redirects followed on OAuth requests (`hostile::a_redirect_on_the_code_exchange_is_not_followed`
//!   and its siblings); bodies size-capped and reads time-bounded
//!   (`hostile::prm_larger_than_the_body_limit_is_not_read_whole`,
//!   `hostile::a_token_endpoint_that_never_answers_times_out`); the body of a 401 or 403 that
//!   `Session::send` handles is never waited for
//!   (`hostile::a_401_whose_body_comes_a_byte_every_two_seconds_does_not_hold_send`).
//! - **Where a server may send the client** ([`address`] rules): a
//!   remote server's challenge and metadata may name neither loopback, link-local, cloud
//!   metadata nor special addresses, literal or resolved, checked before any connection; private
//!   addresses only with [`SessionBuilder::allow_private_network`]
//!   (`destinations::a_remote_servers_registration_endpoint_on_loopback_is_refused_before_connecting`,
//!   `destinations::a_remote_servers_endpoint_whose_name_resolves_to_loopback_is_refused_before_connecting`,
//!   `destinations::private_network_addresses_need_the_opt_in`, and the rest of `destinations`).
//! - **Server text on a terminal**: every error's text and the CLI's output of server-supplied
//!   text go through [`printable`] (control characters, bidirectional and invisible formatting
//!   characters, and the line and paragraph separators U+2028 and U+2029 dropped)
//!   (`cli::an_issuer_with_escape_sequences_reaches_neither_the_progress_lines_nor_the_error`,
//!   `cli::status_prints_a_tampered_cache_files_text_harmlessly`); an access token that is not
//!   visible ASCII is refused, from a server or a cache file
//!   (`habits::an_access_token_that_is_not_visible_ascii_is_refused_at_the_exchange`,
//!   `cli::a_cached_access_token_with_cr_lf_is_never_printed`).
//! - **Secrets** never appear in `Debug`, errors or this crate's logs ([`Secret`];
//!   `security::errors_never_carry_tokens` and every case of `hostile`). ureq's protocol layer
//!   logs request and response bytes at trace level: the default feature `log-max-debug` compiles
//!   trace logging out of the program (`hostile::no_secret_reaches_a_logger_set_to_trace_for_every_target`).
//!   Without it, **keep the targets `ureq_proto` and `ureq` at debug or below in your logger**.
//!   The CLI takes a client secret from a file, standard input or the environment, never its
//!   command line (`cli::a_client_secret_on_the_command_line_is_refused_with_where_to_put_it`).
//! - **The cache** is 0700/0600 and written atomically (`files::cache_dir_is_0700_and_files_0600`);
//!   every cache file is opened without following a symlink or blocking on a FIFO and checked on
//!   the open handle: a regular file of this user (`files::planted::*`).
//! - **DPoP keys and client keys**: the DPoP private key is stored only with the tokens it
//!   binds (the same 0600 file) and never in `Debug`; a proof is fresh for every request (its
//!   own `jti`; `dpop::a_bound_token_is_refused_with_the_bearer_scheme_and_accepted_with_dpop`
//!   shows a replayed proof refused), and a server's nonce is taken once per request
//!   (`dpop::a_server_that_keeps_asking_for_a_nonce_gets_one_retry_then_an_error_not_a_login`);
//!   a client's private key is read from a file, never the command line, and a key that
//!   cannot sign is refused when read
//!   (`machines::a_client_key_that_is_not_a_key_is_a_configuration_error_naming_the_file`).
//!   A refused workload assertion is not sent again
//!   (`machines::an_assertion_with_a_wrong_audience_or_past_its_expiry_is_refused_once_and_not_retried`).
//!   An identity provider's token endpoint is trusted like the MCP server's origin because the
//!   user named it, not a server.
//! - **The callback listener** binds 127.0.0.1; idle, slow or junk connections cannot keep the
//!   browser's redirect out (`hostile::two_hundred_idle_and_eight_slow_connections_do_not_keep_the_redirect_out`,
//!   `hostile::a_thousand_junk_connections_then_the_real_callback_completes`). With a
//!   `localhost` redirect URI it binds every loopback address the name may mean (`::1` too,
//!   which browsers try first), and refuses to start when another program holds one, instead
//!   of leaving it to receive the code
//!   (`local_users::a_localhost_callback_refuses_to_start_when_another_program_holds_its_ipv6_side`,
//!   `local_users::a_localhost_callback_answers_on_ipv6_too`).
//! - **Other users of the machine** can read the browser's command line (`/proc/PID/cmdline`):
//!   the browser is started with a one-time launch URL on the loopback listener (on the
//!   literal `127.0.0.1`), never with `state` or the PKCE challenge, and on Linux the listener
//!   answers the launch URL, and a callback carrying this login's `state`, only for programs of
//!   its own user (or root), read from the kernel's socket table: another user who opens the
//!   launch URL first gets a refusal and the login goes on
//!   (`local_users::another_user_replaying_the_launch_url_gets_nothing_and_the_login_goes_on`);
//!   a program that sends its request and closes at once, leaving a row the kernel shows with
//!   uid 0 or none at all, is refused too, not taken for root
//!   (`callback::peer::tests::a_peer_that_closed_first_is_not_taken_for_root`).
//!   Opened twice by this user's programs, it stops the login
//!   (`embedding::a_launch_url_opened_twice_stops_the_login`,
//!   `embedding::a_launch_url_redirects_once_to_the_authorization_url`). Without it, one who
//!   read `state` and the challenge could authorize their own account with that challenge and
//!   deliver the code to the listener (RFC 8252 §8.3, RFC 9700 §4.5): the client would hold
//!   tokens for the attacker's account. Elsewhere the listener cannot tell users apart, and
//!   what protects the launch URL is the system: macOS's kernel gives a process's arguments
//!   only to its own user and root (XNU, `sysctl_procargsx`), and the browser is handed the URL
//!   through LaunchServices, not on a command line; on Windows, a process's command line is
//!   read through a handle that its default security grants only to its user, SYSTEM and
//!   administrators. (Both from the systems' sources and documentation; the tests run on
//!   Linux.) What remains are the other Unix systems (FreeBSD, for one, shows every
//!   user's command lines unless `security.bsd.see_other_uids` is 0): a local user who reads
//!   the launch URL and opens it first is redirected to the authorization URL; a real browser
//!   opening it next stops the login, but one that is slower than the attacker's whole
//!   authorization (a scripted login at a server that remembers consent) may let the
//!   attacker's code arrive first. There, log in with the URL shown instead of a browser
//!   started (`--no-browser`). And a front end that prints the authorization URL (the CLI
//!   does, for copying to another machine) shows `state` on that terminal.
//! - **The stdio bridge** ([`bridge`]) under a hostile server: answers are forwarded as sent,
//!   never made a tree, each at most [`bridge::MAX_MESSAGE`] and all together at most
//!   [`bridge::MAX_HELD`] (`hostile_bridge::a_large_answer_costs_about_its_size_in_memory_not_a_tree_of_it`);
//!   redirects are not followed, so the session's headers never reach another origin
//!   (`hostile_bridge::a_redirect_to_another_origin_is_not_followed_with_the_sessions_headers`);
//!   a server that refuses a newly obtained token stops the bridge's logins, and its event
//!   stream never starts one
//!   (`hostile_bridge::a_server_refusing_every_token_gets_one_new_token_then_errors_not_a_login_per_message`);
//!   every request gets one answer, the ones in flight when the input ends an error
//!   (`hostile_bridge::requests_still_in_flight_when_the_input_ends_each_get_an_error`).
//! - **Files a user names** (a client secret, a client key, an assertion, a CA bundle) are
//!   opened without blocking, must be regular files and at most [`local::MAX_USER_FILE`]
//!   bytes: `/dev/zero`, a FIFO or a huge file stop nothing
//!   (`security::files_a_user_names_are_read_only_when_regular_and_small_never_blocking`).
//! - **What a person is shown** of a device login: a `verification_uri` with a user name in it
//!   (it reads as another host than the one it leads to) and a `user_code` that is not a short
//!   code are refused before anything is shown
//!   (`device::a_device_answer_that_would_mislead_the_person_is_refused_and_nothing_is_shown`).
//! - **Authorization request parameters** of the user's may not replace the request's own:
//!   `state`, `redirect_uri`, … and `request`, `request_uri`, `response_mode`
//!   (`switches::extra_authorization_parameters_go_in_the_authorization_url_only`).
//! - **Proxies**: a proxy variable (`HTTPS_PROXY`, …) that is not a proxy URL is a
//!   configuration error, not a silent direct connection
//!   (`network::a_proxy_variable_that_is_not_a_proxy_url_is_a_configuration_error_not_a_direct_connection`).
//!
//! # Features
//! - `test-server`: [`testing::TestServer`], an embedded authorization server and MCP
//!   endpoint on loopback, for tests of programs that use this crate.
//! - `cli`: the `mcp-oauth` command (with `platform-verifier`).
//! - `platform-verifier`: TLS verified by the operating system's trust store.
//! - `keyring`: [`storage::KeyringTokenStore`], tokens and client secrets in the OS keyring.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// docs.rs builds with `--cfg docsrs` on nightly: the features an item needs are shown on it.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod address;
pub mod authorize;
pub mod bridge;
pub mod browser;
pub mod callback;
pub mod client;
pub mod client_auth;
pub mod device;
pub mod discovery;
pub mod dpop;
mod error;
pub mod grant;
pub mod http;
pub mod jwt;
pub mod local;
pub mod pkce;
pub mod registration;
pub mod revocation;
pub mod scope;
mod secret;
mod session;
pub mod storage;
pub mod token;
pub mod www_authenticate;

#[cfg(feature = "test-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-server")))]
pub mod testing;

/// The HTTP client this crate is built on: [`Session::agent`] is a [`ureq::Agent`] and
/// [`Session::send`] returns a ureq response.
pub use ureq;
/// The URL type of this crate's API ([`Session::server_url`], the metadata's endpoints).
pub use url;

pub use browser::{AuthorizeHook, BrowserStep};
pub use callback::{CallbackHost, PasteOutcome, Paster};
pub use client::AuthMethod;
pub use error::{Error, ErrorKind, OAuthErrorCode, Result, Step, printable};
pub use grant::{Assertion, Grant, IdentityAssertion};
pub use jwt::SigningKey;
pub use revocation::TokenTypeHint;
pub use scope::Scopes;
pub use secret::Secret;
pub use session::{
    CriticalSection, DEFAULT_CALLBACK_TIMEOUT, DEFAULT_CLIENT_NAME, EXPIRY_MARGIN, Logout,
    MAX_AUTHORIZATIONS, MCP_RESPONSE_TIMEOUT, Progress, Session, SessionBuilder,
};
pub use storage::{CacheLock, FileTokenStorage, StoredTokens, TokenStore};
pub use token::TokenSet;

/// The README's code, compiled (and the harness run) by `cargo test --all-features`.
#[cfg(all(doctest, feature = "test-server"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Items for the fuzz targets, the CLI and the tests: not part of the API, may change in any
/// release.
#[doc(hidden)]
pub mod internals {
    pub use crate::address::{is_loopback, require_secure};
    pub use crate::http::parse_oauth_error;
    pub use crate::local::unix_now;
    pub use crate::secret::constant_time_eq;
    pub use crate::storage::{FORMAT_VERSION, cache_key, parse_refresh_mark, parse_stored_client};
}
