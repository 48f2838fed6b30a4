//! The JWTs clients present (RFC 7523): as a client's authentication (`private_key_jwt`,
//! §2.2) and as a grant (the JWT bearer grant, §2.1), checked the same way.

use serde_json::Value;

use super::state::{Shared, State};
use super::util::unix_now;

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
        Some(exp) if exp.saturating_add(LEEWAY) <= now => {
            return Err("the assertion has expired".into());
        }
        Some(_) => {}
    }
    let ahead = |name: &str| {
        claims[name]
            .as_u64()
            .is_some_and(|t| t > now.saturating_add(LEEWAY))
    };
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
