//! Client selection and dynamic client registration (RFC 7591 §2, §3; RFC 8252 §8.4;
//! MCP authorization "Client registration").
//!
//! Order: a pre-registered client, else a client ID metadata document URL when the server
//! supports it, else a client registered earlier with this issuer, else a new registration.
//! Credentials belong to one issuer and are never sent to another.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::discovery::AuthServerMetadata;
use crate::error::{Error, ErrorKind, Result, Step};
use crate::http::{self, Body};
use crate::scope::Scopes;
use crate::secret::Secret;

/// How the client authenticates at the token endpoint (RFC 7591 §2, OAuth 2.1 §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A public client: `client_id` in the form, no secret.
    None,
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl AuthMethod {
    /// The RFC 7591 name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
        }
    }

    fn from_name(name: &str) -> Option<AuthMethod> {
        [
            AuthMethod::None,
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
        ]
        .into_iter()
        .find(|m| m.as_str() == name)
    }
}

/// Chooses the token endpoint authentication method from the server's metadata.
///
/// A client about to register prefers `none` (a native app cannot keep a secret, RFC 8252
/// §8.4), then `client_secret_post`, then `client_secret_basic`; a client with a secret
/// prefers `client_secret_post`, then `client_secret_basic`. An absent list means
/// `client_secret_basic` (RFC 8414 §2).
///
/// Why `client_secret_post` before Basic when a server offers both, although RFC 6749 §2.3.1
/// prefers Basic: it is the one method every server we have read accepts as it advertises it.
/// The MCP TypeScript SDK's authorization server reads credentials only from the body; the
/// MCP Python SDK decodes Basic credentials with percent-decoding but without `+` as space,
/// so a secret that needs form-encoding (RFC 6749 §2.3.1) fails there; node-oidc-provider and
/// Keycloak take both. A pre-registered client whose server insists on one method names it
/// with [`SessionBuilder::client_auth_method`](crate::SessionBuilder::client_auth_method).
pub fn choose_auth_method(metadata: &AuthServerMetadata, has_secret: bool) -> AuthMethod {
    let listed = |m: AuthMethod| match &metadata.token_endpoint_auth_methods_supported {
        Some(list) => list.iter().any(|s| s == m.as_str()),
        None => m == AuthMethod::ClientSecretBasic,
    };
    let order: &[AuthMethod] = if has_secret {
        &[
            AuthMethod::ClientSecretPost,
            AuthMethod::ClientSecretBasic,
            AuthMethod::None,
        ]
    } else {
        &[
            AuthMethod::None,
            AuthMethod::ClientSecretPost,
            AuthMethod::ClientSecretBasic,
        ]
    };
    order
        .iter()
        .copied()
        .find(|m| listed(*m))
        .unwrap_or(if has_secret {
            AuthMethod::ClientSecretBasic
        } else {
            AuthMethod::None
        })
}

/// A client known to one authorization server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientRegistration {
    /// The issuer this client belongs to; its credentials go nowhere else.
    pub issuer: String,
    /// The client identifier.
    pub client_id: String,
    /// The client secret, for confidential methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// How the client authenticates at the token endpoint.
    pub auth_method: AuthMethod,
    /// The registered redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// When the secret expires (seconds since the epoch); 0 or absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<u64>,
}

impl ClientRegistration {
    /// A client that needs no registration: pre-registered, or a client ID metadata document
    /// URL (then `secret` is `None` and `auth_method` [`AuthMethod::None`]).
    pub fn configured(
        issuer: &str,
        client_id: &str,
        secret: Option<Secret>,
        auth_method: AuthMethod,
    ) -> ClientRegistration {
        ClientRegistration {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: secret,
            auth_method,
            redirect_uris: Vec::new(),
            client_secret_expires_at: None,
        }
    }

    /// True when the secret has an expiry that has passed at `now` (seconds since the epoch).
    pub fn secret_expired(&self, now: u64) -> bool {
        self.client_secret_expires_at
            .is_some_and(|t| t != 0 && t <= now)
    }
}

/// What a registration request says about the client.
#[derive(Debug, Clone, Copy)]
pub struct RegistrationRequest<'a> {
    /// Human-readable name shown on consent pages.
    pub client_name: &'a str,
    /// The loopback redirect URI.
    pub redirect_uri: &'a str,
    /// The token endpoint authentication method asked for.
    pub auth_method: AuthMethod,
    /// Scopes the client will ask for, when known.
    pub scope: Option<&'a Scopes>,
    /// Extra client metadata merged in; it cannot replace `redirect_uris`.
    pub extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// The RFC 7591 §2 client metadata JSON for a native MCP client.
pub fn build_registration_request(req: &RegistrationRequest<'_>) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    body.insert("client_name".into(), req.client_name.into());
    body.insert("application_type".into(), "native".into());
    body.insert(
        "grant_types".into(),
        serde_json::json!(["authorization_code", "refresh_token"]),
    );
    body.insert("response_types".into(), serde_json::json!(["code"]));
    body.insert(
        "token_endpoint_auth_method".into(),
        req.auth_method.as_str().into(),
    );
    if let Some(scope) = req.scope.filter(|s| !s.is_empty()) {
        body.insert("scope".into(), scope.to_string().into());
    }
    if let Some(extra) = req.extra {
        for (k, v) in extra {
            body.insert(k.clone(), v.clone());
        }
    }
    body.insert(
        "redirect_uris".into(),
        serde_json::json!([req.redirect_uri]),
    );
    serde_json::Value::Object(body)
}

/// Parses an RFC 7591 §3.2.1 registration response for a client of `issuer`.
///
/// # Errors
/// [`ErrorKind::InvalidResponse`] when `client_id` is missing or empty, or a secret method was
/// granted without a secret.
pub fn parse_registration_response(
    body: &[u8],
    issuer: &str,
    requested: &RegistrationRequest<'_>,
) -> Result<ClientRegistration> {
    #[derive(Deserialize)]
    struct Response {
        client_id: String,
        client_secret: Option<String>,
        token_endpoint_auth_method: Option<String>,
        redirect_uris: Option<Vec<String>>,
        client_secret_expires_at: Option<u64>,
    }
    let step = Step::Registration;
    let r: Response = http::parse_json(body, step, "registration response")?;
    if r.client_id.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidResponse,
            step,
            "the registration response has an empty client_id",
        ));
    }
    let auth_method = r
        .token_endpoint_auth_method
        .as_deref()
        .and_then(AuthMethod::from_name)
        .unwrap_or(requested.auth_method);
    let client_secret = r.client_secret.filter(|s| !s.is_empty()).map(Secret::new);
    if auth_method != AuthMethod::None && client_secret.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidResponse,
            step,
            format!(
                "the server granted {} but sent no client_secret",
                auth_method.as_str()
            ),
        ));
    }
    Ok(ClientRegistration {
        issuer: issuer.to_owned(),
        client_id: r.client_id,
        client_secret,
        auth_method,
        redirect_uris: r
            .redirect_uris
            .unwrap_or_else(|| vec![requested.redirect_uri.to_owned()]),
        client_secret_expires_at: r.client_secret_expires_at,
    })
}

/// Registers a client at `registration_endpoint` of `issuer` (RFC 7591 §3.1). Redirects are
/// not followed.
///
/// # Errors
/// Transport failures; the server's OAuth error (`invalid_redirect_uri`,
/// `invalid_client_metadata`, …); an invalid response; all in [`Step::Registration`].
pub fn register(
    agent: &ureq::Agent,
    registration_endpoint: &str,
    issuer: &str,
    request: &RegistrationRequest<'_>,
) -> Result<ClientRegistration> {
    let step = Step::Registration;
    let url: Url = crate::discovery::parse_endpoint(registration_endpoint, step)?;
    let body = build_registration_request(request);
    let response = http::send(agent, &url, Body::Json(&body), step)?;
    if !(200..300).contains(&response.status) || http::is_error_object(&response) {
        return Err(http::status_error(&response, step, &url, &[]));
    }
    parse_registration_response(&response.body, issuer, request).map_err(|e| e.with_url(&url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(methods: Option<&[&str]>) -> AuthServerMetadata {
        let mut m = crate::discovery::fallback_auth_server_metadata(
            &Url::parse("https://as.example.com").unwrap(),
        );
        m.token_endpoint_auth_methods_supported =
            methods.map(|l| l.iter().map(|s| s.to_string()).collect());
        m
    }

    #[test]
    fn auth_method_choice() {
        use AuthMethod::{ClientSecretBasic, ClientSecretPost};
        assert_eq!(choose_auth_method(&md(None), false), ClientSecretBasic);
        assert_eq!(choose_auth_method(&md(None), true), ClientSecretBasic);
        let all = ["client_secret_post", "none", "client_secret_basic"];
        assert_eq!(choose_auth_method(&md(Some(&all)), false), AuthMethod::None);
        assert_eq!(choose_auth_method(&md(Some(&all)), true), ClientSecretPost);
        // The MCP Python SDK's metadata: no `none`, both secret methods.
        let python = ["client_secret_post", "client_secret_basic"];
        assert_eq!(
            choose_auth_method(&md(Some(&python)), false),
            ClientSecretPost
        );
        let basic = ["client_secret_basic"];
        assert_eq!(
            choose_auth_method(&md(Some(&basic)), false),
            ClientSecretBasic
        );
        assert_eq!(
            choose_auth_method(&md(Some(&basic)), true),
            ClientSecretBasic
        );
        let post = ["client_secret_post"];
        assert_eq!(
            choose_auth_method(&md(Some(&post)), false),
            ClientSecretPost
        );
        assert_eq!(choose_auth_method(&md(Some(&post)), true), ClientSecretPost);
    }

    fn req() -> RegistrationRequest<'static> {
        RegistrationRequest {
            client_name: "n",
            redirect_uri: "http://127.0.0.1:5/callback",
            auth_method: AuthMethod::None,
            scope: None,
            extra: None,
        }
    }

    #[test]
    fn request_is_native_and_extra_cannot_replace_redirect_uris() {
        let extra = serde_json::json!({"logo_uri": "https://x/logo.png", "redirect_uris": ["https://evil"]});
        let extra = extra.as_object().unwrap();
        let body = build_registration_request(&RegistrationRequest {
            extra: Some(extra),
            ..req()
        });
        assert_eq!(body["application_type"], "native");
        assert_eq!(body["logo_uri"], "https://x/logo.png");
        assert_eq!(
            body["redirect_uris"],
            serde_json::json!(["http://127.0.0.1:5/callback"])
        );
        assert_eq!(
            body["grant_types"],
            serde_json::json!(["authorization_code", "refresh_token"])
        );
    }

    #[test]
    fn rfc7591_response_example() {
        // RFC 7591 §3.2.1 example, trimmed.
        let body = br#"{"client_id":"s6BhdRkqt3","client_secret":"cf136dc3c1fc93f31185e5885805d",
            "client_id_issued_at":2893256800,"client_secret_expires_at":2893276800,
            "redirect_uris":["https://client.example.org/callback"],
            "token_endpoint_auth_method":"client_secret_basic"}"#;
        let c = parse_registration_response(body, "https://as", &req()).unwrap();
        assert_eq!(c.client_id, "s6BhdRkqt3");
        assert_eq!(c.auth_method, AuthMethod::ClientSecretBasic);
        assert!(!format!("{c:?}").contains("cf136dc3"));
        assert!(!c.secret_expired(2893276799));
        assert!(c.secret_expired(2893276800));
        let e = parse_registration_response(
            br#"{"client_id":"a","token_endpoint_auth_method":"client_secret_post"}"#,
            "https://as",
            &req(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidResponse);
        assert!(parse_registration_response(br#"{"client_id":""}"#, "https://as", &req()).is_err());
    }
}
