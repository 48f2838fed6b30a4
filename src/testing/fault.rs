//! [`Fault`]: a canned answer that replaces an endpoint's normal behaviour.

use std::time::Duration;

/// A canned failure for one [`Route`](super::Route), set with
/// [`TestServer::set_fault`](super::TestServer::set_fault).
///
/// While a fault is set, requests to its route get this answer instead of the normal one
/// (after an optional delay). Build one with [`Fault::status`], [`Fault::json`] or
/// [`Fault::oauth_error`] and refine it with the builder methods:
///
/// ```
/// use std::time::Duration;
/// use mcp_oauth_client::testing::Fault;
///
/// let fault = Fault::oauth_error(400, "invalid_grant").times(1);
/// let slow = Fault::status(503)
///     .header("Retry-After", "1")
///     .delay(Duration::from_millis(200));
/// # let _ = (fault, slow);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The HTTP status code to answer with.
    pub status: u16,
    /// The response body.
    pub body: String,
    /// The `Content-Type` of the body; no `Content-Type` header is sent when empty.
    pub content_type: String,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// `None`: the fault answers every request to its route until cleared. `Some(n)`: it
    /// answers the next `n` requests, then removes itself.
    pub times: Option<usize>,
    /// How long to wait before answering, e.g. to test client timeouts.
    pub delay: Option<Duration>,
    /// After the delay, answer as the endpoint normally would (status, body and headers
    /// unused): a slow endpoint. See [`Fault::slow`].
    pub then_normal: bool,
}

impl Fault {
    /// A response with this status and an empty body.
    pub fn status(status: u16) -> Fault {
        Fault {
            status,
            body: String::new(),
            content_type: String::new(),
            headers: Vec::new(),
            times: None,
            delay: None,
            then_normal: false,
        }
    }

    /// No failure: the endpoint answers as usual, only `d` later. A window for a test to act
    /// while a request is in flight (interrupt the client, say).
    pub fn slow(d: Duration) -> Fault {
        Fault {
            then_normal: true,
            ..Fault::status(200).delay(d)
        }
    }

    /// A response with this status and a JSON body.
    pub fn json(status: u16, body: serde_json::Value) -> Fault {
        Fault {
            body: body.to_string(),
            content_type: "application/json".into(),
            ..Fault::status(status)
        }
    }

    /// An OAuth error response (RFC 6749 §5.2): this status and `{"error": error}`.
    pub fn oauth_error(status: u16, error: &str) -> Fault {
        Fault::json(status, serde_json::json!({ "error": error }))
    }

    /// Applies the fault to the next `n` requests only, after which it removes itself.
    pub fn times(self, n: usize) -> Fault {
        Fault {
            times: Some(n),
            ..self
        }
    }

    /// Waits `d` before answering.
    pub fn delay(self, d: Duration) -> Fault {
        Fault {
            delay: Some(d),
            ..self
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}
