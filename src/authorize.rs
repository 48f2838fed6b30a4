//! The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707 §2, OAuth 2.1 §4.1.1):
//! the URL the user's browser is sent to.

use url::Url;

use crate::error::{Error, ErrorKind, Result, Step};
use crate::scope::Scopes;

/// Everything the authorization URL carries. `Debug` hides the `state`.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct AuthorizationRequest<'a> {
    /// The authorization server's `authorization_endpoint`.
    pub authorization_endpoint: &'a str,
    /// The client identifier.
    pub client_id: &'a str,
    /// The loopback redirect URI, exactly as registered.
    pub redirect_uri: &'a str,
    /// Scopes to request; `None` omits the parameter.
    pub scope: Option<&'a Scopes>,
    /// The opaque `state` value, echoed back by the server (RFC 6749 §10.12).
    pub state: &'a str,
    /// The PKCE `S256` code challenge.
    pub code_challenge: &'a str,
    /// The RFC 8707 `resource` indicator: the MCP server's canonical URI.
    pub resource: Option<&'a str>,
    /// More parameters a provider wants (`access_type=offline`, say), after the others;
    /// none may be one of the request's own (see [`check_extra_param`]).
    pub extra: &'a [(String, String)],
}

impl<'a> AuthorizationRequest<'a> {
    /// The request at `authorization_endpoint` for `client_id` coming back to `redirect_uri`,
    /// with its `state` and PKCE `code_challenge`; no scope, no resource indicator, nothing
    /// more.
    pub fn new(
        authorization_endpoint: &'a str,
        client_id: &'a str,
        redirect_uri: &'a str,
        state: &'a str,
        code_challenge: &'a str,
    ) -> AuthorizationRequest<'a> {
        AuthorizationRequest {
            authorization_endpoint,
            client_id,
            redirect_uri,
            scope: None,
            state,
            code_challenge,
            resource: None,
            extra: &[],
        }
    }

    /// With the scopes to request.
    #[must_use]
    pub fn scope(self, scope: Option<&'a Scopes>) -> AuthorizationRequest<'a> {
        AuthorizationRequest { scope, ..self }
    }

    /// With the RFC 8707 `resource` indicator.
    #[must_use]
    pub fn resource(self, resource: Option<&'a str>) -> AuthorizationRequest<'a> {
        AuthorizationRequest { resource, ..self }
    }

    /// With more parameters a provider wants (see [`check_extra_param`]).
    #[must_use]
    pub fn extra(self, extra: &'a [(String, String)]) -> AuthorizationRequest<'a> {
        AuthorizationRequest { extra, ..self }
    }
}

impl std::fmt::Debug for AuthorizationRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("authorization_endpoint", &self.authorization_endpoint)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scope", &self.scope)
            .field("state", &"[redacted]")
            .field("code_challenge", &self.code_challenge)
            .field("resource", &self.resource)
            .field("extra", &self.extra)
            .finish()
    }
}

/// The parameters [`build_authorization_url`] sets; an endpoint query may not set them too.
const REQUEST_PARAMS: [&str; 9] = [
    "prompt",
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
];

/// Builds the authorization URL, keeping any query the endpoint already has (RFC 6749 §3.1).
///
/// # Errors
/// [`ErrorKind::InvalidResponse`] for an unparseable endpoint, [`ErrorKind::Refused`] for one
/// that is neither HTTPS nor loopback HTTP or whose query already sets a parameter of the
/// request.
///
/// ```
/// use mcp_oauth_client::authorize::{build_authorization_url, AuthorizationRequest};
/// let request = AuthorizationRequest::new(
///     "https://as.example.com/authorize",
///     "abc",
///     "http://127.0.0.1:8765/callback",
///     "xyz",
///     "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
/// )
/// .resource(Some("https://mcp.example.com/mcp"));
/// let url = build_authorization_url(&request).unwrap();
/// assert!(url.as_str().starts_with("https://as.example.com/authorize?response_type=code&client_id=abc"));
/// ```
pub fn build_authorization_url(req: &AuthorizationRequest<'_>) -> Result<Url> {
    let step = Step::Authorization;
    let mut url = crate::address::parse_endpoint(req.authorization_endpoint, step)?;
    crate::address::require_secure(&url, step)?;
    if url.fragment().is_some() {
        return Err(Error::new(
            ErrorKind::InvalidResponse,
            step,
            "the authorization endpoint has a fragment",
        ));
    }
    // RFC 6749 §3.1: parameters must not repeat. A query in the metadata that already sets
    // one of ours (say `redirect_uri`) would be read first by many servers: refuse it.
    if let Some((name, _)) = url
        .query_pairs()
        .find(|(name, _)| REQUEST_PARAMS.contains(&name.as_ref()))
    {
        return Err(Error::new(
            ErrorKind::Refused,
            step,
            format!(
                "the authorization endpoint's query already sets {:?}",
                crate::error::shorten(&name)
            ),
        )
        .with_url(&url));
    }
    for (name, _) in req.extra {
        check_extra_param(name, step)?;
        let repeated = req.extra.iter().filter(|(k, _)| k == name).count() > 1;
        if repeated || url.query_pairs().any(|(k, _)| k == name.as_str()) {
            return Err(Error::new(
                ErrorKind::Config,
                step,
                format!(
                    "{:?} would be in the authorization request twice",
                    crate::error::shorten(name)
                ),
            ));
        }
    }
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", req.client_id)
            .append_pair("redirect_uri", req.redirect_uri);
        if let Some(scope) = req.scope.filter(|s| !s.is_empty()) {
            q.append_pair("scope", &scope.to_string());
        }
        q.append_pair("state", req.state)
            .append_pair("code_challenge", req.code_challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(resource) = req.resource {
            q.append_pair("resource", resource);
        }
        // OpenID Connect Core §11: `offline_access` is ignored unless consent is prompted for,
        // and without it no refresh token comes back. Plain OAuth servers ignore `prompt`
        // (RFC 6749 §3.1: unknown parameters are ignored). A `prompt` of the caller's wins.
        let own_prompt = req.extra.iter().any(|(k, _)| k == "prompt");
        if req.scope.is_some_and(|s| s.contains("offline_access")) && !own_prompt {
            q.append_pair("prompt", "consent");
        }
        for (name, value) in req.extra {
            q.append_pair(name, value);
        }
    }
    Ok(url)
}

/// What an authorization endpoint makes of a client, asked before a browser is sent there
/// ([`check_client`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientCheck {
    /// The endpoint took the request: a login page, or a redirect.
    Known,
    /// The endpoint refused it without redirecting back (RFC 6749 §4.1.2.1: an unknown
    /// `client_id` or a redirect URI not registered for it is shown to the user, never
    /// redirected): a browser sent there would wait for nothing. The status it answered.
    Unknown(u16),
    /// No telling: the server failed, or limits the rate.
    Unsure,
}

/// Reads what an authorization endpoint answered to a request for the client whose redirect
/// URI is `redirect_uri`: a 2xx page or a redirect elsewhere takes the client; a 4xx (but
/// 429), or a redirect back to `redirect_uri` with `error=invalid_client` or
/// `unauthorized_client`, refuses it. Pure.
///
/// ```
/// use mcp_oauth_client::authorize::{ClientCheck, read_client_check};
/// let back = "http://127.0.0.1:3118/callback";
/// assert_eq!(read_client_check(302, Some("https://as.example.com/login"), back), ClientCheck::Known);
/// assert_eq!(read_client_check(400, None, back), ClientCheck::Unknown(400));
/// assert_eq!(read_client_check(503, None, back), ClientCheck::Unsure);
/// ```
pub fn read_client_check(status: u16, location: Option<&str>, redirect_uri: &str) -> ClientCheck {
    match status {
        200..=299 => ClientCheck::Known,
        300..=399 => {
            let refused = location
                .and_then(|l| Url::parse(l).ok())
                .filter(|l| {
                    let mut base = l.clone();
                    base.set_query(None);
                    base.set_fragment(None);
                    base.as_str() == redirect_uri
                })
                .is_some_and(|l| {
                    l.query_pairs().any(|(k, v)| {
                        k == "error"
                            && matches!(v.as_ref(), "invalid_client" | "unauthorized_client")
                    })
                });
            if refused {
                ClientCheck::Unknown(status)
            } else {
                ClientCheck::Known
            }
        }
        429 => ClientCheck::Unsure,
        400..=499 => ClientCheck::Unknown(status),
        _ => ClientCheck::Unsure,
    }
}

/// Asks the authorization endpoint whether it knows `request`'s client, with one GET of the
/// authorization URL whose redirect is not followed (as FastMCP's client does before it opens
/// a browser for a cached client). `request` must carry a `state` and a code challenge made
/// for this look alone: a redirect back may carry a code, which is never redeemed. A failure
/// to ask is [`ClientCheck::Unsure`].
pub fn check_client(agent: &ureq::Agent, request: &AuthorizationRequest<'_>) -> ClientCheck {
    let step = Step::Authorization;
    let answer =
        build_authorization_url(request).and_then(|url| crate::http::status_of(agent, &url, step));
    match answer {
        Ok((status, location)) => {
            read_client_check(status, location.as_deref(), request.redirect_uri)
        }
        Err(e) => {
            log::debug!("checking the cached client: {e:#}");
            ClientCheck::Unsure
        }
    }
}

/// Refuses an extra authorization request parameter that the request sets itself (a second
/// `state` or `redirect_uri` would be read first by some servers), one that replaces or
/// redirects the request's own (`request`, `request_uri`, `response_mode`), or a name that is
/// empty or not visible ASCII. `prompt` is allowed: it replaces the one the request would add.
///
/// # Errors
/// [`ErrorKind::Config`] naming the parameter.
pub fn check_extra_param(name: &str, step: Step) -> Result<()> {
    let own = REQUEST_PARAMS.contains(&name) && name != "prompt";
    let odd = name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic());
    // `request` and `request_uri` (RFC 9101) replace the request's parameters with others,
    // and `response_mode` changes how the answer comes back (a form post, a fragment), which
    // the loopback listener does not read.
    let replaces = ["request", "request_uri", "response_mode"].contains(&name);
    if own || odd || replaces || name == "code_verifier" || name == "iss" {
        return Err(Error::new(
            ErrorKind::Config,
            step,
            format!(
                "{:?} cannot be an extra authorization parameter: the client sets it, or it \
                 is not a plain name",
                crate::error::shorten(name)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An authorization request with test values, to `endpoint` with `scope`.
    fn request<'a>(endpoint: &'a str, scope: Option<&'a Scopes>) -> AuthorizationRequest<'a> {
        AuthorizationRequest {
            authorization_endpoint: endpoint,
            client_id: "c",
            redirect_uri: "http://127.0.0.1:1/callback",
            scope,
            state: "s",
            code_challenge: "ch",
            resource: None,
            extra: &[],
        }
    }

    #[test]
    fn carries_every_parameter_and_keeps_existing_query() {
        let scope = Scopes::parse("a b");
        let url = build_authorization_url(&AuthorizationRequest {
            authorization_endpoint: "https://as.example.com/authorize?tenant=t1",
            client_id: "c 1",
            redirect_uri: "http://127.0.0.1:1/callback",
            scope: Some(&scope),
            state: "s",
            code_challenge: "ch",
            resource: Some("https://mcp.example.com/mcp"),
            extra: &[],
        })
        .unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("tenant"), Some("t1"));
        assert_eq!(get("client_id"), Some("c 1"));
        assert_eq!(get("scope"), Some("a b"));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        assert_eq!(get("resource"), Some("https://mcp.example.com/mcp"));
        assert_eq!(get("redirect_uri"), Some("http://127.0.0.1:1/callback"));
    }

    #[test]
    fn refuses_an_endpoint_query_that_repeats_a_parameter() {
        for endpoint in [
            "https://as.example.com/authorize?redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
            "https://as.example.com/authorize?tenant=t&state=fixed",
            "https://as.example.com/authorize?code_challenge_method=plain",
        ] {
            let e = build_authorization_url(&request(endpoint, None)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Refused, "{endpoint}");
        }
    }

    #[test]
    fn offline_access_comes_with_prompt_consent() {
        let with = Scopes::parse("a offline_access");
        let without = Scopes::parse("a");
        let prompt = |scope: &Scopes| {
            let url =
                build_authorization_url(&request("https://as.example.com/authorize", Some(scope)))
                    .unwrap();
            url.query_pairs()
                .find(|(k, _)| k == "prompt")
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(prompt(&with).as_deref(), Some("consent"));
        assert_eq!(prompt(&without), None);
    }

    #[test]
    fn extra_parameters_come_last_and_may_not_repeat_the_requests_own() {
        let offline = Scopes::parse("a offline_access");
        let extra = [
            ("access_type".to_owned(), "offline".to_owned()),
            ("prompt".to_owned(), "select_account".to_owned()),
        ];
        let url = build_authorization_url(&AuthorizationRequest {
            extra: &extra,
            ..request("https://as.example.com/authorize", Some(&offline))
        })
        .unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs[pairs.len() - 2..], extra, "last, in order");
        assert_eq!(pairs.iter().filter(|(k, _)| k == "prompt").count(), 1);
        // Nor one the endpoint's query sets.
        let tenant = [("tenant".to_owned(), "t2".to_owned())];
        let e = build_authorization_url(&AuthorizationRequest {
            extra: &tenant,
            ..request("https://as.example.com/authorize?tenant=t1", None)
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        for name in [
            "state",
            "redirect_uri",
            "client_id",
            "resource",
            "iss",
            "",
            "a b",
        ] {
            let bad = [(name.to_owned(), "x".to_owned())];
            let e = build_authorization_url(&AuthorizationRequest {
                extra: &bad,
                ..request("https://as.example.com/authorize", None)
            })
            .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{name:?}");
        }
    }

    #[test]
    fn refuses_insecure_endpoint() {
        let e =
            build_authorization_url(&request("http://as.example.com/authorize", None)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
    }
}
