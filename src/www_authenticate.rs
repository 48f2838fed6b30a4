//! Parsing `WWW-Authenticate` challenges (RFC 9110 §11.6.1, RFC 6750 §3, RFC 9728 §5.1).
//!
//! A protected MCP server answers 401 with a Bearer challenge that may carry `resource_metadata`
//! (where its protected resource metadata lives), `scope` (what the request needs) and `error`
//! (`invalid_token`, `insufficient_scope`). This module is pure: no I/O, fuzzed.

/// One authentication challenge: a scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Challenge {
    /// The auth scheme as sent (`Bearer`, `Basic`, …); compare case-insensitively.
    pub scheme: String,
    /// The `name=value` parameters, names lowercased, quoted values unescaped.
    pub params: Vec<(String, String)>,
    /// A token68 value, when the challenge carried one instead of parameters.
    pub token68: Option<String>,
}

impl Challenge {
    /// The value of parameter `name` (case-insensitive), the first if repeated.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True for the `Bearer` scheme (case-insensitive).
    pub fn is_bearer(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("bearer")
    }

    /// True for a scheme of OAuth access tokens: `Bearer` (RFC 6750) or `DPoP` (RFC 9449 §7.1).
    pub fn is_token_scheme(&self) -> bool {
        self.is_bearer() || self.scheme.eq_ignore_ascii_case("dpop")
    }

    /// RFC 9728 §5.1 `resource_metadata`: the URL of the protected resource metadata.
    pub fn resource_metadata(&self) -> Option<&str> {
        self.param("resource_metadata")
    }

    /// RFC 6750 §3 `scope`: the scopes the resource asks for, space-separated.
    pub fn scope(&self) -> Option<&str> {
        self.param("scope")
    }

    /// RFC 6750 §3.1 `error`: `invalid_request`, `invalid_token` or `insufficient_scope`.
    pub fn error(&self) -> Option<&str> {
        self.param("error")
    }
}

/// The longest header value parsed; longer input yields no challenges.
pub const MAX_HEADER_LEN: usize = 16 * 1024;

/// Parses a `WWW-Authenticate` header value into its challenges, leniently: malformed parts are
/// skipped, never an error or a panic.
///
/// # Example
/// ```
/// use mcp_oauth_client::www_authenticate::parse_www_authenticate;
/// let c = parse_www_authenticate(
///     r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource", scope="files:read""#,
/// );
/// assert!(c[0].is_bearer());
/// assert_eq!(c[0].scope(), Some("files:read"));
/// ```
pub fn parse_www_authenticate(header: &str) -> Vec<Challenge> {
    if header.len() > MAX_HEADER_LEN {
        return Vec::new();
    }
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip_ws_and_commas();
        if p.at_end() {
            break;
        }
        let Some(name) = p.token() else {
            // Not a token where one was expected: skip to the next comma.
            p.skip_past_comma();
            continue;
        };
        p.skip_ws();
        // After a token: either `=` (a parameter of the current challenge) or a new scheme.
        if p.peek() == Some(b'=') && !out.is_empty() && !p.is_token68_tail() {
            p.i += 1;
            p.skip_ws();
            let value = p.value();
            if let (Some(last), Some(v)) = (out.last_mut(), value) {
                last.params.push((name.to_ascii_lowercase(), v));
            }
            continue;
        }
        let mut challenge = Challenge {
            scheme: name,
            params: Vec::new(),
            token68: None,
        };
        // A token68 right after the scheme (e.g. `Basic abc==`), not followed by `=value`.
        let save = p.i;
        if let Some(t) = p.token68() {
            p.skip_ws();
            if p.at_end() || p.peek() == Some(b',') {
                challenge.token68 = Some(t);
            } else {
                p.i = save;
            }
        }
        out.push(challenge);
    }
    out
}

/// The first Bearer challenge of a header value, if any.
pub fn bearer_challenge(header: &str) -> Option<Challenge> {
    parse_www_authenticate(header)
        .into_iter()
        .find(Challenge::is_bearer)
}

/// The first Bearer or DPoP challenge of a header value, if any: what a resource server that
/// binds tokens to DPoP keys sends in place of a Bearer one (RFC 9449 §7.1).
pub fn token_challenge(header: &str) -> Option<Challenge> {
    parse_www_authenticate(header)
        .into_iter()
        .find(Challenge::is_token_scheme)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn skip_past_comma(&mut self) {
        while let Some(c) = self.peek() {
            self.i += 1;
            if c == b',' {
                break;
            }
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    /// True when the `=` at the cursor is the padding of a token68, i.e. it is followed only
    /// by more `=`, then whitespace, a comma or the end.
    fn is_token68_tail(&self) -> bool {
        let mut j = self.i;
        while self.s.get(j) == Some(&b'=') {
            j += 1;
        }
        j > self.i + 1 && matches!(self.s.get(j), None | Some(b',' | b' ' | b'\t'))
    }
    fn token68(&mut self) -> Option<String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"-._~+/".contains(&c))
        {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        while self.peek() == Some(b'=') {
            self.i += 1;
        }
        Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn value(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return self.token();
        }
        self.i += 1;
        let mut v = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => return Some(String::from_utf8_lossy(&v).into_owned()),
                b'\\' => {
                    if let Some(n) = self.peek() {
                        v.push(n);
                        self.i += 1;
                    }
                }
                _ => v.push(c),
            }
        }
        None // unterminated quoted string
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6750_section3_examples() {
        // RFC 6750 §3, first example.
        let c = parse_www_authenticate(r#"Bearer realm="example""#);
        assert_eq!(c.len(), 1);
        assert!(c[0].is_bearer());
        assert_eq!(c[0].param("realm"), Some("example"));

        // RFC 6750 §3, second example (an expired token).
        let c = parse_www_authenticate(
            "Bearer realm=\"example\",\n                       error=\"invalid_token\",\n                       error_description=\"The access token expired\""
                .replace('\n', " ")
                .as_str(),
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].error(), Some("invalid_token"));
        assert_eq!(
            c[0].param("error_description"),
            Some("The access token expired")
        );
    }

    #[test]
    fn rfc9728_section5_1_example() {
        let c = parse_www_authenticate(
            r#"Bearer resource_metadata="https://resource.example.com/.well-known/oauth-protected-resource""#,
        );
        assert_eq!(
            c[0].resource_metadata(),
            Some("https://resource.example.com/.well-known/oauth-protected-resource")
        );
        // RFC 9728 §5.2 with an error.
        let c = parse_www_authenticate(
            r#"Bearer error="invalid_token", error_description="The access token expired", resource_metadata="https://resource.example.com/.well-known/oauth-protected-resource""#,
        );
        assert_eq!(c[0].error(), Some("invalid_token"));
        assert!(c[0].resource_metadata().is_some());
    }

    #[test]
    fn several_challenges_and_token68() {
        let c = parse_www_authenticate(
            r#"Basic realm="x", Bearer scope="a b", error=insufficient_scope, Negotiate abc=="#,
        );
        let schemes: Vec<_> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Basic", "Bearer", "Negotiate"]);
        assert_eq!(c[1].scope(), Some("a b"));
        assert_eq!(c[1].error(), Some("insufficient_scope"));
        assert_eq!(c[2].token68.as_deref(), Some("abc=="));
        assert_eq!(
            bearer_challenge(r#"Basic realm="x", bearer scope="s""#)
                .unwrap()
                .scope(),
            Some("s")
        );
    }

    #[test]
    fn escapes_case_and_junk() {
        let c = parse_www_authenticate(r#"BEARER Scope="a\"b", =junk, realm="unterminated"#);
        assert!(c[0].is_bearer());
        assert_eq!(c[0].scope(), Some("a\"b"));
        assert_eq!(c[0].param("realm"), None);
        assert!(parse_www_authenticate("").is_empty());
        assert!(parse_www_authenticate(",,, ,").is_empty());
        assert!(parse_www_authenticate(&"a".repeat(MAX_HEADER_LEN + 1)).is_empty());
    }
}
