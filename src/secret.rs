//! Secret values (tokens, client secrets, codes) that never print.
//!
//! RFC 6749 §10.3 and RFC 9700 §4.14: tokens must not leak. `Secret` has a `Debug` that prints
//! `[redacted]`, no `Display`, and no `PartialEq` (compare with [`constant_time_eq`] instead).

use std::fmt;

use crate::error::{Error, ErrorKind, Result, Step};

/// A string that must never appear in logs, errors or `Debug` output.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value. Every call site is a place where the secret leaves the wrapper.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// base64url (no padding) of the SHA-256 of `data`: PKCE's S256 challenge, DPoP's `ath`, a
/// JWK thumbprint, a refresh mark's token digest.
pub(crate) fn sha256_base64url(data: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(data))
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `n` bytes from the operating system's random source, base64url-encoded without padding.
///
/// Fails only where the platform has no entropy source; there is no safe fallback for a
/// security token, so the step fails.
pub(crate) fn random_token(n: usize, step: Step) -> Result<String> {
    use base64::Engine as _;
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            step,
            "the operating system's random source failed",
        )
        .with_source(e.to_string())
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.secret(), "hunter2");
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn random_tokens_differ_and_have_expected_length() {
        let a = random_token(32, Step::Authorization).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32, Step::Authorization).unwrap());
    }
}
