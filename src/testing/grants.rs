//! The grants without a browser (client credentials, RFC 6749 §4.4; the JWT bearer grant,
//! RFC 7523 §2.1) and the JWTs they and `private_key_jwt` clients (RFC 7523 §2.2) present.

use serde_json::Value;

use super::oauth::{TokenCall, TokenError, mint_access_token, token_response};
use super::state::{Shared, State};
use super::util::{normalize_scope, single, unix_now};

/// Leeway for `exp`, `nbf` and `iat`, in seconds.
const LEEWAY: u64 = 30;

/// Checks a JWT that must be signed by `jwk` and name this server: `aud` the issuer or the
/// token endpoint, `exp` to come, `nbf` and `iat` not ahead, and a `jti` never seen. Returns
/// its claims; the error is the description.
pub(super) fn check_assertion(
    s: &Shared,
    state: &mut State,
    jws: &str,
    jwk: &Value,
) -> Result<Value, String> {
    let (_, claims) =
        crate::jwt::verify(jws, jwk).ok_or("the assertion's signature does not verify")?;
    let ours = [s.issuer.clone(), s.endpoint_url("token")];
    let names_us = |v: &Value| v.as_str().is_some_and(|a| ours.iter().any(|o| o == a));
    let audience_ok = match &claims["aud"] {
        Value::Array(list) => list.iter().any(names_us),
        one => names_us(one),
    };
    if !audience_ok {
        return Err("the assertion's aud does not name this authorization server".into());
    }
    let now = unix_now();
    match claims["exp"].as_u64() {
        None => return Err("the assertion has no exp".into()),
        Some(exp) if exp + LEEWAY <= now => return Err("the assertion has expired".into()),
        Some(_) => {}
    }
    let ahead = |name: &str| claims[name].as_u64().is_some_and(|t| t > now + LEEWAY);
    if ahead("nbf") || ahead("iat") {
        return Err("the assertion is not valid yet".into());
    }
    if let Some(jti) = claims["jti"].as_str()
        && !state.seen_jtis.insert(jti.to_owned())
    {
        return Err("the assertion's jti was used before".into());
    }
    Ok(claims)
}

/// `grant_type=client_credentials`: tokens for a confidential client itself, no refresh token.
pub(super) fn client_credentials(
    state: &mut State,
    call: &TokenCall<'_>,
) -> Result<Value, TokenError> {
    let confidential = state
        .clients
        .get(call.client_id)
        .is_some_and(|c| c.auth_method != "none");
    if !confidential {
        return Err(TokenError::new(
            "unauthorized_client",
            "client credentials are for confidential clients",
        ));
    }
    issue(state, call)
}

/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`: tokens for the assertion's
/// subject, no refresh token.
pub(super) fn jwt_bearer(state: &mut State, call: &TokenCall<'_>) -> Result<Value, TokenError> {
    let Some(key) = call.s.config.assertion_key.clone() else {
        return Err(TokenError::new(
            "unsupported_grant_type",
            "this server takes no JWT bearer assertions",
        ));
    };
    let assertion = match single(call.form, "assertion") {
        Ok(Some(a)) => a,
        Ok(None) => return Err(TokenError::new("invalid_request", "assertion is missing")),
        Err(e) => return Err(TokenError::new("invalid_request", &e)),
    };
    check_assertion(call.s, state, assertion, &key)
        .map_err(|why| TokenError::new("invalid_grant", &why))?;
    issue(state, call)
}

/// An access token for the requested scope and resource.
fn issue(state: &mut State, call: &TokenCall<'_>) -> Result<Value, TokenError> {
    let scope = single(call.form, "scope").map_err(|e| TokenError::new("invalid_request", &e))?;
    let resource = super::oauth::resource_param(call.form)?;
    let grant = state.next_grant;
    state.next_grant += 1;
    let scope = normalize_scope(scope);
    let jkt = call.jkt.clone();
    let access = mint_access_token(state, call.client_id, scope, resource, grant, jkt);
    Ok(token_response(call.s, access, None))
}
