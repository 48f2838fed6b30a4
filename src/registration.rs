//! Client selection and dynamic client registration (RFC 7591 §2, §3; RFC 8252 §8.4;
//! MCP authorization "Client registration").
//!
//! Order: a pre-registered client, else a client ID metadata document URL when the server
//! supports it, else a client registered earlier with this issuer, else a new registration.
//! Credentials belong to one issuer and are never sent to another.

use serde::Deserialize;
use url::Url;

use crate::client::{AuthMethod, DEVICE_CODE_GRANT};
pub use crate::client::{ClientRegistration, ConfiguredClient};
use crate::error::{Error, ErrorKind, Result, Step};
use crate::http::{self, Body};
use crate::scope::Scopes;
use crate::secret::Secret;

/// What a registration request says about the client.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RegistrationRequest<'a> {
    /// Human-readable name shown on consent pages.
    pub client_name: &'a str,
    /// The loopback redirect URI; `None` registers a client for the device authorization
    /// grant (RFC 8628), which has none.
    pub redirect_uri: Option<&'a str>,
    /// The token endpoint authentication method asked for.
    pub auth_method: AuthMethod,
    /// Scopes the client will ask for, when known.
    pub scope: Option<&'a Scopes>,
    /// Extra client metadata merged in; it cannot replace `redirect_uris`.
    pub extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl<'a> RegistrationRequest<'a> {
    /// A client named `client_name` authenticating with `auth_method`, for the device grant
    /// (no redirect URI), with no scope and no more metadata.
    pub fn new(client_name: &'a str, auth_method: AuthMethod) -> RegistrationRequest<'a> {
        RegistrationRequest {
            client_name,
            redirect_uri: None,
            auth_method,
            scope: None,
            extra: None,
        }
    }

    /// With the loopback redirect URI of a browser login.
    #[must_use]
    pub fn redirect_uri(self, redirect_uri: Option<&'a str>) -> RegistrationRequest<'a> {
        RegistrationRequest {
            redirect_uri,
            ..self
        }
    }

    /// With the scopes the client will ask for.
    #[must_use]
    pub fn scope(self, scope: Option<&'a Scopes>) -> RegistrationRequest<'a> {
        RegistrationRequest { scope, ..self }
    }

    /// With more client metadata (it cannot replace `redirect_uris`).
    #[must_use]
    pub fn extra(
        self,
        extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
    ) -> RegistrationRequest<'a> {
        RegistrationRequest { extra, ..self }
    }
}

/// The RFC 7591 §2 client metadata JSON for a native MCP client.
pub fn build_registration_request(req: &RegistrationRequest<'_>) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    body.insert("client_name".into(), req.client_name.into());
    body.insert("application_type".into(), "native".into());
    let (grants, responses) = match req.redirect_uri {
        Some(_) => (["authorization_code", "refresh_token"], vec!["code"]),
        None => ([DEVICE_CODE_GRANT, "refresh_token"], vec![]),
    };
    body.insert("grant_types".into(), serde_json::json!(grants));
    body.insert("response_types".into(), serde_json::json!(responses));
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
    match req.redirect_uri {
        Some(uri) => body.insert("redirect_uris".into(), serde_json::json!([uri])),
        None => body.remove("redirect_uris"),
    };
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
        grant_types: Option<Vec<String>>,
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
        redirect_uris: r.redirect_uris.unwrap_or_else(|| {
            requested
                .redirect_uri
                .map(str::to_owned)
                .into_iter()
                .collect()
        }),
        client_secret_expires_at: r.client_secret_expires_at,
        signing_key: None,
        grant_types: r.grant_types.unwrap_or_else(|| {
            let body = build_registration_request(requested);
            serde_json::from_value(body["grant_types"].clone()).unwrap_or_default()
        }),
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
    let url: Url = crate::address::parse_endpoint(registration_endpoint, step)?;
    let body = build_registration_request(request);
    let response = http::send(agent, &url, Body::Json(&body), &[], step)?;
    if !(200..300).contains(&response.status) || http::is_error_object(&response) {
        return Err(http::status_error(&response, step, &url, &[]));
    }
    parse_registration_response(&response.body, issuer, request).map_err(|e| e.with_url(&url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_clients_come_first_and_a_metadata_document_only_where_supported() {
        let mut md = crate::discovery::fallback_auth_server_metadata(
            &Url::parse("https://as.example.com").unwrap(),
        );
        md.token_endpoint_auth_methods_supported =
            Some(vec!["none".into(), "client_secret_post".into()]);
        let cimd = ConfiguredClient {
            metadata_url: Some("https://app.example/client.json".into()),
            ..ConfiguredClient::default()
        };
        assert!(cimd.for_server(&md).is_none(), "not supported there");
        md.client_id_metadata_document_supported = true;
        let c = cimd.for_server(&md).unwrap();
        assert_eq!(c.client_id, "https://app.example/client.json");
        assert_eq!(c.auth_method, AuthMethod::None);
        let pre = ConfiguredClient {
            client_id: Some("pre".into()),
            client_secret: Some(Secret::new("s")),
            ..cimd.clone()
        };
        let c = pre.for_server(&md).unwrap();
        assert_eq!(
            (c.client_id.as_str(), c.auth_method),
            ("pre", AuthMethod::ClientSecretPost)
        );
        assert!(
            pre.issued("https://as", "other", AuthMethod::None)
                .is_none()
        );
        let c = pre
            .issued("https://as", "pre", AuthMethod::ClientSecretBasic)
            .unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientSecretBasic);
        assert!(ConfiguredClient::default().for_server(&md).is_none());
    }

    fn req() -> RegistrationRequest<'static> {
        RegistrationRequest {
            client_name: "n",
            redirect_uri: Some("http://127.0.0.1:5/callback"),
            auth_method: AuthMethod::None,
            scope: None,
            extra: None,
        }
    }

    #[test]
    fn a_device_client_has_the_device_grant_and_no_redirect_uris() {
        let extra = serde_json::json!({"redirect_uris": ["https://evil"]});
        let body = build_registration_request(&RegistrationRequest {
            redirect_uri: None,
            extra: extra.as_object(),
            ..req()
        });
        assert_eq!(
            body["grant_types"],
            serde_json::json!([DEVICE_CODE_GRANT, "refresh_token"])
        );
        assert_eq!(body["response_types"], serde_json::json!([]));
        assert!(body.get("redirect_uris").is_none());
        let parsed = parse_registration_response(
            br#"{"client_id":"d"}"#,
            "https://as",
            &RegistrationRequest {
                redirect_uri: None,
                ..req()
            },
        )
        .unwrap();
        assert!(parsed.allows_device_flow() && parsed.redirect_uris.is_empty());
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
