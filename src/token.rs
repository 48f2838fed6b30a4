//! The token endpoint: redeeming the code (RFC 6749 §4.1.3, RFC 7636 §4.5) and refreshing
//! (RFC 6749 §6), both with the RFC 8707 `resource`, the token response (RFC 6749 §5.1), and
//! the request every grant shares: client authentication and, for sender-constrained tokens,
//! a DPoP proof with one retry on `use_dpop_nonce` (RFC 9449 §5, §8).

use serde::{Deserialize, Serialize};
use url::Url;

use crate::client::ClientRegistration;
use crate::client_auth;
use crate::dpop::{DPOP_HEADER, Dpop};
use crate::error::{Error, ErrorKind, Result, Step};
use crate::http::{self, Body};
use crate::pkce::PkceVerifier;
use crate::secret::Secret;

/// The longest lifetime believed, in seconds (ten years); longer values are capped.
pub const MAX_EXPIRES_IN: u64 = 10 * 365 * 24 * 3600;

/// Tokens issued by the authorization server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenSet {
    /// The access token sent to the MCP server.
    pub access_token: Secret,
    /// `Bearer`, or `DPoP` for a token bound to the session's DPoP key (RFC 9449 §5); other
    /// types are refused.
    pub token_type: String,
    /// The refresh token, when one was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// When the access token expires, in seconds since the Unix epoch; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The granted scope, space-separated, when the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the tokens were received, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<u64>,
}

impl TokenSet {
    /// True for a token bound to a DPoP key: it is sent with the `DPoP` scheme and a proof.
    pub fn is_dpop(&self) -> bool {
        self.token_type.eq_ignore_ascii_case("dpop")
    }

    /// True when the access token is usable at `now` with `margin` seconds to spare.
    pub fn is_fresh(&self, now: u64, margin: u64) -> bool {
        self.expires_at
            .is_none_or(|t| now.saturating_add(margin) < t)
    }

    /// How long before expiry to refresh: `max_margin` seconds, but at most half the token's
    /// lifetime, so that short-lived tokens are used before being replaced.
    pub fn refresh_margin(&self, max_margin: u64) -> u64 {
        match (self.issued_at, self.expires_at) {
            (Some(issued), Some(expires)) => max_margin.min(expires.saturating_sub(issued) / 2),
            _ => max_margin,
        }
    }
}

/// Parses a successful token response received at `now` (seconds since the epoch).
///
/// `expires_in` may be a number or a numeric string; a negative value means already
/// expired, a huge one is capped at [`MAX_EXPIRES_IN`], and an absent or unreadable one leaves
/// the expiry unknown. `token_type` must be `Bearer` or `DPoP` (any case) when present.
///
/// # Errors
/// [`ErrorKind::InvalidResponse`] for a body that is not a token response or a token type
/// other than Bearer and DPoP.
pub fn parse_token_response(body: &[u8], now: u64, step: Step) -> Result<TokenSet> {
    #[derive(Deserialize)]
    struct Response {
        access_token: String,
        token_type: Option<String>,
        refresh_token: Option<String>,
        expires_in: Option<serde_json::Value>,
        scope: Option<String>,
    }
    let r: Response = http::parse_json(body, step, "token response")?;
    check_access_token(&r.access_token, step)?;
    let token_type = match r.token_type {
        None => "Bearer",
        Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer",
        Some(t) if t.eq_ignore_ascii_case("dpop") => "DPoP",
        Some(other) => {
            return Err(Error::new(
                ErrorKind::InvalidResponse,
                step,
                format!(
                    "unsupported token_type {:?}; Bearer and DPoP are supported",
                    crate::error::shorten(&other)
                ),
            ));
        }
    };
    let expires_in = r.expires_in.as_ref().and_then(|v| match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    });
    let expires_at = expires_in
        .filter(|s| s.is_finite())
        .map(|s| now.saturating_add(s.clamp(0.0, MAX_EXPIRES_IN as f64) as u64));
    Ok(TokenSet {
        access_token: Secret::new(r.access_token),
        token_type: token_type.into(),
        refresh_token: r.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
        expires_at,
        scope: r.scope,
        issued_at: Some(now),
    })
}

/// Refuses an access token that cannot be a bearer token: empty, or with anything but visible
/// ASCII (RFC 6750 §2.1's `b64token` and the opaque tokens real servers issue are all visible
/// ASCII). A CR LF inside would let the server inject a header wherever the token is pasted
/// into one (`curl -H "Authorization: Bearer $(mcp-oauth token URL)"`), and an escape sequence
/// would reach the terminal.
pub(crate) fn check_access_token(token: &str, step: Step) -> Result<()> {
    let why = if token.is_empty() {
        "the access_token is empty"
    } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
        "the access_token has characters a bearer token cannot have (visible ASCII only, \
         RFC 6750 §2.1)"
    } else {
        return Ok(());
    };
    Err(Error::new(ErrorKind::InvalidResponse, step, why))
}

/// An endpoint of the authorization server where the client authenticates, as every request
/// there meets it: its URL, the client and how it authenticates (RFC 6749 §2.3: the same at
/// the token, device authorization and revocation endpoints), and the DPoP key the tokens
/// are to be bound to (RFC 9449), when they are. Each request adds its own form: the token
/// requests ([`CodeExchange`], [`RefreshRequest`], [`GrantRequest`](crate::grant::GrantRequest),
/// [`DevicePoll`](crate::device::DevicePoll), [`TokenExchange`](crate::grant::TokenExchange)),
/// [`DeviceRequest`](crate::device::DeviceRequest) and
/// [`RevocationRequest`](crate::revocation::RevocationRequest).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ClientEndpoint<'a> {
    /// The endpoint's URL (the token endpoint of the client's issuer, say).
    pub url: &'a str,
    /// The client and its credentials (an empty `client_id` sends none).
    pub client: &'a ClientRegistration,
    /// The DPoP key the tokens are bound to, when they are.
    pub dpop: Option<&'a Dpop>,
}

impl<'a> ClientEndpoint<'a> {
    /// The endpoint at `url`, for `client`, with no DPoP key.
    pub fn new(url: &'a str, client: &'a ClientRegistration) -> ClientEndpoint<'a> {
        ClientEndpoint {
            url,
            client,
            dpop: None,
        }
    }

    /// With the DPoP key the tokens are to be bound to (`None`: Bearer tokens).
    #[must_use]
    pub fn dpop(self, dpop: Option<&'a Dpop>) -> ClientEndpoint<'a> {
        ClientEndpoint { dpop, ..self }
    }

    /// POSTs `form` here with the client's authentication (RFC 6749 §2.3; the same at the
    /// token and revocation endpoints, RFC 7009 §2.1) and, with a DPoP key, a proof; returns
    /// the 200 response; any other status, or an error object sent with 200, is the server's
    /// error. A `use_dpop_nonce` refusal that brings a new nonce is answered by one more
    /// request with it (RFC 9449 §8). The requests that bind no token (device authorization,
    /// revocation, the token exchange at an identity provider) send no proof: they post with
    /// `.dpop(None)`.
    pub(crate) fn post(
        &self,
        agent: &ureq::Agent,
        form: Vec<(&str, &str)>,
        step: Step,
    ) -> Result<(Url, http::Response)> {
        let url: Url = crate::address::parse_endpoint(self.url, step)?;
        let secret = self.client.client_secret.as_ref().map(Secret::secret);
        let mut nonce_retried = false;
        loop {
            // A fresh assertion and a fresh proof for every request (new `jti`s).
            let credentials = client_auth::credentials(self.client, step)?;
            let mut fields = form.clone();
            fields.extend(credentials.form.iter().map(|(k, v)| (*k, v.as_str())));
            let proof = self
                .dpop
                .map(|d| d.proof("POST", &url, None, step))
                .transpose()?;
            let headers: Vec<(&str, &str)> = credentials
                .authorization
                .as_deref()
                .map(|a| ("authorization", a))
                .into_iter()
                .chain(proof.as_deref().map(|p| (DPOP_HEADER, p)))
                .collect();
            let response = http::send(agent, &url, Body::Form(&fields), &headers, step)?;
            let new_nonce = match (self.dpop, &response.dpop_nonce) {
                (Some(dpop), Some(nonce)) => dpop.remember_nonce(&url, nonce),
                _ => false,
            };
            if response.status == 200 && !http::is_error_object(&response) {
                return Ok((url, response));
            }
            if new_nonce
                && !nonce_retried
                && http::error_code(&response).as_deref() == Some("use_dpop_nonce")
            {
                nonce_retried = true;
                continue;
            }
            let sent: Vec<&str> = fields
                .iter()
                .filter(|(name, _)| SECRET_FIELDS.contains(name))
                .map(|(_, value)| *value)
                .chain(secret)
                .collect();
            return Err(http::status_error(&response, step, &url, &sent));
        }
    }

    /// A token request with the grant's `form`, its response parsed as a token set.
    pub(crate) fn request(
        &self,
        agent: &ureq::Agent,
        form: Vec<(&str, &str)>,
        step: Step,
    ) -> Result<TokenSet> {
        let (url, response) = self.post(agent, form, step)?;
        let tokens = parse_token_response(&response.body, crate::local::unix_now(), step)
            .map_err(|e| e.with_url(&url))?;
        if tokens.is_dpop() && self.dpop.is_none() {
            return Err(Error::new(
                ErrorKind::InvalidResponse,
                step,
                "the server issued a DPoP-bound token although the request carried no DPoP proof",
            )
            .with_url(&url));
        }
        Ok(tokens)
    }
}

/// A code exchange (RFC 6749 §4.1.3 with RFC 7636 §4.5 and RFC 8707 §2.2).
#[derive(Debug)]
#[non_exhaustive]
pub struct CodeExchange<'a> {
    /// The token endpoint of the client's issuer.
    pub endpoint: ClientEndpoint<'a>,
    /// The authorization code from the callback.
    pub code: &'a Secret,
    /// The PKCE verifier of this authorization.
    pub verifier: &'a PkceVerifier,
    /// The redirect URI used on the authorization request.
    pub redirect_uri: &'a str,
    /// The resource indicator sent on the authorization request.
    pub resource: Option<&'a str>,
}

impl<'a> CodeExchange<'a> {
    /// The exchange of `code` at `endpoint`, with the PKCE `verifier` and the `redirect_uri`
    /// of its authorization request, and no resource indicator.
    pub fn new(
        endpoint: ClientEndpoint<'a>,
        code: &'a Secret,
        verifier: &'a PkceVerifier,
        redirect_uri: &'a str,
    ) -> CodeExchange<'a> {
        CodeExchange {
            endpoint,
            code,
            verifier,
            redirect_uri,
            resource: None,
        }
    }

    /// With the resource indicator sent on the authorization request.
    #[must_use]
    pub fn resource(self, resource: Option<&'a str>) -> CodeExchange<'a> {
        CodeExchange { resource, ..self }
    }
}

/// Redeems an authorization code for tokens.
///
/// # Errors
/// Transport failures, the server's OAuth error (`invalid_grant`, `invalid_client`, …) and an
/// invalid response, all in [`Step::CodeExchange`].
pub fn exchange_code(agent: &ureq::Agent, req: &CodeExchange<'_>) -> Result<TokenSet> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", req.code.secret()),
        ("redirect_uri", req.redirect_uri),
        ("code_verifier", req.verifier.secret()),
    ];
    form.extend(req.resource.map(|r| ("resource", r)));
    req.endpoint.request(agent, form, Step::CodeExchange)
}

/// A refresh (RFC 6749 §6 with RFC 8707 §2.2).
#[derive(Debug)]
#[non_exhaustive]
pub struct RefreshRequest<'a> {
    /// The token endpoint of the client's issuer, with the key the grant's tokens are bound
    /// to, if any.
    pub endpoint: ClientEndpoint<'a>,
    /// The refresh token to spend.
    pub refresh_token: &'a Secret,
    /// The resource indicator of the grant.
    pub resource: Option<&'a str>,
}

impl<'a> RefreshRequest<'a> {
    /// A refresh with `refresh_token` at `endpoint`, with no resource indicator.
    pub fn new(endpoint: ClientEndpoint<'a>, refresh_token: &'a Secret) -> RefreshRequest<'a> {
        RefreshRequest {
            endpoint,
            refresh_token,
            resource: None,
        }
    }

    /// With the resource indicator of the grant.
    #[must_use]
    pub fn resource(self, resource: Option<&'a str>) -> RefreshRequest<'a> {
        RefreshRequest { resource, ..self }
    }
}

/// Refreshes an access token. When the server sends no new refresh token, the returned set
/// carries the one spent (RFC 6749 §6: it stays valid).
///
/// # Errors
/// Transport failures, the server's OAuth error (`invalid_grant` means: log in again) and an
/// invalid response, all in [`Step::Refresh`].
pub fn refresh(agent: &ureq::Agent, req: &RefreshRequest<'_>) -> Result<TokenSet> {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", req.refresh_token.secret()),
    ];
    form.extend(req.resource.map(|r| ("resource", r)));
    let mut tokens = req.endpoint.request(agent, form, Step::Refresh)?;
    if tokens.refresh_token.is_none() {
        tokens.refresh_token = Some(req.refresh_token.clone());
    }
    Ok(tokens)
}

/// The form fields of a token request whose values are secrets, kept out of errors even when
/// the server echoes them.
const SECRET_FIELDS: [&str; 9] = [
    "code",
    "device_code",
    "code_verifier",
    "refresh_token",
    "client_secret",
    "client_assertion",
    "assertion",
    "subject_token",
    "token",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<TokenSet> {
        parse_token_response(body.as_bytes(), 1000, Step::CodeExchange)
    }

    #[test]
    fn rfc6749_section5_1_example() {
        let t = parse(
            r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600}"#,
        );
        // The RFC's example uses token_type "example", which this client refuses.
        assert_eq!(t.unwrap_err().kind(), ErrorKind::InvalidResponse);
        let t = parse(
            r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"bearer","expires_in":3600,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","example_parameter":"example_value"}"#,
        )
        .unwrap();
        assert_eq!(t.expires_at, Some(4600));
        assert_eq!(t.refresh_token.unwrap().secret(), "tGzv3JOkF0XG5Qx2TlKWIA");
        assert!(!format!("{:?}", t.access_token).contains("2Yot"));
    }

    #[test]
    fn expires_in_variants() {
        let at = |v: &str| {
            parse(&format!(
                r#"{{"access_token":"a","token_type":"Bearer","expires_in":{v}}}"#
            ))
            .unwrap()
            .expires_at
        };
        assert_eq!(at("\"60\""), Some(1060));
        assert_eq!(at("-5"), Some(1000));
        assert_eq!(at("1e300"), Some(1000 + MAX_EXPIRES_IN));
        assert_eq!(at("12.7"), Some(1012));
        assert_eq!(at("\"soon\""), None);
        assert_eq!(at("null"), None);
        assert_eq!(parse(r#"{"access_token":"a"}"#).unwrap().expires_at, None);
    }

    #[test]
    fn malformed_responses() {
        for body in [
            "",
            "{}",
            "[]",
            r#"{"access_token":""}"#,
            r#"{"access_token":5}"#,
        ] {
            assert_eq!(
                parse(body).unwrap_err().kind(),
                ErrorKind::InvalidResponse,
                "{body}"
            );
        }
    }

    #[test]
    fn short_lifetimes_get_a_short_margin() {
        let t = parse(r#"{"access_token":"a","expires_in":10}"#).unwrap();
        assert_eq!(t.refresh_margin(60), 5);
        let t = parse(r#"{"access_token":"a","expires_in":3600}"#).unwrap();
        assert_eq!(t.refresh_margin(60), 60);
        let t = parse(r#"{"access_token":"a"}"#).unwrap();
        assert_eq!(t.refresh_margin(60), 60);
    }

    #[test]
    fn freshness_margin() {
        let t = parse(r#"{"access_token":"a","expires_in":100}"#).unwrap();
        assert!(t.is_fresh(1000, 60));
        assert!(!t.is_fresh(1040, 60));
        let forever = parse(r#"{"access_token":"a"}"#).unwrap();
        assert!(forever.is_fresh(u64::MAX, 60));
    }
}
