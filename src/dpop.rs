//! DPoP: sender-constrained tokens (RFC 9449).
//!
//! A session that uses DPoP holds one ES256 key pair ([`Dpop`]); every token request and every
//! request with a DPoP-bound access token carries a fresh proof, a JWT signed with that key:
//! `typ` `dpop+jwt`, the public key in `jwk`, and `jti` (unique), `htm` (the method), `htu`
//! (the URL without query or fragment), `iat`, and on resource requests `ath` (the hash of the
//! access token). A server may ask for a nonce (`use_dpop_nonce` with a `DPoP-Nonce` header);
//! the nonce is remembered per server origin and the request made again, once.
//!
//! The key is kept with the tokens (the file store writes it 0600), so that tokens bound to
//! it stay usable after a restart.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::json;
use url::Url;

use crate::error::{Result, Step};
use crate::jwt::SigningKey;
use crate::secret::Secret;

/// How many seconds a proof's `iat` is set back from this machine's clock. Some servers compare
/// `iat` in whole seconds with no leeway for the future, and refuse a proof made a fraction of
/// a second "ahead" of a clock that lags ours by less than a second; every server allows some
/// past (RFC 9449 §11.1 leaves the window to them, minutes in practice).
pub const IAT_BACKDATE: u64 = 1;

/// The request header that carries a proof (RFC 9449 §4.1).
pub const DPOP_HEADER: &str = "DPoP";
/// The response header with a server-supplied nonce (RFC 9449 §8, §9).
pub const NONCE_HEADER: &str = "DPoP-Nonce";

/// A DPoP key and the nonces servers gave for it.
pub struct Dpop {
    key: SigningKey,
    nonces: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Dpop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dpop")
            .field("jkt", &self.key.thumbprint())
            .finish_non_exhaustive()
    }
}

impl Dpop {
    /// DPoP with `key` (ES256 for a generated one).
    pub fn new(key: SigningKey) -> Dpop {
        Dpop {
            key,
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// DPoP with a new ES256 key.
    ///
    /// # Errors
    /// When the system has no randomness.
    pub fn generate() -> Result<Dpop> {
        SigningKey::generate_es256().map(Dpop::new)
    }

    /// The key that signs the proofs.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The key in its stored form (PKCS#8, base64url), when it has one.
    pub(crate) fn persisted_key(&self) -> Option<&Secret> {
        self.key.pkcs8()
    }

    /// The thumbprint of the key (`cnf.jkt` in the tokens bound to it).
    pub fn thumbprint(&self) -> String {
        self.key.thumbprint()
    }

    /// A fresh proof for a `method` request to `url`: for a request with a DPoP-bound access
    /// token, `access_token` adds its hash (`ath`). The nonce last given by `url`'s origin
    /// goes in too.
    ///
    /// # Errors
    /// When signing fails.
    pub fn proof(
        &self,
        method: &str,
        url: &Url,
        access_token: Option<&str>,
        step: Step,
    ) -> Result<String> {
        let mut claims = json!({
            "jti": crate::jwt::random_jti(step)?,
            "htm": method,
            "htu": htu(url),
            "iat": crate::local::unix_now().saturating_sub(IAT_BACKDATE),
        });
        if let Some(token) = access_token {
            claims["ath"] = ath(token).into();
        }
        if let Some(nonce) = self.nonce_for(url) {
            claims["nonce"] = nonce.into();
        }
        let header = json!({"typ": "dpop+jwt", "jwk": self.key.public_jwk()});
        self.key.sign(header, &claims, step)
    }

    /// Remembers `nonce`, given by `url`'s origin, for the next proofs to that origin. Returns
    /// whether it is new (a request refused for want of it is worth making again).
    pub fn remember_nonce(&self, url: &Url, nonce: &str) -> bool {
        let nonce = nonce.trim();
        if nonce.is_empty() || !nonce.bytes().all(|b| b.is_ascii_graphic()) {
            return false;
        }
        let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        nonces.insert(origin(url), nonce.to_owned()).as_deref() != Some(nonce)
    }

    fn nonce_for(&self, url: &Url) -> Option<String> {
        let nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        nonces.get(&origin(url)).cloned()
    }
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// The `htu` of a request to `url`: without query and fragment (RFC 9449 §4.2).
pub fn htu(url: &Url) -> String {
    let mut htu = url.clone();
    htu.set_query(None);
    htu.set_fragment(None);
    htu.to_string()
}

/// The `ath` of an access token: base64url of its SHA-256 (RFC 9449 §4.2).
///
/// ```
/// // RFC 9449 §7.1's example token and proof.
/// assert_eq!(
///     mcp_oauth_client::dpop::ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
///     "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
/// );
/// ```
pub fn ath(access_token: &str) -> String {
    crate::secret::sha256_base64url(access_token.as_bytes())
}

/// True when a 401 from a resource server asks for a DPoP nonce: a `DPoP` challenge with
/// `error="use_dpop_nonce"` (RFC 9449 §9).
pub fn is_nonce_challenge(www_authenticate: &[crate::www_authenticate::Challenge]) -> bool {
    www_authenticate
        .iter()
        .any(|c| c.scheme.eq_ignore_ascii_case("dpop") && c.error() == Some("use_dpop_nonce"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_carry_the_claims_and_a_fresh_jti() {
        let dpop = Dpop::generate().unwrap();
        let url = Url::parse("https://as.example/token?x=1#f").unwrap();
        let a = dpop.proof("POST", &url, None, Step::Refresh).unwrap();
        let b = dpop
            .proof("POST", &url, Some("tok"), Step::Refresh)
            .unwrap();
        let (header, claims) = crate::jwt::verify(&a, &dpop.key().public_jwk()).unwrap();
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert!(header["jwk"].get("d").is_none());
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "https://as.example/token");
        assert!(claims.get("ath").is_none() && claims.get("nonce").is_none());
        let (_, claims_b) = crate::jwt::verify(&b, &dpop.key().public_jwk()).unwrap();
        assert_ne!(claims["jti"], claims_b["jti"]);
        assert_eq!(claims_b["ath"], ath("tok"));
    }

    #[test]
    fn nonces_are_per_origin() {
        let dpop = Dpop::generate().unwrap();
        let token = Url::parse("https://as.example/token").unwrap();
        let mcp = Url::parse("https://mcp.example/mcp").unwrap();
        assert!(dpop.remember_nonce(&token, "n1"));
        assert!(!dpop.remember_nonce(&token, "n1"), "not new");
        assert!(!dpop.remember_nonce(&token, "bad\nnonce"));
        let p = dpop.proof("POST", &token, None, Step::Refresh).unwrap();
        let (_, c) = crate::jwt::verify(&p, &dpop.key().public_jwk()).unwrap();
        assert_eq!(c["nonce"], "n1");
        let p = dpop.proof("POST", &mcp, Some("t"), Step::Request).unwrap();
        let (_, c) = crate::jwt::verify(&p, &dpop.key().public_jwk()).unwrap();
        assert!(c.get("nonce").is_none());
    }
}
