//! PKCE, RFC 7636, with the `S256` method only (OAuth 2.1 §4.1.1, MCP authorization).

use crate::error::{Result, Step};

/// A PKCE code verifier (RFC 7636 §4.1). Not `Clone`: one verifier serves one authorization.
pub struct PkceVerifier(String);

impl PkceVerifier {
    /// A fresh verifier: 32 random bytes, base64url (43 characters, RFC 7636 §4.1).
    ///
    /// # Errors
    /// Only when the operating system has no random source.
    pub fn generate() -> Result<PkceVerifier> {
        crate::secret::random_token(32, Step::Authorization).map(PkceVerifier)
    }

    /// A verifier from a known value (tests and RFC vectors).
    #[doc(hidden)]
    pub fn from_value(value: impl Into<String>) -> PkceVerifier {
        PkceVerifier(value.into())
    }

    /// The verifier, sent once, on the code exchange.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// The `S256` code challenge: BASE64URL(SHA256(ASCII(verifier))) (RFC 7636 §4.2).
    pub fn challenge(&self) -> String {
        s256_challenge(&self.0)
    }
}

impl std::fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PkceVerifier([redacted])")
    }
}

/// The `S256` code challenge of `verifier` (RFC 7636 §4.2).
///
/// ```
/// // RFC 7636 appendix B.
/// assert_eq!(
///     mcp_oauth_client::pkce::s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
///     "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
/// );
/// ```
pub fn s256_challenge(verifier: &str) -> String {
    crate::secret::sha256_base64url(verifier.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let v = PkceVerifier::from_value("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(v.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn generated_verifier_is_valid_and_redacted() {
        let v = PkceVerifier::generate().unwrap();
        assert_eq!(v.secret().len(), 43);
        assert!(
            v.secret()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert!(!format!("{v:?}").contains(v.secret()));
    }
}
