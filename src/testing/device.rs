//! The device authorization grant (RFC 8628) on the test server: the device authorization
//! endpoint, a verification page that approves (or denies) at once, and the polling grant with
//! `authorization_pending`, `slow_down`, `expired_token` and `access_denied`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::http::{Request, Response};
use super::issue::{TokenCall, TokenError, oauth_error};
use super::state::{DeviceGrant, Shared, State, require_method};
use super::util::{html_escape, normalize_scope, random_token, single};

/// `POST {issuer_path}/device_authorization` (RFC 8628 §3.1): a device code and a user code.
pub(super) fn device_authorization(s: &Shared, req: &Request) -> Response {
    let call = match super::issue::authenticated_post(s, req) {
        Ok(call) => call,
        Err(response) => return response,
    };
    let (form, mut state, client_id) = (call.form, call.state, call.client_id);
    let scope = match single(&form, "scope") {
        Ok(scope) => normalize_scope(scope),
        Err(e) => return oauth_error(400, "invalid_request", &e),
    };
    let resource = match super::issue::resource_param(&form) {
        Ok(r) => r,
        Err((error, description)) => return oauth_error(400, error, &description),
    };
    let device_code = random_token();
    let user_code = user_code();
    let config = &s.config;
    let lifetime = config
        .device_code_lifetime
        .unwrap_or(config.device_code_expires_in);
    state.device_codes.insert(
        device_code.clone(),
        DeviceGrant {
            client_id,
            user_code: user_code.clone(),
            scope,
            resource,
            expires: Instant::now() + Duration::from_secs(lifetime),
            decision: None,
            slowed: false,
        },
    );
    let verification = s.endpoint_url("device");
    let body = json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification,
        "verification_uri_complete": format!("{verification}?user_code={user_code}"),
        "expires_in": config.device_code_expires_in,
        "interval": config.device_interval,
    });
    Response::json(200, &body).header("Cache-Control", "no-store")
}

/// Eight letters in two groups, from an alphabet without vowels (RFC 8628 §6.1).
fn user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let random = random_token();
    let letters: String = random
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .take(8)
        .collect();
    format!("{}-{}", &letters[..4], &letters[4..])
}

/// `GET {issuer_path}/device?user_code=…[&deny=1]`: the person at the verification page,
/// approving (or, with `deny`, refusing) at once.
pub(super) fn verification_page(s: &Shared, req: &Request) -> Response {
    if let Err(response) = require_method(req, &["GET"]) {
        return response;
    }
    let code = single(&req.query, "user_code")
        .ok()
        .flatten()
        .unwrap_or_default();
    let deny = single(&req.query, "deny").ok().flatten().is_some();
    let mut state = s.lock();
    let found = state
        .device_codes
        .values_mut()
        .find(|g| g.user_code.eq_ignore_ascii_case(code) && g.decision.is_none());
    let (status, text) = match found {
        Some(grant) => {
            grant.decision = Some(!deny);
            (
                200,
                if deny {
                    "Denied."
                } else {
                    "Approved. You can close this page."
                },
            )
        }
        None => (400, "That code is not waiting for approval."),
    };
    let html = format!(
        "<!DOCTYPE html>\n<html><head><title>Device login</title></head><body><h1>Device login</h1>\
         <p>{}</p></body></html>\n",
        html_escape(text)
    );
    Response::with_body(status, "text/html; charset=utf-8", html)
}

/// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4, §3.5).
pub(super) fn device_code(state: &mut State, call: &TokenCall<'_>) -> Result<Value, TokenError> {
    let code = match single(call.form, "device_code") {
        Ok(Some(code)) => code,
        Ok(None) => return Err(TokenError::new("invalid_request", "device_code is missing")),
        Err(e) => return Err(TokenError::new("invalid_request", &e)),
    };
    let grant = match state.device_codes.get_mut(code) {
        Some(grant) if grant.client_id == call.client_id => grant,
        _ => return Err(TokenError::new("invalid_grant", "unknown device_code")),
    };
    if Instant::now() >= grant.expires {
        state.device_codes.remove(code);
        return Err(TokenError::new(
            "expired_token",
            "the device code has expired",
        ));
    }
    if call.s.config.device_slow_down && !grant.slowed {
        grant.slowed = true;
        return Err(TokenError::new("slow_down", "polling too often"));
    }
    match grant.decision {
        None => Err(TokenError::new(
            "authorization_pending",
            "the person has not finished yet",
        )),
        Some(false) => {
            state.device_codes.remove(code);
            Err(TokenError::new("access_denied", "the person said no"))
        }
        Some(true) => {
            let Some(grant) = state.device_codes.remove(code) else {
                return Err(TokenError::new("invalid_grant", "unknown device_code"));
            };
            Ok(super::issue::new_authorization(
                state,
                call,
                grant.scope,
                grant.resource,
            ))
        }
    }
}
