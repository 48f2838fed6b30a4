//! A minimal HTTP/1.1 request reader and response writer: Content-Length bodies, keep-alive,
//! `Expect: 100-continue`, and hard limits on what a peer can make the server read.

use std::io::{self, BufRead, BufReader, Read, Write};

/// The most bytes a request line plus headers may take.
pub(super) const MAX_HEAD: usize = 16 * 1024;
/// The largest request body accepted.
pub(super) const MAX_BODY: usize = 1024 * 1024;

/// A parsed request.
#[derive(Debug)]
pub(super) struct Request {
    pub method: String,
    /// The path of the request target, without the query.
    pub path: String,
    /// The decoded query parameters.
    pub query: Vec<(String, String)>,
    /// Headers, names lowercased, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
}

impl Request {
    /// The first value of a header; `name` must be lowercase.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as `application/x-www-form-urlencoded`.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The peer closed the connection, went quiet, or an I/O error happened: just close.
    Closed,
    /// The request is unacceptable: send this response, then close.
    Reject(Response),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> ReadError {
        ReadError::Closed
    }
}

/// Reads one request from a connection. `S` is the connection, written to only for a
/// `100 Continue` interim response.
pub(super) fn read_request<S: Read + Write>(conn: &mut BufReader<S>) -> Result<Request, ReadError> {
    let lines = read_head(conn)?;
    let Some((request_line, header_lines)) = lines.split_first() else {
        return Err(ReadError::Closed);
    };
    let (method, target, http10) = parse_request_line(request_line)?;
    let headers = header_lines
        .iter()
        .map(|line| parse_header(line))
        .collect::<Result<Vec<_>, _>>()?;

    if headers.iter().any(|(k, _)| k == "transfer-encoding") {
        return Err(reject(
            501,
            "Transfer-Encoding is not supported; send Content-Length",
        ));
    }
    let mut length = None;
    for (_, value) in headers.iter().filter(|(k, _)| k == "content-length") {
        let parsed = value
            .parse::<u64>()
            .ok()
            .filter(|_| value.bytes().all(|b| b.is_ascii_digit()));
        match (parsed, length) {
            (None, _) => return Err(reject(400, "invalid Content-Length")),
            (Some(n), Some(previous)) if n != previous => {
                return Err(reject(400, "conflicting Content-Length headers"));
            }
            (Some(n), _) => length = Some(n),
        }
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY as u64 {
        return Err(reject(413, "request body too large"));
    }

    let connection = header_tokens(&headers, "connection");
    let keep_alive = if http10 {
        connection.iter().any(|t| t == "keep-alive")
    } else {
        !connection.iter().any(|t| t == "close")
    };

    let expects_continue = headers
        .iter()
        .any(|(k, v)| k == "expect" && v.eq_ignore_ascii_case("100-continue"));
    if expects_continue && length > 0 && !http10 {
        let stream = conn.get_mut();
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        stream.flush()?;
    }
    let mut body = vec![0; length as usize];
    conn.read_exact(&mut body)?;

    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, query),
        None => (target, ""),
    };
    Ok(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        headers,
        body,
        keep_alive,
    })
}

/// Reads the request line and header lines, without their line endings, skipping empty lines
/// before the request line.
fn read_head<R: BufRead>(conn: &mut R) -> Result<Vec<String>, ReadError> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        // One byte over the limit tells a line that is too long from one that just fits.
        let allowance = (MAX_HEAD + 1 - total) as u64;
        let n = conn.by_ref().take(allowance).read_until(b'\n', &mut line)?;
        total += n;
        if total > MAX_HEAD {
            return Err(reject(431, "request head too large"));
        }
        if n == 0 || line.last() != Some(&b'\n') {
            // End of stream: clean between requests, truncated inside one.
            return Err(if lines.is_empty() && n == 0 {
                ReadError::Closed
            } else {
                reject(400, "truncated request")
            });
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            return Ok(lines);
        }
        lines.push(String::from_utf8_lossy(&line).into_owned());
    }
}

/// Splits `METHOD SP target SP HTTP/1.x`; returns whether it is HTTP/1.0.
fn parse_request_line(line: &str) -> Result<(&str, &str, bool), ReadError> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(reject(400, "malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(reject(400, "malformed method"));
    }
    if !target.starts_with('/') || target.bytes().any(|b| b.is_ascii_control() || b >= 0x80) {
        return Err(reject(400, "the request target must be an absolute path"));
    }
    match version {
        "HTTP/1.1" => Ok((method, target, false)),
        "HTTP/1.0" => Ok((method, target, true)),
        _ => Err(reject(505, "only HTTP/1.0 and HTTP/1.1 are supported")),
    }
}

fn parse_header(line: &str) -> Result<(String, String), ReadError> {
    let Some((name, value)) = line.split_once(':') else {
        return Err(reject(400, "malformed header line"));
    };
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        // Also rejects obsolete line folding, whose lines start with whitespace.
        return Err(reject(400, "malformed header name"));
    }
    Ok((
        name.to_ascii_lowercase(),
        value.trim_matches([' ', '\t']).to_owned(),
    ))
}

/// The lowercased comma-separated tokens of every `name` header.
fn header_tokens(headers: &[(String, String)], name: &str) -> Vec<String> {
    headers
        .iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect()
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn reject(status: u16, message: &str) -> ReadError {
    ReadError::Reject(Response::text(status, message))
}

/// A response to be written.
#[derive(Debug)]
pub(super) struct Response {
    pub status: u16,
    /// Headers other than `Content-Length` and `Connection`, which are added when writing.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Writes the body bit by bit after the head (an event stream), instead of `body`; the
    /// connection closes after it.
    pub stream: Option<Streamer>,
}

/// Writes a streamed body to the connection.
pub(super) type StreamBody = dyn FnOnce(&mut dyn Write) -> io::Result<()> + Send;

/// The writer of a streamed body.
pub(super) struct Streamer(pub Box<StreamBody>);

impl std::fmt::Debug for Streamer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streamer")
    }
}

impl Response {
    /// A response with no headers and an empty body.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            stream: None,
        }
    }

    /// A response with a body of the given type.
    pub fn with_body(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            stream: None,
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, text: &str) -> Response {
        Response::with_body(status, "text/plain; charset=utf-8", format!("{text}\n"))
    }

    /// An `application/json` response.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::with_body(status, "application/json", value.to_string())
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// An event stream written by `streamer` as it goes; the connection closes after it.
    pub fn event_stream(
        streamer: impl FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
    ) -> Response {
        Response {
            stream: Some(Streamer(Box::new(streamer))),
            ..Response::with_body(200, "text/event-stream", Vec::new())
        }
        .header("Cache-Control", "no-cache")
    }

    /// Writes the response, with `Content-Length` and `Connection` headers (a streamed one
    /// without a length, then closes).
    pub fn write_to(mut self, out: &mut impl Write, keep_alive: bool) -> io::Result<()> {
        let streamer = self.stream.take();
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("connection")
            {
                continue;
            }
            // Header values come from the server or from test code; never let one split lines.
            let clean = |s: &str| s.replace(['\r', '\n'], " ");
            head.push_str(&format!("{}: {}\r\n", clean(name), clean(value)));
        }
        if let Some(Streamer(streamer)) = streamer {
            head.push_str("Connection: close\r\n\r\n");
            out.write_all(head.as_bytes())?;
            out.flush()?;
            let mut out: &mut dyn Write = out;
            streamer(&mut out)?;
            return out.flush();
        }
        let connection = if keep_alive { "keep-alive" } else { "close" };
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: {connection}\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        out.write_all(&bytes)?;
        out.flush()
    }
}

/// The reason phrase of the status codes this server uses (others get an empty one).
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A fake connection: reads from `input`, collects writes.
    struct Conn {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Conn {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Conn {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn conn(input: &[u8]) -> BufReader<Conn> {
        BufReader::new(Conn {
            input: Cursor::new(input.to_vec()),
            output: Vec::new(),
        })
    }

    fn status_of(result: Result<Request, ReadError>) -> Option<u16> {
        match result {
            Err(ReadError::Reject(response)) => Some(response.status),
            _ => None,
        }
    }

    #[test]
    fn reads_pipelined_requests() {
        let mut c = conn(
            b"POST /token?a=1&b=x%20y HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\
              GET /mcp HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        let first = read_request(&mut c).unwrap();
        assert_eq!(first.method, "POST");
        assert_eq!(first.path, "/token");
        assert_eq!(
            first.query,
            [("a".into(), "1".into()), ("b".into(), "x y".into())]
        );
        assert_eq!(first.header("host"), Some("h"));
        assert_eq!(first.body, b"abc");
        assert!(first.keep_alive);
        let second = read_request(&mut c).unwrap();
        assert_eq!(second.path, "/mcp");
        assert!(!second.keep_alive);
        assert!(matches!(read_request(&mut c), Err(ReadError::Closed)));
    }

    #[test]
    fn answers_expect_continue() {
        let mut c = conn(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx");
        assert_eq!(read_request(&mut c).unwrap().body, b"x");
        assert_eq!(c.get_ref().output, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn rejects_bad_requests() {
        let huge_head = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        let cases: [(&[u8], u16); 8] = [
            (b"GET /\r\n\r\n", 400),
            (b"GET http://x/ HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/2\r\n\r\n", 505),
            (b"GET / HTTP/1.1\r\nbad header\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                501,
            ),
            (huge_head.as_bytes(), 431),
        ];
        for (input, status) in cases {
            assert_eq!(status_of(read_request(&mut conn(input))), Some(status));
        }
        assert!(matches!(
            read_request(&mut conn(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")),
            Err(ReadError::Closed)
        ));
    }

    #[test]
    fn writes_framing_headers() {
        let mut out = Vec::new();
        Response::text(404, "nope")
            .header("X-A", "1\r\nInjected: yes")
            .write_to(&mut out, false)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("X-A: 1  Injected: yes\r\n"));
        assert!(text.contains("Content-Length: 5\r\nConnection: close\r\n\r\nnope\n"));
    }
}
