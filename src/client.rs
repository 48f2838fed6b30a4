//! The client of a login, as the protocol steps pass it around (RFC 6749 §2; RFC 7591 §2;
//! MCP authorization "Client registration"): who it is at one authorization server, how it
//! authenticates there, which grants it may use, and the client a user configured. Below the
//! steps that use it: registration, client authentication, the token requests.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::discovery::AuthServerMetadata;
use crate::jwt::SigningKey;
use crate::secret::Secret;

/// The device authorization grant's type (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// How the client authenticates at the token endpoint (RFC 7591 §2, OAuth 2.1 §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// A public client: `client_id` in the form, no secret.
    None,
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523 §2.2).
    PrivateKeyJwt,
}

impl AuthMethod {
    /// The RFC 7591 name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// The method with the RFC 7591 name `name` (`client_secret_basic`, …), if this crate
    /// has it.
    ///
    /// ```
    /// use mcp_oauth_client::AuthMethod;
    /// assert_eq!(AuthMethod::from_name("client_secret_post"), Some(AuthMethod::ClientSecretPost));
    /// assert_eq!(AuthMethod::from_name("tls_client_auth"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<AuthMethod> {
        [
            AuthMethod::None,
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
            AuthMethod::PrivateKeyJwt,
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
#[non_exhaustive]
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
    /// The private key of a `private_key_jwt` client (configured, never stored).
    #[serde(skip)]
    pub signing_key: Option<Arc<SigningKey>>,
    /// The grant types it was registered for; empty when not known (a configured client, a
    /// file of an earlier version: the browser login's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types: Vec<String>,
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
            signing_key: None,
            grant_types: Vec::new(),
        }
    }

    /// True when it was registered for the device authorization grant (RFC 8628).
    pub fn allows_device_flow(&self) -> bool {
        self.grant_types.iter().any(|g| g == DEVICE_CODE_GRANT)
    }

    /// The same client with the private key it signs assertions with.
    pub fn with_signing_key(mut self, key: Option<Arc<SigningKey>>) -> ClientRegistration {
        self.signing_key = key;
        self
    }

    /// True when the secret has an expiry that has passed at `now` (seconds since the epoch).
    pub fn secret_expired(&self, now: u64) -> bool {
        self.client_secret_expires_at
            .is_some_and(|t| t != 0 && t <= now)
    }
}

/// A client the user configured instead of dynamic registration: a pre-registered client id
/// (with its secret and, when the server insists on one, its authentication method), or the
/// HTTPS URL of a client ID metadata document.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ConfiguredClient {
    /// A pre-registered client identifier.
    pub client_id: Option<String>,
    /// Its secret.
    pub client_secret: Option<Secret>,
    /// Its authentication method; chosen from the server's metadata when `None`.
    pub auth_method: Option<AuthMethod>,
    /// A client ID metadata document URL, used where the server supports them.
    pub metadata_url: Option<String>,
    /// The private key of the pre-registered client, for `private_key_jwt`.
    pub key: Option<Arc<SigningKey>>,
}

impl ConfiguredClient {
    /// The client to log in with at the authorization server of `metadata`, in the order of
    /// MCP authorization's "Client registration": the pre-registered client, else the client
    /// ID metadata document when the server advertises support. `None`: a client registered
    /// earlier with this issuer, or a new registration.
    pub fn for_server(&self, metadata: &AuthServerMetadata) -> Option<ClientRegistration> {
        if let Some(id) = &self.client_id {
            let secret = self.client_secret.clone();
            let method = self.auth_method.unwrap_or_else(|| match self.key {
                Some(_) => AuthMethod::PrivateKeyJwt,
                None => choose_auth_method(metadata, secret.is_some()),
            });
            let client = ClientRegistration::configured(&metadata.issuer, id, secret, method);
            return Some(client.with_signing_key(self.key.clone()));
        }
        let url = self
            .metadata_url
            .as_ref()
            .filter(|_| metadata.client_id_metadata_document_supported)?;
        Some(ClientRegistration::configured(
            &metadata.issuer,
            url,
            None,
            AuthMethod::None,
        ))
    }

    /// The configured client that obtained a grant for `client_id` at `issuer`, authenticated
    /// with `method` as then; `None` when the grant came from a registration.
    pub fn issued(
        &self,
        issuer: &str,
        client_id: &str,
        method: AuthMethod,
    ) -> Option<ClientRegistration> {
        let (id, secret) = match (&self.client_id, &self.metadata_url) {
            (Some(id), _) => (id, self.client_secret.clone()),
            (None, Some(url)) => (url, None),
            (None, None) => return None,
        };
        (id == client_id).then(|| {
            ClientRegistration::configured(issuer, id, secret, method)
                .with_signing_key(self.key.clone())
        })
    }
}
