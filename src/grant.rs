//! Grants without a browser, for programs that run without a person: client credentials
//! (RFC 6749 §4.4; MCP extension "OAuth client credentials"), the JWT bearer grant (RFC 7523
//! §2.1) with a workload identity token, and token exchange (RFC 8693) of a person's ID token
//! for an identity assertion authorization grant (ID-JAG; MCP extension "Enterprise-managed
//! authorization"), which the JWT bearer grant then redeems.
//!
//! Each is one request to a token endpoint with the client's authentication and, when the
//! tokens are to be sender-constrained, a DPoP proof: see [`crate::token`].

use std::path::PathBuf;

use serde::Deserialize;

use crate::client::ClientRegistration;
use crate::error::{Error, ErrorKind, Result, Step};
use crate::scope::Scopes;
use crate::secret::Secret;
use crate::token::{ClientEndpoint, TokenSet};

/// The JWT bearer grant type (RFC 7523 §2.1).
/// The JWT bearer grant's type (RFC 7523 §2.1).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The token exchange grant type (RFC 8693 §2.1).
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type of an OpenID Connect ID token (RFC 8693 §3).
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
/// The token type of an identity assertion authorization grant (ID-JAG).
pub const ID_JAG_TYPE: &str = "urn:ietf:params:oauth:token-type:id-jag";

/// How a session obtains tokens when it has none to use or refresh.
#[non_exhaustive]
#[derive(Debug, Clone, Default)]
pub enum Grant {
    /// The browser login: authorization code with PKCE (the default).
    #[default]
    AuthorizationCode,
    /// The device login (RFC 8628): the person enters a code on another device; for machines
    /// with no browser and nothing to paste into. Needs a device hook
    /// ([`SessionBuilder::device_login`](crate::SessionBuilder::device_login)).
    DeviceCode,
    /// Client credentials: the configured client (`client_id` with its secret, or its private
    /// key for `private_key_jwt`) obtains tokens for itself.
    ClientCredentials,
    /// The JWT bearer grant with an assertion: a workload identity token (a Kubernetes
    /// service account token, a cloud instance identity, a CI job's OIDC token).
    JwtBearer(Assertion),
    /// Enterprise-managed authorization: the person's ID token from the enterprise identity
    /// provider is exchanged there for an ID-JAG, which the JWT bearer grant redeems at the
    /// MCP server's authorization server.
    IdentityAssertion(IdentityAssertion),
}

impl Grant {
    /// True for the grants that run without a person (the device login needs one, on
    /// another device).
    pub fn is_headless(&self) -> bool {
        !self.is_personal()
    }

    /// True for the grants that log a person in: the browser and the device logins. Their
    /// tokens are the person's, whichever of the two obtained them.
    pub fn is_personal(&self) -> bool {
        matches!(self, Grant::AuthorizationCode | Grant::DeviceCode)
    }

    /// Its name in the cache (`StoredTokens::grant`): `authorization_code`, `device_code`,
    /// `client_credentials`, `jwt_bearer` or `identity_assertion`.
    pub fn name(&self) -> &'static str {
        match self {
            Grant::AuthorizationCode => "authorization_code",
            Grant::DeviceCode => "device_code",
            Grant::ClientCredentials => "client_credentials",
            Grant::JwtBearer(_) => "jwt_bearer",
            Grant::IdentityAssertion(_) => "identity_assertion",
        }
    }
}

/// Where an assertion comes from. A file is read again each time the grant runs, since
/// workload identity tokens are rotated in place.
#[non_exhaustive]
#[derive(Clone)]
pub enum Assertion {
    /// The token itself.
    Token(Secret),
    /// A file holding it (surrounding whitespace ignored).
    File(PathBuf),
}

impl std::fmt::Debug for Assertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Assertion::Token(_) => f.write_str("Assertion::Token([redacted])"),
            Assertion::File(p) => f.debug_tuple("Assertion::File").field(p).finish(),
        }
    }
}

impl Assertion {
    /// The assertion now.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the file cannot be read or holds nothing.
    pub fn read(&self, step: Step) -> Result<Secret> {
        match self {
            Assertion::Token(t) => Ok(t.clone()),
            Assertion::File(path) => {
                let text = crate::local::read_user_file(path, "the assertion", step)?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(Error::new(
                        ErrorKind::Config,
                        step,
                        format!("{} holds no assertion", path.display()),
                    ));
                }
                Ok(Secret::new(token))
            }
        }
    }
}

/// The enterprise identity provider side of enterprise-managed authorization.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct IdentityAssertion {
    /// The identity provider's token endpoint, where the ID token is exchanged.
    pub idp_token_endpoint: String,
    /// The person's ID token from that provider.
    pub id_token: Assertion,
    /// This program's client at the identity provider, when it authenticates there.
    pub idp_client: Option<ClientRegistration>,
}

impl IdentityAssertion {
    /// Exchanges `id_token` at `idp_token_endpoint`, without client authentication there.
    pub fn new(idp_token_endpoint: impl Into<String>, id_token: Assertion) -> IdentityAssertion {
        IdentityAssertion {
            idp_token_endpoint: idp_token_endpoint.into(),
            id_token,
            idp_client: None,
        }
    }

    /// Authenticates at the identity provider as `client`.
    pub fn with_idp_client(mut self, client: ClientRegistration) -> IdentityAssertion {
        self.idp_client = Some(client);
        self
    }
}

/// A grant request at an authorization server's token endpoint.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct GrantRequest<'a> {
    /// The token endpoint, the client, and the key the tokens are to be bound to.
    pub endpoint: ClientEndpoint<'a>,
    /// The scopes asked for.
    pub scope: Option<&'a Scopes>,
    /// The resource indicator (RFC 8707).
    pub resource: Option<&'a str>,
}

impl<'a> GrantRequest<'a> {
    /// A grant at `endpoint` with no scope and no resource indicator.
    pub fn new(endpoint: ClientEndpoint<'a>) -> GrantRequest<'a> {
        GrantRequest {
            endpoint,
            scope: None,
            resource: None,
        }
    }

    /// With the scopes asked for.
    #[must_use]
    pub fn scope(self, scope: Option<&'a Scopes>) -> GrantRequest<'a> {
        GrantRequest { scope, ..self }
    }

    /// With the resource indicator (RFC 8707).
    #[must_use]
    pub fn resource(self, resource: Option<&'a str>) -> GrantRequest<'a> {
        GrantRequest { resource, ..self }
    }
}

/// Client credentials (RFC 6749 §4.4): tokens for the client itself.
///
/// # Errors
/// Transport failures, the server's OAuth error and an invalid response, in
/// [`Step::Grant`].
pub fn client_credentials(agent: &ureq::Agent, req: &GrantRequest<'_>) -> Result<TokenSet> {
    let scope = req.scope.map(ToString::to_string).unwrap_or_default();
    send(
        agent,
        req,
        vec![("grant_type", "client_credentials")],
        &scope,
    )
}

/// The JWT bearer grant (RFC 7523 §2.1): tokens for `assertion`'s subject.
///
/// # Errors
/// As [`client_credentials`].
pub fn jwt_bearer(
    agent: &ureq::Agent,
    req: &GrantRequest<'_>,
    assertion: &Secret,
) -> Result<TokenSet> {
    let scope = req.scope.map(ToString::to_string).unwrap_or_default();
    send(
        agent,
        req,
        vec![
            ("grant_type", JWT_BEARER),
            ("assertion", assertion.secret()),
        ],
        &scope,
    )
}

fn send<'a>(
    agent: &ureq::Agent,
    req: &GrantRequest<'a>,
    mut form: Vec<(&'a str, &'a str)>,
    scope: &'a str,
) -> Result<TokenSet> {
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    form.extend(req.resource.map(|r| ("resource", r)));
    req.endpoint.request(agent, form, Step::Grant)
}

/// A token exchange (RFC 8693 §2.1) of a subject token for an ID-JAG.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TokenExchange<'a> {
    /// The identity provider's token endpoint and the client there (a DPoP key is not used
    /// here: an ID-JAG is not bound).
    pub endpoint: ClientEndpoint<'a>,
    /// The person's ID token.
    pub subject_token: &'a Secret,
    /// The issuer of the authorization server the ID-JAG is for (`audience`).
    pub audience: &'a str,
    /// The MCP server's resource identifier (`resource`).
    pub resource: &'a str,
    /// The scopes asked for.
    pub scope: Option<&'a Scopes>,
}

impl<'a> TokenExchange<'a> {
    /// The exchange of `subject_token` at `endpoint` for an ID-JAG for the authorization
    /// server `audience` and the MCP server `resource`, with no scope.
    pub fn new(
        endpoint: ClientEndpoint<'a>,
        subject_token: &'a Secret,
        audience: &'a str,
        resource: &'a str,
    ) -> TokenExchange<'a> {
        TokenExchange {
            endpoint,
            subject_token,
            audience,
            resource,
            scope: None,
        }
    }

    /// With the scopes asked for.
    #[must_use]
    pub fn scope(self, scope: Option<&'a Scopes>) -> TokenExchange<'a> {
        TokenExchange { scope, ..self }
    }
}

/// What a token exchange issued (RFC 8693 §2.2.1).
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The token (for an ID-JAG request, the ID-JAG).
    pub token: Secret,
    /// Its type, `issued_token_type`.
    pub issued_token_type: String,
}

/// Exchanges the person's ID token for an ID-JAG at the identity provider.
///
/// # Errors
/// Transport failures, the identity provider's OAuth error, and an invalid response or one
/// that is not an ID-JAG, in [`Step::TokenExchange`].
pub fn exchange_for_id_jag(agent: &ureq::Agent, req: &TokenExchange<'_>) -> Result<IssuedToken> {
    let step = Step::TokenExchange;
    let scope = req.scope.map(ToString::to_string).unwrap_or_default();
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("requested_token_type", ID_JAG_TYPE),
        ("subject_token", req.subject_token.secret()),
        ("subject_token_type", ID_TOKEN_TYPE),
        ("audience", req.audience),
        ("resource", req.resource),
    ];
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    let (url, response) = req.endpoint.dpop(None).post(agent, form, step)?;
    let issued = parse_token_exchange_response(&response.body).map_err(|e| e.with_url(&url))?;
    if issued.issued_token_type != ID_JAG_TYPE {
        return Err(Error::new(
            ErrorKind::InvalidResponse,
            step,
            format!(
                "the identity provider issued a {:?}, not an ID-JAG",
                crate::error::shorten(&issued.issued_token_type)
            ),
        )
        .with_url(&url));
    }
    Ok(issued)
}

/// Parses a token exchange response (RFC 8693 §2.2.1): the issued token (`access_token`) and
/// its `issued_token_type`. Pure; fuzzed.
///
/// # Errors
/// [`ErrorKind::InvalidResponse`] when either is missing or the token is not visible ASCII.
///
/// ```
/// use mcp_oauth_client::grant::{ID_JAG_TYPE, parse_token_exchange_response};
/// let body = br#"{"access_token":"eyJ.a.b","issued_token_type":"urn:ietf:params:oauth:token-type:id-jag","token_type":"N_A"}"#;
/// assert_eq!(parse_token_exchange_response(body).unwrap().issued_token_type, ID_JAG_TYPE);
/// ```
pub fn parse_token_exchange_response(body: &[u8]) -> Result<IssuedToken> {
    #[derive(Deserialize)]
    struct Response {
        access_token: String,
        issued_token_type: String,
    }
    let step = Step::TokenExchange;
    let r: Response = crate::http::parse_json(body, step, "token exchange response")?;
    crate::token::check_access_token(&r.access_token, step)?;
    Ok(IssuedToken {
        token: Secret::new(r.access_token),
        issued_token_type: crate::error::sanitize(&r.issued_token_type, 200),
    })
}
