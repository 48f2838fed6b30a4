//! JSON Web Tokens as this client signs them (RFC 7515 compact JWS, RFC 7519 claims, RFC 7517
//! and RFC 7638 public keys): client assertions (RFC 7523) and DPoP proofs (RFC 9449).
//!
//! Two algorithms: `ES256` (ECDSA P-256 with SHA-256, the one DPoP keys use) and `RS256`
//! (RSASSA-PKCS1-v1_5 with SHA-256). The keys come from `ring`, already in the tree through
//! rustls; a JWT is small enough to build by hand with base64 and serde_json.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, KeyPair as _};
use serde_json::{Value, json};

use crate::error::{Error, ErrorKind, Result, Step};
use crate::secret::Secret;

/// A signing algorithm of this client.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA with P-256 and SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
}

impl Algorithm {
    /// The JWA name (`ES256`, `RS256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
        }
    }
}

/// A private key that signs JWTs. `Debug` shows the algorithm only.
pub struct SigningKey {
    inner: Inner,
    /// The PKCS#8 document, kept to persist a generated key (DPoP).
    pkcs8: Option<Secret>,
}

enum Inner {
    Es256(signature::EcdsaKeyPair),
    Rs256(signature::RsaKeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.algorithm().as_str())
            .finish_non_exhaustive()
    }
}

fn key_error(step: Step, message: &str) -> Error {
    Error::new(ErrorKind::Config, step, message)
}

impl SigningKey {
    /// A new ES256 key (for DPoP: one per session).
    ///
    /// # Errors
    /// When the system has no randomness.
    pub fn generate_es256() -> Result<SigningKey> {
        let rng = ring::rand::SystemRandom::new();
        let doc = signature::EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .map_err(|_| key_error(Step::Authorization, "cannot generate a key"))?;
        SigningKey::from_pkcs8_der(doc.as_ref(), Step::Authorization)
    }

    /// A key from a PKCS#8 DER document (an EC P-256 or an RSA key).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the document is neither.
    pub fn from_pkcs8_der(der: &[u8], step: Step) -> Result<SigningKey> {
        let rng = ring::rand::SystemRandom::new();
        let inner = match signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der,
            &rng,
        ) {
            Ok(k) => Inner::Es256(k),
            Err(_) => Inner::Rs256(signature::RsaKeyPair::from_pkcs8(der).map_err(|_| {
                key_error(
                    step,
                    "the key is neither a P-256 EC key nor an RSA key (PKCS#8)",
                )
            })?),
        };
        let pkcs8 = URL_SAFE_NO_PAD.encode(der);
        SigningKey {
            inner,
            pkcs8: Some(Secret::new(pkcs8)),
        }
        .checked(step)
    }

    /// The key, once it has signed: `ring` loads some inconsistent keys (an RSA key whose
    /// parts do not match) that then fail every signature. Better refused now, naming the
    /// key, than at the first token request.
    fn checked(self, step: Step) -> Result<SigningKey> {
        self.sign(json!({}), &json!({}), step).map_err(|_| {
            key_error(
                step,
                "the key cannot sign: its parts do not belong together",
            )
        })?;
        Ok(self)
    }

    /// A key from PEM text: `PRIVATE KEY` (PKCS#8, EC P-256 or RSA) or `RSA PRIVATE KEY`
    /// (PKCS#1).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the text holds no such key.
    pub fn from_pem(pem: &str, step: Step) -> Result<SigningKey> {
        let (label, der) = parse_pem(pem)
            .ok_or_else(|| key_error(step, "the key file is not a PEM private key"))?;
        match label.as_str() {
            "PRIVATE KEY" => SigningKey::from_pkcs8_der(&der, step),
            "RSA PRIVATE KEY" => {
                let key = signature::RsaKeyPair::from_der(&der)
                    .map_err(|_| key_error(step, "the RSA key (PKCS#1) is not usable"))?;
                SigningKey {
                    inner: Inner::Rs256(key),
                    pkcs8: None,
                }
                .checked(step)
            }
            _ => Err(key_error(
                step,
                "the PEM block is not a PRIVATE KEY (PKCS#8) nor an RSA PRIVATE KEY; convert \
                 an EC key with `openssl pkcs8 -topk8 -nocrypt`",
            )),
        }
    }

    /// The key's PKCS#8 document, base64url, when it was made from one (to persist it).
    pub(crate) fn pkcs8(&self) -> Option<&Secret> {
        self.pkcs8.as_ref()
    }

    /// The key from its persisted form ([`pkcs8`](Self::pkcs8)).
    pub(crate) fn from_persisted(pkcs8: &Secret, step: Step) -> Result<SigningKey> {
        let der = URL_SAFE_NO_PAD
            .decode(pkcs8.secret())
            .map_err(|_| key_error(step, "the stored key is not base64url"))?;
        SigningKey::from_pkcs8_der(&der, step)
    }

    /// The algorithm it signs with.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            Inner::Es256(_) => Algorithm::Es256,
            Inner::Rs256(_) => Algorithm::Rs256,
        }
    }

    /// The public key as a JWK (RFC 7517), members in the order RFC 7638 hashes them.
    pub fn public_jwk(&self) -> Value {
        match &self.inner {
            Inner::Es256(k) => {
                // An uncompressed point: 0x04 || x || y, 32 bytes each.
                let point = k.public_key().as_ref();
                json!({
                    "crv": "P-256",
                    "kty": "EC",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                })
            }
            Inner::Rs256(k) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                json!({
                    "e": URL_SAFE_NO_PAD.encode(&c.e),
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(&c.n),
                })
            }
        }
    }

    /// The RFC 7638 thumbprint of the public key (SHA-256, base64url): DPoP's `jkt`.
    pub fn thumbprint(&self) -> String {
        jwk_thumbprint(&self.public_jwk())
    }

    /// Signs `header` and `claims` (`alg` is set here) into a compact JWS.
    ///
    /// # Errors
    /// When signing fails (no randomness for ECDSA).
    pub fn sign(&self, mut header: Value, claims: &Value, step: Step) -> Result<String> {
        header["alg"] = self.algorithm().as_str().into();
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = ring::rand::SystemRandom::new();
        let fail = |_| Error::new(ErrorKind::Config, step, "cannot sign a JWT");
        let signature = match &self.inner {
            Inner::Es256(k) => k
                .sign(&rng, input.as_bytes())
                .map_err(fail)?
                .as_ref()
                .to_vec(),
            Inner::Rs256(k) => {
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut out,
                )
                .map_err(fail)?;
                out
            }
        };
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The RFC 7638 thumbprint of a public JWK: SHA-256 over its required members in
/// lexicographic order, base64url.
///
/// ```
/// // RFC 7638 §3.1.
/// let jwk = serde_json::json!({
///     "kty": "RSA",
///     "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
///     "e": "AQAB",
///     "alg": "RS256",
///     "kid": "2011-04-29"
/// });
/// assert_eq!(
///     mcp_oauth_client::jwt::jwk_thumbprint(&jwk),
///     "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
/// );
/// ```
pub fn jwk_thumbprint(jwk: &Value) -> String {
    let member = |name: &str| jwk[name].as_str().unwrap_or_default().to_owned();
    let canonical = match jwk["kty"].as_str() {
        Some("EC") => json!({
            "crv": member("crv"), "kty": "EC", "x": member("x"), "y": member("y"),
        }),
        Some("RSA") => json!({"e": member("e"), "kty": "RSA", "n": member("n")}),
        Some("OKP") => json!({"crv": member("crv"), "kty": "OKP", "x": member("x")}),
        _ => json!({"kty": member("kty")}),
    };
    // serde_json's maps are sorted by key (no `preserve_order` feature): the order RFC 7638 wants.
    crate::secret::sha256_base64url(canonical.to_string().as_bytes())
}

/// The first PEM block of `text`: its label and its decoded DER. Pure; fuzzed.
pub(crate) fn parse_pem(text: &str) -> Option<(String, Vec<u8>)> {
    let begin = text.find("-----BEGIN ")?;
    let rest = &text[begin + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_owned();
    let body = &rest[label_end + 5..];
    let end = body.find(&format!("-----END {label}-----"))?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some((label, der))
}

/// The parts of a compact JWS, decoded but not verified: header, claims, signature bytes and
/// the signing input. For the tests' server and the fuzz targets. Pure.
pub fn decode_unverified(jws: &str) -> Option<(Value, Value, Vec<u8>, String)> {
    let mut parts = jws.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let signature = URL_SAFE_NO_PAD.decode(s).ok()?;
    (header.is_object() && claims.is_object())
        .then(|| (header, claims, signature, format!("{h}.{c}")))
}

/// Verifies a compact JWS with the public JWK `jwk` (EC P-256 or RSA), returning its header
/// and claims. For the tests' server. Pure.
pub fn verify(jws: &str, jwk: &Value) -> Option<(Value, Value)> {
    let (header, claims, sig, input) = decode_unverified(jws)?;
    let b64 = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str()?).ok();
    let ok = match (header["alg"].as_str()?, jwk["kty"].as_str()?) {
        ("ES256", "EC") => {
            let mut point = vec![4u8];
            point.extend(b64("x")?);
            point.extend(b64("y")?);
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(input.as_bytes(), &sig)
                .is_ok()
        }
        ("RS256", "RSA") => signature::RsaPublicKeyComponents {
            n: b64("n")?,
            e: b64("e")?,
        }
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            input.as_bytes(),
            &sig,
        )
        .is_ok(),
        _ => false,
    };
    ok.then_some((header, claims))
}

/// A random `jti` (128 bits, base64url).
pub(crate) fn random_jti(step: Step) -> Result<String> {
    crate::secret::random_token(16, step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn es256_signs_and_verifies_and_round_trips_through_its_pkcs8() {
        let key = SigningKey::generate_es256().unwrap();
        let jws = key
            .sign(
                json!({"typ": "dpop+jwt"}),
                &json!({"jti": "x"}),
                Step::Refresh,
            )
            .unwrap();
        let (header, claims) = verify(&jws, &key.public_jwk()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(claims["jti"], "x");
        let again = SigningKey::from_persisted(key.pkcs8().unwrap(), Step::Refresh).unwrap();
        assert_eq!(again.thumbprint(), key.thumbprint());
        // Another key does not verify it.
        let other = SigningKey::generate_es256().unwrap();
        assert!(verify(&jws, &other.public_jwk()).is_none());
        assert!(!format!("{key:?}").contains(key.pkcs8().unwrap().secret()));
    }

    #[test]
    fn pem_blocks() {
        let pem = "junk\n-----BEGIN PRIVATE KEY-----\nAAEC\nAw==\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            parse_pem(pem),
            Some(("PRIVATE KEY".to_owned(), vec![0, 1, 2, 3]))
        );
        assert!(parse_pem("-----BEGIN X-----\nAA==\n-----END Y-----").is_none());
        assert!(parse_pem("no pem").is_none());
        let e = SigningKey::from_pem(pem, Step::Refresh).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn malformed_tokens_do_not_decode() {
        for jws in ["", "a.b", "a.b.c.d", "e30.e30.!!", "W10.e30.AA"] {
            assert!(decode_unverified(jws).is_none(), "{jws}");
        }
        assert!(decode_unverified("e30.e30.AA").is_some());
    }
}
