//! What every endpoint that issues or checks tokens shares: the authenticated client of a
//! form POST (secrets, Basic, `private_key_jwt`), one token request as each grant reads it,
//! a new authorization and its access token, the token response, and OAuth error answers.
//! Below the endpoints (`oauth`, `device`, `grants`), which use it.

use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::{Value, json};
use url::Url;

use super::http::{Request, Response};
use super::state::{AccessGrant, RefreshGrant, Shared, State, require_method};
use super::util::{form_decode, random_token, single};

/// The `resource` parameter (RFC 8707): at most one (this server protects one resource), an
/// absolute URI without a fragment.
pub(super) fn resource_param(
    params: &[(String, String)],
) -> Result<Option<String>, (&'static str, String)> {
    let Ok(resource) = single(params, "resource") else {
        return Err(("invalid_target", "only one resource is supported".into()));
    };
    match resource {
        None => Ok(None),
        Some(r) if Url::parse(r).is_ok_and(|url| url.fragment().is_none()) => Ok(Some(r.into())),
        Some(r) => Err(("invalid_target", format!("{r} is not an absolute URI"))),
    }
}

/// A client-authenticated form POST (the token, revocation and device authorization
/// endpoints).
pub(super) struct Authenticated<'s> {
    pub form: Vec<(String, String)>,
    pub state: MutexGuard<'s, State>,
    pub client_id: String,
}

/// Checks method and client authentication; the error is the response to send.
pub(super) fn authenticated_post<'s>(
    s: &'s Shared,
    req: &Request,
) -> Result<Authenticated<'s>, Response> {
    require_method(req, &["POST"])?;
    let form = req.form();
    let mut state = s.lock();
    let client_id = authenticate(s, &mut state, req, &form)?;
    Ok(Authenticated {
        form,
        state,
        client_id,
    })
}

/// One authenticated token request: what every grant reads.
pub(super) struct TokenCall<'a> {
    pub s: &'a Shared,
    /// The authenticated client (empty for a JWT bearer grant without one).
    pub client_id: &'a str,
    pub form: &'a [(String, String)],
    /// The thumbprint of the key of the request's valid DPoP proof: the tokens are bound to it.
    pub jkt: Option<String>,
}

/// A `400` token endpoint error.
pub(super) struct TokenError {
    pub error: &'static str,
    pub description: String,
}

impl TokenError {
    pub(super) fn new(error: &'static str, description: &str) -> TokenError {
        TokenError {
            error,
            description: description.to_owned(),
        }
    }
}

impl From<(&'static str, String)> for TokenError {
    fn from((error, description): (&'static str, String)) -> TokenError {
        TokenError { error, description }
    }
}

/// The tokens of a new authorization by a person (a code, a device code): a refresh token and
/// an access token of a new grant, bound to the request's DPoP key when it had one.
pub(super) fn new_authorization(
    state: &mut State,
    call: &TokenCall<'_>,
    scope: Option<String>,
    resource: Option<String>,
) -> Value {
    let grant_id = state.next_grant;
    state.next_grant += 1;
    let refresh_token = random_token();
    state.refresh_tokens.insert(
        refresh_token.clone(),
        RefreshGrant {
            client_id: call.client_id.to_owned(),
            scope: scope.clone(),
            resource: resource.clone(),
            grant: grant_id,
            jkt: call.jkt.clone(),
        },
    );
    let access = mint_access_token(
        state,
        call.client_id,
        scope,
        resource,
        grant_id,
        call.jkt.clone(),
    );
    token_response(call.s, access, Some(refresh_token))
}

/// An access token just issued, and what it was issued for.
pub(super) struct IssuedAccess {
    token: String,
    lifetime: i64,
    scope: Option<String>,
    /// Bound to this DPoP key.
    jkt: Option<String>,
}

pub(super) fn mint_access_token(
    state: &mut State,
    client_id: &str,
    scope: Option<String>,
    resource: Option<String>,
    grant: u64,
    jkt: Option<String>,
) -> IssuedAccess {
    let lifetime = state.access_token_lifetime;
    let now = Instant::now();
    let span = Duration::from_secs(lifetime.unsigned_abs());
    let expires = if lifetime > 0 {
        now.checked_add(span)
            .unwrap_or(now + Duration::from_secs(3600 * 24 * 365))
    } else {
        now.checked_sub(span).unwrap_or(now)
    };
    let token = random_token();
    state.access_tokens.insert(
        token.clone(),
        AccessGrant {
            scope: scope.clone(),
            expires,
            resource,
            client_id: client_id.to_owned(),
            grant,
            jkt: jkt.clone(),
        },
    );
    IssuedAccess {
        token,
        lifetime,
        scope,
        jkt,
    }
}

pub(super) fn token_response(
    s: &Shared,
    access: IssuedAccess,
    refresh_token: Option<String>,
) -> Value {
    let token_type = match access.jkt {
        Some(_) => "DPoP",
        None => &s.config.token_type,
    };
    let mut body = json!({
        "access_token": access.token,
        "token_type": token_type,
    });
    if s.config.send_expires_in {
        body["expires_in"] = json!(access.lifetime);
    }
    if let Some(refresh_token) = refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    if let Some(scope) = access.scope {
        body["scope"] = json!(scope);
    }
    body
}

/// Authenticates the client of a token or revocation request by its registered method;
/// returns its id, or the `401 invalid_client` response. With
/// [`client_id_in_body`](super::ServerConfig::client_id_in_body) the body must name the
/// client whatever the method (the MCP Python SDK's rule). A JWT bearer grant may come with
/// no client at all (RFC 7523 §3.1): its id is then empty.
fn authenticate(
    s: &Shared,
    state: &mut State,
    req: &Request,
    form: &[(String, String)],
) -> Result<String, Response> {
    let authorization = req.header("authorization");
    let fail = |description: &str| {
        let response = oauth_error(401, "invalid_client", description);
        // RFC 6749 §5.2: a client that tried the Authorization header gets a challenge.
        match authorization {
            Some(_) => response.header("WWW-Authenticate", "Basic realm=\"test-server\""),
            None => response,
        }
    };
    let basic = match authorization {
        None => None,
        Some(value) => match parse_basic(value) {
            Some(credentials) => Some(credentials),
            None => {
                return Err(fail(
                    "the Authorization header is not valid Basic credentials",
                ));
            }
        },
    };
    let (Ok(form_id), Ok(form_secret)) = (single(form, "client_id"), single(form, "client_secret"))
    else {
        return Err(fail("client_id or client_secret is repeated"));
    };
    let assertion = single(form, "client_assertion").map_err(|_| fail("repeated assertion"))?;
    if let Some(assertion) = assertion {
        return client_assertion(s, state, form, form_id, assertion, basic.is_some())
            .map_err(|why| fail(&why));
    }
    if s.config.client_id_in_body && form_id.is_none() {
        return Err(fail("Missing client_id"));
    }
    let anonymous = basic.is_none() && form_id.is_none() && form_secret.is_none();
    if anonymous && single(form, "grant_type") == Ok(Some(crate::grant::JWT_BEARER)) {
        return Ok(String::new());
    }
    let client_id = match (&basic, form_id) {
        (Some((id, _)), Some(form_id)) if id != form_id => {
            return Err(fail("client_id differs from the Basic credentials"));
        }
        (Some((id, _)), _) => id.as_str(),
        (None, Some(form_id)) => form_id,
        (None, None) => return Err(fail("no client authentication")),
    };
    let Some(client) = state.clients.get(client_id) else {
        return Err(fail("unknown client"));
    };
    let secret = client.secret.as_deref();
    let authenticated = match client.auth_method.as_str() {
        "none" => basic.is_none() && form_id.is_some(),
        "client_secret_post" => basic.is_none() && form_secret.is_some() && form_secret == secret,
        "client_secret_basic" => {
            form_secret.is_none()
                && basic
                    .as_ref()
                    .is_some_and(|(_, s)| Some(s.as_str()) == secret)
        }
        _ => false,
    };
    if authenticated {
        Ok(client_id.to_owned())
    } else {
        let description = format!(
            "authentication failed for a client registered with {}",
            client.auth_method
        );
        Err(fail(&description))
    }
}

/// Authenticates a `private_key_jwt` client by its assertion (RFC 7523 §2.2, §3): the
/// registered key's signature, `iss` and `sub` the client, and what
/// [`check_assertion`](super::assertion::check_assertion) checks. The client is the body's
/// `client_id`, else the assertion's `iss`.
fn client_assertion(
    s: &Shared,
    state: &mut State,
    form: &[(String, String)],
    form_id: Option<&str>,
    assertion: &str,
    has_basic: bool,
) -> Result<String, String> {
    if has_basic || single(form, "client_secret") != Ok(None) {
        return Err("more than one authentication method".into());
    }
    if single(form, "client_assertion_type") != Ok(Some(crate::client_auth::CLIENT_ASSERTION_TYPE))
    {
        return Err("client_assertion_type is not jwt-bearer".into());
    }
    let (_, unverified, _, _) =
        crate::jwt::decode_unverified(assertion).ok_or("the client assertion is not a JWS")?;
    let client_id = match form_id {
        Some(id) => id.to_owned(),
        None => unverified["iss"].as_str().unwrap_or_default().to_owned(),
    };
    let jwk = match state.clients.get(&client_id) {
        Some(c) if c.auth_method == "private_key_jwt" => c.jwk.clone(),
        _ => None,
    }
    .ok_or("no private_key_jwt client has this id")?;
    let claims = super::assertion::check_assertion(s, state, assertion, &jwk)?;
    if claims["iss"] != client_id.as_str() || claims["sub"] != client_id.as_str() {
        return Err("the client assertion's iss and sub must be the client id".into());
    }
    Ok(client_id)
}

/// Parses `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, credentials) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let credentials = credentials.trim();
    let decoded = STANDARD
        .decode(credentials)
        .or_else(|_| STANDARD_NO_PAD.decode(credentials))
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

/// An OAuth error response: `{"error", "error_description"}`, never cached.
pub(super) fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    Response::json(
        status,
        &json!({ "error": error, "error_description": description }),
    )
    .header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%3Aid:s%2Bcr+t"));
        assert_eq!(
            parse_basic(&header),
            Some(("my:id".to_owned(), "s+cr t".to_owned()))
        );
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }
}
