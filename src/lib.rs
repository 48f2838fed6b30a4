//! A blocking OAuth 2.1 client that logs a program in to an OAuth-protected MCP server.
//!
//! Blocking on purpose: no async runtime, one thread, plain `std` sockets and files, so that
//! sync programs and small binaries get the MCP authorization flow without tokio. It is the
//! Rust counterpart of FastMCP's `OAuth` helper.
//!
//! ```no_run
//! use mcp_oauth_client::Session;
//!
//! let session = Session::builder("https://mcp.example.com/mcp")
//!     .scopes("files:read")
//!     .build()?;
//! // Cached token, else refresh, else discovery + registration + browser login.
//! let header = session.authorization_header()?;
//! let response = ureq::post("https://mcp.example.com/mcp")
//!     .header("authorization", &header)
//!     .content_type("application/json")
//!     .send(r#"{"jsonrpc": "2.0", "id": 1, "method": "ping"}"#)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The flow, and where each step lives
//! | step | spec | pure part | exchange |
//! | --- | --- | --- | --- |
//! | token check | MCP authorization | [`TokenSet::is_fresh`] | [`FileTokenStorage::load_tokens`] |
//! | refresh | RFC 6749 §6, RFC 8707 | [`parse_token_response`] | [`refresh`] |
//! | resource metadata | RFC 9728 | [`parse_www_authenticate`], [`resource_metadata_urls`], [`parse_resource_metadata`] | [`discover_resource_metadata`] |
//! | authorization server metadata | RFC 8414, OIDC Discovery | [`auth_server_metadata_urls`], [`parse_auth_server_metadata`] | [`discover_auth_server_metadata`] |
//! | client registration | RFC 7591 | [`build_registration_request`], [`parse_registration_response`] | [`register`] |
//! | authorization request | RFC 6749 §4.1, RFC 7636, RFC 8707 | [`PkceVerifier`], [`select_scopes`], [`build_authorization_url`] | the browser: [`open_browser`] |
//! | callback | RFC 8252, RFC 9207 | [`parse_callback_request`], [`validate_callback`] | [`CallbackListener`] |
//! | code exchange | RFC 6749 §4.1.3 | [`parse_token_response`] | [`exchange_code`] |
//! | storage | | [`parse_stored_tokens`], [`cache_key`] | [`FileTokenStorage`] |
//!
//! [`Session`] runs them in order, only as far as needed. Every step is also usable alone.
//!
//! # Security
//! - PKCE `S256` only; an authorization server that does not advertise it is refused before
//!   any browser opens.
//! - `state` is 32 random bytes compared in constant time; the RFC 9207 `iss` parameter is
//!   checked before the code is redeemed; the metadata `issuer` must match exactly and the
//!   resource metadata must name this server.
//! - The `resource` indicator binds tokens to the MCP server (RFC 8707).
//! - HTTPS everywhere except loopback; no redirects followed on OAuth requests; response
//!   bodies and callback requests are size- and time-bounded.
//! - Client credentials are bound to the issuer that issued them.
//! - Tokens, codes, verifiers and secrets never appear in `Debug`, errors or logs
//!   ([`Secret`]); the cache is 0700/0600 and written atomically.
//!
//! # Features
//! - `test-server`: [`testing::TestServer`], an embedded authorization server and MCP
//!   endpoint on loopback, for tests of programs that use this crate.
//! - `cli`: the `mcp-oauth` command.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod address;
mod authorize;
mod browser;
mod callback;
mod discovery;
mod error;
mod flow;
mod http;
mod pkce;
mod registration;
mod request;
mod revocation;
mod scope;
mod secret;
mod session;
mod storage;
mod token;
mod www_authenticate;

#[cfg(feature = "test-server")]
pub mod testing;

pub use address::{AddressClass, classify_address};
pub use authorize::{AuthorizationRequest, build_authorization_url};
pub use browser::{AuthorizeHook, accept_pasted_redirects, open_browser};
pub use callback::{
    CALLBACK_PATH, CallbackExpectation, CallbackHost, CallbackListener, CallbackOutcome,
    CallbackParseError, CallbackRequest, MAX_CALLBACK_REQUEST, parse_callback_request,
    validate_callback,
};
pub use discovery::{
    AuthServerMetadata, METADATA_LIMIT, ResourceMetadata, auth_server_metadata_urls,
    canonical_resource, discover_auth_server_metadata, discover_legacy_auth_server_metadata,
    discover_resource_metadata, fallback_auth_server_metadata, parse_auth_server_metadata,
    parse_legacy_auth_server_metadata, parse_resource_metadata, resource_matches,
    resource_metadata_urls,
};
pub use error::{Error, ErrorKind, Result, Step, printable};
pub use http::parse_oauth_error; // #[doc(hidden)]: for the fuzz targets
pub use http::{
    CONNECT_TIMEOUT, OAUTH_BODY_LIMIT, REQUEST_TIMEOUT, is_loopback, new_agent, require_secure,
};
pub use pkce::{PkceVerifier, s256_challenge};
pub use registration::{
    AuthMethod, ClientRegistration, RegistrationRequest, build_registration_request,
    choose_auth_method, parse_registration_response, register,
};
pub use request::{MAX_AUTHORIZATIONS, MCP_RESPONSE_TIMEOUT};
pub use revocation::{RevocationRequest, TokenTypeHint, revoke};
pub use scope::{ScopeSources, Scopes, select_scopes};
pub use secret::{Secret, constant_time_eq};
pub use session::{
    DEFAULT_CALLBACK_TIMEOUT, DEFAULT_CLIENT_NAME, EXPIRY_MARGIN, Logout, Session, SessionBuilder,
};
pub use storage::{
    CACHE_DIR_ENV, FORMAT_VERSION, FileTokenStorage, StoredTokens, cache_key, parse_stored_client,
    parse_stored_tokens,
};
pub use token::{
    CodeExchange, MAX_EXPIRES_IN, RefreshRequest, TokenSet, exchange_code, parse_token_response,
    refresh, unix_now,
};
pub use www_authenticate::{Challenge, MAX_HEADER_LEN, bearer_challenge, parse_www_authenticate};
