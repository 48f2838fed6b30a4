//! Client authentication at the token and revocation endpoints (RFC 6749 §2.3; RFC 7591 §2
//! `token_endpoint_auth_method`; RFC 7009 §2.1): which method a client uses, and how a request
//! carries its credentials.

use crate::client::ClientRegistration;
pub use crate::client::{AuthMethod, choose_auth_method};
use crate::error::{Error, ErrorKind, Result, Step};
use crate::secret::Secret;

/// The type of a client assertion (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a client assertion is valid, in seconds.
const ASSERTION_LIFETIME: u64 = 120;

/// The credentials of one token or revocation request: form fields to add, and the value of
/// an `Authorization` header when the method is Basic.
pub(crate) struct Credentials {
    pub form: Vec<(&'static str, String)>,
    pub authorization: Option<String>,
}

/// The credentials of a client, in the one request shape every server we have read accepts:
/// - `client_id` is always in the body, also beside HTTP Basic. RFC 6749 §2.3.1 does not
///   forbid it; the MCP Python SDK's `ClientAuthenticator` (FastMCP and most Python MCP
///   servers) reads the client from the body whatever the method and refuses a request
///   without it ("Missing client_id"); the TypeScript SDK reads only the body;
///   node-oidc-provider and Keycloak take it beside Basic when it names the same client.
/// - The secret is in exactly one place: node-oidc-provider refuses a request that
///   authenticates "using more than one mechanism" (a secret in both the header and body).
/// - `private_key_jwt` (RFC 7523 §2.2): a fresh assertion per request, `iss` = `sub` = the
///   client id, `aud` = the issuer (RFC 7523 allows the token endpoint too; the issuer is what
///   the MCP extension and the conformance suite require: the client's `issuer`), `jti`,
///   `iat`, `exp` two minutes on.
pub(crate) fn credentials(c: &ClientRegistration, step: Step) -> Result<Credentials> {
    // An empty client id is a grant without a client (a JWT bearer assertion alone).
    let mut form = Vec::new();
    if !c.client_id.is_empty() {
        form.push(("client_id", c.client_id.clone()));
    }
    let mut authorization = None;
    let secret = c.client_secret.as_ref().map(Secret::secret);
    match (c.auth_method, secret, c.signing_key.as_deref()) {
        (AuthMethod::ClientSecretBasic, Some(s), _) => {
            authorization = Some(basic_authorization(&c.client_id, s));
        }
        (AuthMethod::ClientSecretPost, Some(s), _) => form.push(("client_secret", s.to_owned())),
        (AuthMethod::PrivateKeyJwt, _, Some(key)) => {
            let now = crate::local::unix_now();
            let claims = serde_json::json!({
                "iss": c.client_id,
                "sub": c.client_id,
                "aud": c.issuer,
                "jti": crate::jwt::random_jti(step)?,
                "iat": now,
                "exp": now + ASSERTION_LIFETIME,
            });
            let assertion = key.sign(serde_json::json!({"typ": "JWT"}), &claims, step)?;
            form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE.to_owned()));
            form.push(("client_assertion", assertion));
        }
        (AuthMethod::PrivateKeyJwt, _, None) => {
            return Err(Error::new(
                ErrorKind::Config,
                step,
                "private_key_jwt needs the client's private key (SessionBuilder::client_key)",
            ));
        }
        _ => {}
    }
    Ok(Credentials {
        form,
        authorization,
    })
}

/// `Authorization: Basic` for client credentials, each part form-urlencoded (RFC 6749 §2.3.1).
fn basic_authorization(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::AuthServerMetadata;
    use crate::jwt::SigningKey;
    use std::sync::Arc;
    use url::Url;

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

    #[test]
    fn basic_auth_encodes_parts() {
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
        assert_eq!(basic_authorization("a b", "c:d"), "Basic YStiOmMlM0Fk");
    }

    fn creds(method: AuthMethod, key: Option<&Arc<SigningKey>>) -> Credentials {
        let mut client = ClientRegistration::configured(
            "https://as.example",
            "id",
            Some(Secret::new("s")),
            method,
        );
        client.signing_key = key.cloned();
        credentials(&client, Step::Refresh).unwrap()
    }

    #[test]
    fn client_id_is_always_in_the_body_and_the_secret_in_one_place() {
        let basic = creds(AuthMethod::ClientSecretBasic, None);
        assert_eq!(basic.form, [("client_id", "id".to_owned())]);
        assert!(basic.authorization.is_some());
        let post = creds(AuthMethod::ClientSecretPost, None);
        assert_eq!(
            post.form,
            [("client_id", "id".into()), ("client_secret", "s".into())]
        );
        assert!(post.authorization.is_none());
        let none = creds(AuthMethod::None, None);
        assert_eq!(none.form, [("client_id", "id".to_owned())]);
        assert!(none.authorization.is_none());
    }

    #[test]
    fn a_client_assertion_names_the_client_and_the_issuer() {
        let key = Arc::new(SigningKey::generate_es256().unwrap());
        let jwt = creds(AuthMethod::PrivateKeyJwt, Some(&key));
        assert_eq!(
            jwt.form[1],
            ("client_assertion_type", CLIENT_ASSERTION_TYPE.into())
        );
        let (header, claims) = crate::jwt::verify(&jwt.form[2].1, &key.public_jwk()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(
            (&claims["iss"], &claims["sub"]),
            (&"id".into(), &"id".into())
        );
        assert_eq!(claims["aud"], "https://as.example");
        assert!(claims["exp"].as_u64() > claims["iat"].as_u64());
        let again = creds(AuthMethod::PrivateKeyJwt, Some(&key));
        let (_, claims2) = crate::jwt::verify(&again.form[2].1, &key.public_jwk()).unwrap();
        assert_ne!(claims["jti"], claims2["jti"], "a fresh jti per request");
        assert!(jwt.authorization.is_none());
    }
}
