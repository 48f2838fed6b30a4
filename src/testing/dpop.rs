//! DPoP proofs as the test server checks them (RFC 9449 §4.3): at the token endpoint, where a
//! valid proof binds the tokens to its key, and at the MCP endpoint, where a bound token needs
//! a proof by that key carrying the token's hash. Nonces, when configured, are required at
//! both (§8, §9), each endpoint its own.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use super::http::Request;
use super::state::{Shared, State};
use super::util::unix_now;

/// How far a proof's `iat` may be from the server's clock, in seconds.
const IAT_WINDOW: u64 = 300;

/// Why a proof was refused.
pub(super) enum Refusal {
    /// Malformed, badly signed, replayed, or not for this request: the description.
    Invalid(String),
    /// Valid, but without the endpoint's current nonce: send it (`use_dpop_nonce`).
    Nonce(String),
}

/// Which endpoint checks a proof.
#[derive(Clone, Copy)]
pub(super) enum Endpoint {
    Token,
    Mcp,
}

/// Checks the request's DPoP proof for `endpoint`; `access_token` is the token presented with
/// it at the MCP endpoint. `Ok(None)` when there is no proof; else the thumbprint of its key.
pub(super) fn check(
    s: &Shared,
    state: &mut State,
    req: &Request,
    endpoint: Endpoint,
    access_token: Option<&str>,
) -> Result<Option<String>, Refusal> {
    let invalid = |why: &str| Refusal::Invalid(why.to_owned());
    let mut proofs = req.headers.iter().filter(|(k, _)| k == "dpop");
    let Some((_, proof)) = proofs.next() else {
        return Ok(None);
    };
    if proofs.next().is_some() || proof.contains(',') {
        return Err(invalid("more than one DPoP proof"));
    }
    let (header, _, _, _) =
        crate::jwt::decode_unverified(proof).ok_or_else(|| invalid("not a compact JWS"))?;
    if header["typ"] != "dpop+jwt" {
        return Err(invalid("typ must be dpop+jwt"));
    }
    let jwk = &header["jwk"];
    let private = ["d", "p", "q", "dp", "dq", "qi"];
    if !jwk.is_object() || private.iter().any(|m| jwk.get(m).is_some()) {
        return Err(invalid("jwk must be a public key"));
    }
    let (_, claims) =
        crate::jwt::verify(proof, jwk).ok_or_else(|| invalid("the signature does not verify"))?;
    let (method, htu) = match endpoint {
        Endpoint::Token => ("POST", s.endpoint_url("token")),
        Endpoint::Mcp => (req.method.as_str(), s.mcp_url.to_string()),
    };
    if claims["htm"] != method {
        return Err(invalid("htm is not the request's method"));
    }
    if claims["htu"] != htu.as_str() {
        return Err(invalid("htu is not the request's URL"));
    }
    let iat = claims["iat"]
        .as_u64()
        .ok_or_else(|| invalid("iat is missing"))?;
    if iat.abs_diff(unix_now()) > IAT_WINDOW {
        return Err(invalid("iat is too far from now"));
    }
    if let Some(lag) = s.config.dpop_strict_clock_lag_ms {
        // A clock `lag` ms behind, read in whole seconds, with no leeway for the future.
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if iat > millis.saturating_sub(lag) / 1000 {
            return Err(invalid("iat is in the future"));
        }
    }
    if let Some(token) = access_token {
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        if claims["ath"] != ath.as_str() {
            return Err(invalid("ath is not the hash of the access token"));
        }
    }
    let Some(jti) = claims["jti"].as_str().filter(|j| !j.is_empty()) else {
        return Err(invalid("jti is missing"));
    };
    if !state.seen_jtis.insert(jti.to_owned()) {
        return Err(invalid("the jti was used before: a replayed proof"));
    }
    if s.config.dpop_nonces {
        let expected = match endpoint {
            Endpoint::Token => &state.dpop_nonces.token,
            Endpoint::Mcp => &state.dpop_nonces.mcp,
        };
        if claims["nonce"] != expected.as_str() {
            let nonce = expected.clone();
            match endpoint {
                Endpoint::Token => state.nonce_challenges.token += 1,
                Endpoint::Mcp => state.nonce_challenges.mcp += 1,
            }
            return Err(Refusal::Nonce(nonce));
        }
    }
    Ok(Some(crate::jwt::jwk_thumbprint(jwk)))
}
