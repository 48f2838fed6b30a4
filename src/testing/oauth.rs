//! The authorization server's endpoints: registration, authorization, the token endpoint (the
//! code and refresh grants here, the others in their modules) and revocation.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

use super::http::{Request, Response};
use super::issue::{
    Authenticated, TokenCall, TokenError, authenticated_post, mint_access_token, new_authorization,
    oauth_error, resource_param, token_response,
};
use super::state::{Client, CodeGrant, Shared, State, require_method};
use super::util::{has_scopes, html_escape, normalize_scope, random_token, single, unix_now};

/// How long an authorization code can be redeemed.
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// `POST {issuer_path}/register` (RFC 7591).
pub(super) fn register(s: &Shared, req: &Request) -> Response {
    if let Err(response) = require_method(req, &["POST"]) {
        return response;
    }
    let Ok(Value::Object(mut metadata)) = serde_json::from_slice::<Value>(&req.body) else {
        return oauth_error(
            400,
            "invalid_client_metadata",
            "the body must be a JSON object",
        );
    };
    // A client for the device grant alone (RFC 8628) has no redirect URI.
    let device_only = metadata
        .get("grant_types")
        .and_then(Value::as_array)
        .is_some_and(|g| {
            !g.is_empty()
                && g.iter().all(|g| {
                    [crate::device::DEVICE_CODE_GRANT, "refresh_token"]
                        .contains(&g.as_str().unwrap_or(""))
                })
        });
    let redirect_uris = match metadata.get("redirect_uris") {
        Some(Value::Array(uris)) if !uris.is_empty() => uris
            .iter()
            .map(|uri| uri.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>(),
        None if device_only => Some(Vec::new()),
        _ => None,
    };
    let Some(redirect_uris) = redirect_uris else {
        return oauth_error(
            400,
            "invalid_redirect_uri",
            "redirect_uris must be a non-empty array of strings",
        );
    };
    if let Some(bad) = redirect_uris
        .iter()
        .find(|uri| Url::parse(uri).map_or(true, |url| url.fragment().is_some()))
    {
        let description = format!("{bad} is not an absolute URI without a fragment");
        return oauth_error(400, "invalid_redirect_uri", &description);
    }
    let asked = match metadata.get("token_endpoint_auth_method") {
        None => "client_secret_basic".to_owned(),
        Some(Value::String(method)) => method.clone(),
        Some(_) => {
            return oauth_error(
                400,
                "invalid_client_metadata",
                "token_endpoint_auth_method must be a string",
            );
        }
    };
    let auth_method = s.config.registration_auth_method.clone().unwrap_or(asked);
    if !s.config.token_endpoint_auth_methods.contains(&auth_method) {
        let description = format!("token_endpoint_auth_method {auth_method} is not supported");
        return oauth_error(400, "invalid_client_metadata", &description);
    }

    let client_id = random_token();
    let secret = (auth_method != "none").then(random_token);
    metadata.insert("client_id".into(), json!(client_id));
    metadata.insert("client_id_issued_at".into(), json!(unix_now()));
    metadata.insert("token_endpoint_auth_method".into(), json!(auth_method));
    if let Some(secret) = &secret {
        metadata.insert("client_secret".into(), json!(secret));
        metadata.insert("client_secret_expires_at".into(), json!(0));
    }
    s.lock().clients.insert(
        client_id,
        Client {
            secret,
            auth_method,
            redirect_uris,
            jwk: None,
        },
    );
    Response::json(201, &Value::Object(metadata)).header("Cache-Control", "no-store")
}

/// `GET {issuer_path}/authorize`: approves at once and redirects back with a code.
pub(super) fn authorize(s: &Shared, req: &Request) -> Response {
    if let Err(response) = require_method(req, &["GET"]) {
        return response;
    }
    let q = &req.query;

    // Until the client and redirect URI are known good, errors are shown, not redirected.
    let client_id = match single(q, "client_id") {
        Ok(Some(id)) => id,
        Ok(None) => return error_page("the client_id parameter is missing"),
        Err(e) => return error_page(&e),
    };
    let Some(client) = s.lock().clients.get(client_id).cloned() else {
        return error_page("unknown client_id");
    };
    let redirect_uri = match single(q, "redirect_uri") {
        Ok(Some(uri)) if client.redirect_uris.iter().any(|r| r == uri) => uri,
        Ok(Some(_)) => return error_page("redirect_uri is not registered for this client"),
        Ok(None) => return error_page("the redirect_uri parameter is missing"),
        Err(e) => return error_page(&e),
    };

    let state = single(q, "state").ok().flatten();
    let fail = |error: &str, description: &str| {
        let mut params = vec![("error", error), ("error_description", description)];
        params.extend(state.map(|state| ("state", state)));
        redirect(s, redirect_uri, params)
    };
    let params = match AuthorizeParams::parse(q) {
        Ok(params) => params,
        Err((error, description)) => return fail(error, &description),
    };
    if s.config.deny_authorization {
        return fail("access_denied", "the user denied the request");
    }

    let code = random_token();
    s.lock().codes.insert(
        code.clone(),
        CodeGrant {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            code_challenge: params.code_challenge,
            scope: params.scope,
            resource: params.resource,
            expires: Instant::now() + CODE_LIFETIME,
        },
    );
    let mut response_params = vec![("code", code.as_str())];
    response_params.extend(params.state.as_deref().map(|state| ("state", state)));
    redirect(s, redirect_uri, response_params)
}

/// The validated parameters of an authorization request, besides client and redirect URI.
struct AuthorizeParams {
    code_challenge: String,
    /// Optional: OAuth 2.1 §7.5.1 lets PKCE carry the CSRF protection.
    state: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
}

impl AuthorizeParams {
    /// Checks the parameters; the error is an OAuth error code and a description.
    fn parse(q: &[(String, String)]) -> Result<AuthorizeParams, (&'static str, String)> {
        let invalid = |description: &str| ("invalid_request", description.to_owned());
        let param = |name| single(q, name).map_err(|e| ("invalid_request", e));
        if param("response_type")? != Some("code") {
            return Err(invalid("response_type must be code"));
        }
        let Some(code_challenge) = param("code_challenge")? else {
            return Err(invalid("PKCE is required: code_challenge is missing"));
        };
        if !is_s256_challenge(code_challenge) {
            return Err(invalid("code_challenge is not a base64url SHA-256 hash"));
        }
        if param("code_challenge_method")? != Some("S256") {
            return Err(invalid("code_challenge_method must be S256"));
        }
        let state = param("state")?.map(str::to_owned);
        Ok(AuthorizeParams {
            code_challenge: code_challenge.to_owned(),
            state,
            scope: normalize_scope(param("scope")?),
            resource: resource_param(q)?,
        })
    }
}

/// A `302` to the client's redirect URI with these parameters added (plus `iss` when enabled).
fn redirect<'a>(s: &'a Shared, redirect_uri: &str, mut params: Vec<(&str, &'a str)>) -> Response {
    let Ok(mut location) = Url::parse(redirect_uri) else {
        return error_page("the redirect_uri is not a valid URL");
    };
    if s.config.iss_parameter {
        params.push(("iss", &s.issuer));
    }
    location.query_pairs_mut().extend_pairs(params);
    Response::empty(302)
        .header("Location", location.as_str())
        .header("Cache-Control", "no-store")
}

/// A `400` HTML page, for authorization errors that must not redirect.
fn error_page(message: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html><head><title>Authorization error</title></head>\
         <body><h1>Authorization error</h1><p>{}</p></body></html>\n",
        html_escape(message)
    );
    Response::with_body(400, "text/html; charset=utf-8", html)
}

/// `POST {issuer_path}/token` (RFC 6749 §4.1.3, §4.4 and §6; RFC 7523 §2.1), with DPoP
/// proofs when configured (RFC 9449 §5).
pub(super) fn token(s: &Shared, req: &Request) -> Response {
    let Authenticated {
        form,
        mut state,
        client_id,
    } = match authenticated_post(s, req) {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let jkt = if s.config.dpop {
        match super::dpop::check(s, &mut state, req, super::dpop::Endpoint::Token, None) {
            Ok(jkt) => jkt,
            Err(super::dpop::Refusal::Invalid(why)) => {
                return oauth_error(400, "invalid_dpop_proof", &why);
            }
            Err(super::dpop::Refusal::Nonce(nonce)) => {
                return oauth_error(400, "use_dpop_nonce", "a DPoP nonce is required")
                    .header("DPoP-Nonce", &nonce);
            }
        }
    } else {
        None
    };
    let call = TokenCall {
        s,
        client_id: &client_id,
        form: &form,
        jkt,
    };
    let result = match single(&form, "grant_type") {
        Ok(Some("authorization_code")) => redeem_code(&mut state, &call),
        Ok(Some("refresh_token")) => refresh(&mut state, &call),
        Ok(Some("client_credentials")) => super::grants::client_credentials(&mut state, &call),
        Ok(Some(crate::grant::JWT_BEARER)) => super::grants::jwt_bearer(&mut state, &call),
        Ok(Some(crate::device::DEVICE_CODE_GRANT)) => super::device::device_code(&mut state, &call),
        Ok(Some(other)) => Err(TokenError::new(
            "unsupported_grant_type",
            &format!("grant_type {other} is not supported"),
        )),
        Ok(None) => Err(TokenError::new("invalid_request", "grant_type is missing")),
        Err(e) => Err(TokenError::new("invalid_request", &e)),
    };
    match result {
        Ok(body) => Response::json(200, &body)
            .header("Cache-Control", "no-store")
            .header("Pragma", "no-cache"),
        Err(e) => oauth_error(400, e.error, &e.description),
    }
}

/// `grant_type=authorization_code`; the request's DPoP key binds the tokens.
fn redeem_code(state: &mut State, call: &TokenCall<'_>) -> Result<Value, TokenError> {
    let (client_id, form) = (call.client_id, call.form);
    let param = |name| single(form, name).map_err(|e| TokenError::new("invalid_request", &e));
    let Some(code) = param("code")? else {
        return Err(TokenError::new("invalid_request", "code is missing"));
    };
    let invalid_grant = |description: &str| TokenError::new("invalid_grant", description);
    match state.codes.get(code) {
        None => return Err(invalid_grant("unknown, expired or already used code")),
        Some(grant) if grant.client_id != client_id => {
            return Err(invalid_grant("the code was issued to another client"));
        }
        Some(_) => {}
    }
    // Codes are single-use (RFC 6749 §4.1.2): any redemption attempt by its client uses it up.
    let Some(grant) = state.codes.remove(code) else {
        return Err(invalid_grant("unknown, expired or already used code"));
    };
    if Instant::now() >= grant.expires {
        return Err(invalid_grant("the code has expired"));
    }
    if param("redirect_uri")? != Some(grant.redirect_uri.as_str()) {
        return Err(invalid_grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    let Some(verifier) = param("code_verifier")? else {
        return Err(invalid_grant("code_verifier is missing"));
    };
    if !is_valid_verifier(verifier) {
        return Err(invalid_grant(
            "code_verifier must be 43 to 128 unreserved characters",
        ));
    }
    if !pkce_s256_matches(verifier, &grant.code_challenge) {
        return Err(invalid_grant("code_verifier does not match code_challenge"));
    }
    let requested = resource_param(form)?;
    if grant.resource.is_some() && requested != grant.resource {
        return Err(TokenError::new(
            "invalid_target",
            "resource differs from the authorization request's",
        ));
    }
    let resource = grant.resource.or(requested);
    Ok(new_authorization(state, call, grant.scope, resource))
}

/// `grant_type=refresh_token`; a refresh token bound to a DPoP key needs a proof by that key.
fn refresh(state: &mut State, call: &TokenCall<'_>) -> Result<Value, TokenError> {
    let TokenCall {
        s,
        client_id,
        form,
        ref jkt,
    } = *call;
    let param = |name| single(form, name).map_err(|e| TokenError::new("invalid_request", &e));
    let Some(refresh_token) = param("refresh_token")? else {
        return Err(TokenError::new(
            "invalid_request",
            "refresh_token is missing",
        ));
    };
    let grant = match state.refresh_tokens.get(refresh_token) {
        Some(grant) if grant.client_id == client_id => grant.clone(),
        Some(_) => {
            return Err(TokenError::new(
                "invalid_grant",
                "the refresh token was issued to another client",
            ));
        }
        None => {
            if s.config.strict_refresh_reuse
                && let Some(grant) = state.spent_refresh_tokens.get(refresh_token).copied()
            {
                revoke_family(state, grant);
            }
            return Err(TokenError::new(
                "invalid_grant",
                "unknown, revoked or rotated refresh token",
            ));
        }
    };
    if grant.jkt.is_some() && grant.jkt != *jkt {
        return Err(TokenError::new(
            "invalid_dpop_proof",
            "the refresh token is bound to another DPoP key",
        ));
    }
    let scope = match normalize_scope(param("scope")?) {
        None => grant.scope.clone(),
        Some(scope) if has_scopes(grant.scope.as_deref(), &scope) => Some(scope),
        Some(_) => {
            return Err(TokenError::new(
                "invalid_scope",
                "the requested scope exceeds the original grant",
            ));
        }
    };
    let requested = resource_param(form)?;
    if let (Some(requested), Some(granted)) = (&requested, &grant.resource)
        && requested != granted
    {
        return Err(TokenError::new(
            "invalid_target",
            "resource differs from the original grant's",
        ));
    }
    let resource = grant.resource.clone().or(requested);
    let new_refresh_token = if s.config.rotate_refresh_tokens {
        state.refresh_tokens.remove(refresh_token);
        state
            .spent_refresh_tokens
            .insert(refresh_token.to_owned(), grant.grant);
        let new = random_token();
        state.refresh_tokens.insert(new.clone(), grant.clone());
        Some(new)
    } else {
        None
    };
    let access = mint_access_token(state, client_id, scope, resource, grant.grant, jkt.clone());
    Ok(token_response(s, access, new_refresh_token))
}

/// RFC 9700 §4.14.2: a spent refresh token came back, so one of its holders is an attacker;
/// every token of the authorization goes.
fn revoke_family(state: &mut State, grant: u64) {
    state.refresh_tokens.retain(|_, g| g.grant != grant);
    state.access_tokens.retain(|_, g| g.grant != grant);
    state.family_revocations += 1;
}

/// `POST {issuer_path}/revoke` (RFC 7009).
pub(super) fn revoke(s: &Shared, req: &Request) -> Response {
    let Authenticated {
        form,
        mut state,
        client_id,
    } = match authenticated_post(s, req) {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let token = match single(&form, "token") {
        Ok(Some(token)) => token,
        Ok(None) => return oauth_error(400, "invalid_request", "token is missing"),
        Err(e) => return oauth_error(400, "invalid_request", &e),
    };
    state.revoked.push(token.to_owned());
    // Tokens of other clients are left alone; unknown tokens are fine (RFC 7009 §2.2).
    if state
        .access_tokens
        .get(token)
        .is_some_and(|t| t.client_id == client_id)
    {
        state.access_tokens.remove(token);
    } else if let Some(grant) = state
        .refresh_tokens
        .get(token)
        .filter(|t| t.client_id == client_id)
        .map(|t| t.grant)
    {
        // Revoking a refresh token also revokes the access tokens of its grant (§2.1).
        state.refresh_tokens.remove(token);
        state.access_tokens.retain(|_, t| t.grant != grant);
    }
    Response::empty(200)
}

/// Whether `BASE64URL-NOPAD(SHA256(verifier)) == challenge` (RFC 7636 §4.6).
pub(super) fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

/// RFC 7636 §4.1: 43 to 128 characters from `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub(super) fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// An S256 challenge is a base64url-encoded SHA-256 hash: 43 characters, no padding.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_valid_verifier(verifier));
        assert!(is_s256_challenge(challenge));
        assert!(pkce_s256_matches(verifier, challenge));
        assert!(!pkce_s256_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
    }

    #[test]
    fn verifier_syntax() {
        assert!(!is_valid_verifier("short"));
        assert!(!is_valid_verifier(&"a".repeat(129)));
        assert!(!is_valid_verifier(&format!("{}!", "a".repeat(43))));
        assert!(is_valid_verifier(&"a-._~".repeat(10)));
    }
}
