//! Parsing the HTTP request that reaches the loopback callback port (RFC 9112 §2-§3, as far as
//! a GET request head goes). Pure and fuzzed.

/// The largest callback request read (request line and headers), in bytes.
pub const MAX_CALLBACK_REQUEST: usize = 8 * 1024;

/// Query parameters whose values never appear in `Debug` output.
const SECRET_PARAMS: [&str; 4] = ["code", "state", "access_token", "id_token"];

/// A parsed HTTP request as it reached the callback port. `Debug` hides the values of `code`
/// and `state`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackRequest {
    /// The request method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The decoded query parameters.
    pub params: Vec<(String, String)>,
    /// The `Host` header, when present.
    pub host: Option<String>,
}

impl std::fmt::Debug for CallbackRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let params: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(k, v)| {
                let shown = if SECRET_PARAMS.contains(&k.as_str()) {
                    "[redacted]"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("CallbackRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("params", &params)
            .field("host", &self.host)
            .finish()
    }
}

/// Why a callback request was not accepted as an HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackParseError {
    /// The headers did not end within [`MAX_CALLBACK_REQUEST`] bytes.
    TooLarge,
    /// The bytes stop before the blank line that ends the headers.
    Incomplete,
    /// The request line or a header is malformed, or `Host` is repeated.
    Malformed,
}

/// Parses the raw bytes of an HTTP/1.x request head as read from the callback socket: the
/// request line and headers up to the blank line (anything after it is ignored).
///
/// # Errors
/// [`CallbackParseError`] for oversized, incomplete or malformed input; never panics.
///
/// ```
/// use mcp_oauth_client::callback::parse_callback_request;
/// let r = parse_callback_request(
///     b"GET /callback?code=abc&state=xyz HTTP/1.1\r\nHost: 127.0.0.1:8765\r\n\r\n",
/// ).unwrap();
/// assert_eq!(r.path, "/callback");
/// assert_eq!(r.params[0], ("code".to_string(), "abc".to_string()));
/// ```
pub fn parse_callback_request(raw: &[u8]) -> Result<CallbackRequest, CallbackParseError> {
    let Some(end) = head_end(raw) else {
        return Err(if raw.len() > MAX_CALLBACK_REQUEST {
            CallbackParseError::TooLarge
        } else {
            CallbackParseError::Incomplete
        });
    };
    if end > MAX_CALLBACK_REQUEST {
        return Err(CallbackParseError::TooLarge);
    }
    let head = std::str::from_utf8(&raw[..end - 4]).map_err(|_| CallbackParseError::Malformed)?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().ok_or(CallbackParseError::Malformed)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(CallbackParseError::Malformed);
    };
    if method.is_empty() || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(CallbackParseError::Malformed);
    }
    let mut host = None;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(CallbackParseError::Malformed)?;
        if name.eq_ignore_ascii_case("host") {
            // RFC 9112 §3.2: more than one Host header is a bad request.
            if host.replace(value.trim().to_owned()).is_some() {
                return Err(CallbackParseError::Malformed);
            }
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    Ok(CallbackRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        params,
        host,
    })
}

/// The length of the request head including its closing blank line, when it is complete.
pub(super) fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::test_params as params;

    #[test]
    fn parses_requests_and_rejects_junk() {
        let r =
            parse_callback_request(b"GET /callback?code=a%20b&state=s HTTP/1.1\r\nHOST: x\r\n\r\n")
                .unwrap();
        assert_eq!(r.params, params("code=a+b&state=s"));
        assert_eq!(r.host.as_deref(), Some("x"));
        for junk in [
            &b"\xff\xfe\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET /a HTTP/1.1 extra\r\n\r\n",
            b"GET a HTTP/1.1\r\n\r\n",
            b"GET /a HTTP/2\r\n\r\n",
            b"GET /a HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
        ] {
            assert_eq!(
                parse_callback_request(junk),
                Err(CallbackParseError::Malformed)
            );
        }
        let big = vec![b'a'; MAX_CALLBACK_REQUEST + 1];
        assert_eq!(
            parse_callback_request(&big),
            Err(CallbackParseError::TooLarge)
        );
        for partial in [&b""[..], b"GET /callback?code=c HTTP/1.1\r\nHost: x\r\n"] {
            assert_eq!(
                parse_callback_request(partial),
                Err(CallbackParseError::Incomplete)
            );
        }
        // A head that ends past the limit is too large even when the blank line came.
        let mut long = b"GET /callback?x=".to_vec();
        long.resize(MAX_CALLBACK_REQUEST, b'a');
        long.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert_eq!(
            parse_callback_request(&long),
            Err(CallbackParseError::TooLarge)
        );
        // Bytes after the head (a body) are not looked at.
        let r =
            parse_callback_request(b"GET /callback HTTP/1.1\r\nHost: h\r\n\r\n\xff\xff").unwrap();
        assert_eq!(r.host.as_deref(), Some("h"));
    }

    #[test]
    fn debug_hides_code_and_state() {
        let r = parse_callback_request(
            b"GET /callback?code=SECRETCODE&state=SECRETSTATE&iss=x HTTP/1.1\r\n\r\n",
        )
        .unwrap();
        let shown = format!("{r:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("iss"), "{shown}");
    }
}
