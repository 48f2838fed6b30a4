//! The grants without a browser (client credentials, RFC 6749 §4.4; the JWT bearer grant,
//! RFC 7523 §2.1) and the JWTs they and `private_key_jwt` clients (RFC 7523 §2.2) present.

use serde_json::Value;

use super::issue::{TokenCall, TokenError, mint_access_token, token_response};
use super::state::State;
use super::util::{normalize_scope, single};

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
    super::assertion::check_assertion(call.s, state, assertion, &key)
        .map_err(|why| TokenError::new("invalid_grant", &why))?;
    issue(state, call)
}

/// An access token for the requested scope and resource.
fn issue(state: &mut State, call: &TokenCall<'_>) -> Result<Value, TokenError> {
    let scope = single(call.form, "scope").map_err(|e| TokenError::new("invalid_request", &e))?;
    let resource = super::issue::resource_param(call.form)?;
    let grant = state.next_grant;
    state.next_grant += 1;
    let scope = normalize_scope(scope);
    let jkt = call.jkt.clone();
    let access = mint_access_token(state, call.client_id, scope, resource, grant, jkt);
    Ok(token_response(call.s, access, None))
}
