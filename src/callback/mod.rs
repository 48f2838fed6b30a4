//! The loopback redirect listener (RFC 8252 §7.3, §8.3) and the authorization response checks
//! (RFC 6749 §4.1.2, RFC 9207, MCP authorization).
//!
//! The listener binds 127.0.0.1 only and serves `/callback`. Each connection is read on its own
//! thread, at most [`MAX_CALLBACK_REQUEST`] bytes within two seconds, at most 64 at once; a
//! connection beyond that closes the oldest one being read, so clients that connect and stay
//! idle, or send a byte a second, cannot hold the port however many they are. Junk, oversized,
//! non-GET and wrong-`Host` requests, favicon fetches and responses with a wrong or missing
//! `state` get an error page and do not end the wait; the first response with the right
//! `state` does. The `iss` parameter is checked before the code is released (RFC 9207 §2.4).
//!
//! The parts: [`request`](parse_callback_request) parsing (pure, fuzzed), the
//! [`response`](validate_callback) checks (pure, fuzzed), the listener (its binding, its
//! connections, the events that reach the waiting thread, the peer's user), and the pages.

mod accept;
mod bind;
mod events;
mod listener;
mod pages;
mod peer;
mod request;
mod response;

pub(crate) use events::Canceller;
pub use events::{PasteOutcome, Paster};
pub use listener::{CALLBACK_PATH, CallbackHost, CallbackListener};
#[cfg(feature = "test-server")]
pub(crate) use pages::html_escape;
pub use request::{
    CallbackParseError, CallbackRequest, MAX_CALLBACK_REQUEST, parse_callback_request,
};
pub use response::{CallbackExpectation, CallbackOutcome, validate_callback};

/// An I/O failure of the listener.
fn io_error(e: std::io::Error) -> crate::Error {
    crate::Error::new(
        crate::ErrorKind::Config,
        crate::error::Step::Callback,
        "the callback listener failed",
    )
    .with_source(e)
}

/// The query parameters of `q`, for the tests of the parts.
#[cfg(test)]
fn test_params(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}
