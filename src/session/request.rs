//! Requests to the MCP server: the access token on every request to its origin (RFC 6750
//! §2.1; a DPoP-bound one with the `DPoP` scheme and a fresh proof, RFC 9449 §7.1), and the
//! flow a 401 or a 403 `insufficient_scope` starts (MCP authorization, "Scope challenge
//! handling"; RFC 6750 §3.1). A resource server's `use_dpop_nonce` 401 is answered by sending
//! the request once more with its nonce (RFC 9449 §9), not by a new login.

use std::sync::{Arc, Weak};
use std::time::Duration;

use ureq::http::{HeaderValue, Response, header};
use ureq::middleware::{Middleware, MiddlewareNext};
use ureq::{Body, SendBody};

use super::binding::Offered;
use super::cache::Presented;
use super::context::LoginContext;
use super::flow::Inner;
use crate::address::{AddressRules, GuardedResolver};
use crate::dpop::{DPOP_HEADER, NONCE_HEADER};
use crate::error::{Error, ErrorKind, OAuthErrorCode, Result, Step};
use crate::http::OAuthExchange;
use crate::secret::Secret;
use crate::www_authenticate::{Challenge, parse_www_authenticate};

/// How long the MCP server may take to start answering a request (the body, a stream
/// perhaps, is the caller's to read).
pub const MCP_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// The most authorization flows one request may start (a 401 login plus step-ups).
pub const MAX_AUTHORIZATIONS: usize = 3;

/// Adds `Authorization` (and for a DPoP-bound token a proof) to requests for the MCP server's
/// origin, and keeps the DPoP nonces its responses bring. It holds the session weakly: the
/// session owns the agent, and the agent must not keep the session alive.
struct Bearer {
    inner: Weak<Inner>,
}

impl Middleware for Bearer {
    fn handle(
        &self,
        mut request: ureq::http::Request<SendBody>,
        next: MiddlewareNext,
    ) -> std::result::Result<Response<Body>, ureq::Error> {
        // OAuth exchanges of the flow itself go through the same agent (one connection pool
        // per origin) and never carry the bearer.
        let oauth = request.extensions().get::<OAuthExchange>().is_some();
        let inner = self.inner.upgrade();
        let mut bound = None;
        if let Some(inner) = inner.filter(|i| !oauth && same_origin(request.uri(), i.server_url()))
            && !request.headers().contains_key(header::AUTHORIZATION)
        {
            let io = |e: Error| ureq::Error::Io(std::io::Error::other(e));
            if let Some(presented) = inner.cached_token().map_err(io)? {
                let url = url::Url::parse(&request.uri().to_string())
                    .map_err(|e| ureq::Error::Io(std::io::Error::other(e)))?;
                let headers = authorization_headers(&presented, request.method().as_str(), &url)
                    .map_err(io)?;
                for (name, value) in headers {
                    let mut value = HeaderValue::from_str(value.secret())
                        .map_err(|e| ureq::Error::Io(std::io::Error::other(e)))?;
                    value.set_sensitive(true);
                    request.headers_mut().insert(name, value);
                }
                bound = presented.dpop.map(|d| (d, url));
            }
        }
        let response = next.handle(request)?;
        // A resource server may give a new nonce with any response (RFC 9449 §9).
        if let Some((dpop, url)) = bound
            && let Some(nonce) = response
                .headers()
                .get(NONCE_HEADER)
                .and_then(|v| v.to_str().ok())
        {
            dpop.remember_nonce(&url, nonce);
        }
        Ok(response)
    }
}

/// The headers that present `presented` on a `method` request to `url`: `Authorization:
/// Bearer`, or `Authorization: DPoP` with a fresh proof carrying the token's hash.
pub(crate) fn authorization_headers(
    presented: &Presented,
    method: &str,
    url: &url::Url,
) -> Result<Vec<(&'static str, Secret)>> {
    let token = presented.token.secret();
    Ok(match &presented.dpop {
        None => vec![("authorization", Secret::new(format!("Bearer {token}")))],
        Some(dpop) => vec![
            ("authorization", Secret::new(format!("DPoP {token}"))),
            (
                DPOP_HEADER,
                Secret::new(dpop.proof(method, url, Some(token), Step::Request)?),
            ),
        ],
    })
}

/// True when `uri` has the scheme, host and port of `server`.
fn same_origin(uri: &ureq::http::Uri, server: &url::Url) -> bool {
    url::Url::parse(&uri.to_string()).is_ok_and(|u| u.origin() == server.origin())
}

/// The session's agent: the bearer middleware, statuses as responses, no `Authorization`
/// header carried across redirects, bounded connects and waits for response headers. OAuth
/// exchanges use it too (their own rules are set per request), so a login against a server
/// that is its own authorization server keeps one connection.
pub(crate) fn bearer_agent(
    inner: Weak<Inner>,
    rules: Arc<AddressRules>,
    tls: ureq::tls::TlsConfig,
) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
        .timeout_connect(Some(crate::http::CONNECT_TIMEOUT))
        .timeout_recv_response(Some(MCP_RESPONSE_TIMEOUT))
        .user_agent(crate::http::USER_AGENT)
        // As many idle connections kept as a bridge has requests in flight: with ureq's
        // default of 3 per host, about half of a bridge's pipelined requests opened a new
        // connection (a TCP and a TLS handshake each).
        .max_idle_connections_per_host(crate::bridge::MAX_IN_FLIGHT)
        .max_idle_connections(crate::bridge::MAX_IN_FLIGHT + 16)
        .middleware(Bearer { inner })
        .build();
    guarded_agent(config, rules)
}

/// An agent with `config` whose connections go through the session's address rules: host
/// names are checked on what they resolve to, right before each connection.
pub(crate) fn guarded_agent(config: ureq::config::Config, rules: Arc<AddressRules>) -> ureq::Agent {
    ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        GuardedResolver::new(rules),
    )
}

/// The challenges of a response's `WWW-Authenticate` headers.
fn challenges_of(response: &Response<Body>) -> Vec<Challenge> {
    response
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_www_authenticate)
        .collect()
}

/// True for a resource server's request for a DPoP nonce: a `use_dpop_nonce` DPoP challenge
/// with the nonce in `DPoP-Nonce` (RFC 9449 §9), which the middleware has remembered.
fn asks_for_nonce(response: &Response<Body>, challenges: &[Challenge]) -> bool {
    response.status().as_u16() == 401
        && response.headers().contains_key(NONCE_HEADER)
        && crate::dpop::is_nonce_challenge(challenges)
}

/// Lets go of a 401 or 403 before the flow runs. A body declared empty is read (at once: there
/// is nothing to wait for), which returns the connection to the pool; any other body is not
/// read at all and its connection is closed. Reading it could take as long as the server
/// likes: the bearer agent bounds the wait for response headers, not for bodies, which may be
/// long MCP streams.
fn drain(mut response: Response<Body>) {
    let empty = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0");
    if empty {
        let _ = response.body_mut().with_config().limit(0).read_to_vec();
    }
}

/// See [`Session::send`](crate::Session::send): `agent` is the session's MCP agent.
pub(crate) fn send(
    inner: &Inner,
    agent: &ureq::Agent,
    mut build: impl FnMut(&ureq::Agent) -> std::result::Result<Response<Body>, ureq::Error>,
) -> Result<Response<Body>> {
    let mut flows = 0;
    let mut fresh_token = false;
    let mut nonce_retried = false;
    loop {
        let response = build(agent).map_err(|e| {
            Error::from_agent(e, Step::Request, "the MCP request failed")
                .with_url(inner.server_url())
        })?;
        let status = response.status().as_u16();
        let challenges = challenges_of(&response);
        if asks_for_nonce(&response, &challenges) {
            drain(response);
            if nonce_retried {
                // The nonce it gave was refused too: another login would not help.
                return Err(Error::new(
                    ErrorKind::OAuth,
                    Step::Request,
                    "the MCP server asks for a DPoP nonce again after a request with its nonce",
                )
                .with_url(inner.server_url())
                .with_oauth_code("use_dpop_nonce"));
            }
            log::info!("the MCP server asks for a DPoP nonce; sending the request again with it");
            nonce_retried = true;
            continue;
        }
        let offered = Offered::of(&challenges);
        let challenge = challenges.into_iter().find(Challenge::is_token_scheme);
        let insufficient_scope = status == 403
            && challenge
                .as_ref()
                .and_then(Challenge::error)
                .map(OAuthErrorCode::parse)
                == Some(OAuthErrorCode::InsufficientScope);
        if status != 401 && !insufficient_scope {
            return Ok(response);
        }
        let code = if insufficient_scope {
            "insufficient_scope"
        } else {
            "invalid_token"
        };
        // A bound token refused by a server that takes Bearer tokens only: one more login.
        let fallback = status == 401 && inner.fall_back_to_bearer(offered);
        if flows >= MAX_AUTHORIZATIONS || (status == 401 && fresh_token && !fallback) {
            drain(response);
            let why = if status == 401 {
                "the MCP server rejects a newly obtained token".to_owned()
            } else {
                format!("the MCP server still wants more scope after {flows} authorizations")
            };
            return Err(Error::new(ErrorKind::OAuth, Step::Request, why)
                .with_url(inner.server_url())
                .with_oauth_code(code));
        }
        drain(response);
        flows += 1;
        let ctx = if insufficient_scope {
            log::info!("the MCP server asks for more scope; authorizing again");
            LoginContext::step_up(challenge.as_ref())
        } else {
            if !fallback {
                log::info!("the MCP server answered 401; authorizing");
            }
            LoginContext::unauthorized(challenge.as_ref())
        }
        .offering(offered);
        inner.reauthorize(&ctx)?;
        fresh_token = true;
        // A new token is a new attempt: its first nonce challenge gets its retry.
        nonce_retried = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let server = url::Url::parse("https://mcp.example.com/mcp").unwrap();
        let same = |u: &str| same_origin(&u.parse().unwrap(), &server);
        assert!(same("https://mcp.example.com/other"));
        assert!(same("https://mcp.example.com:443/mcp"));
        assert!(!same("http://mcp.example.com/mcp"));
        assert!(!same("https://mcp.example.com:8443/mcp"));
        assert!(!same("https://evil.example.com/mcp"));
    }
}
