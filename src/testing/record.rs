//! [`RecordedRequest`]: one entry of the request log.

use super::Route;

/// A request as the server received it, from [`TestServer::requests`](super::TestServer::requests).
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The method, e.g. `"POST"`.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body (invalid UTF-8 replaced with U+FFFD).
    pub body: String,
    /// Which TCP connection carried the request: connections are numbered from 1 in the order
    /// they were accepted, so requests sharing a number came over one kept-alive connection.
    pub connection: u64,
    /// The endpoint the path addresses, per [`Route::of_path`].
    pub route: Option<Route>,
    /// When the request was read.
    pub received: std::time::Instant,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a parameter of the body, read as `application/x-www-form-urlencoded`.
    pub fn form_param(&self, k: &str) -> Option<String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.into_owned())
    }
}
