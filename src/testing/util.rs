//! Small helpers shared by the route handlers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// 32 random bytes, base64url without padding: client ids, secrets, codes, tokens, session ids.
pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS refused randomness (practically never). This is a test server: unique values
        // matter more than unpredictable ones, so derive them from a counter and the clock.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = format!(
            "{}:{:?}:{:?}",
            COUNTER.fetch_add(1, Ordering::Relaxed),
            SystemTime::now(),
            std::thread::current().id()
        );
        bytes.copy_from_slice(&Sha256::digest(seed.as_bytes()));
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(super) use crate::local::unix_now;

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space); invalid escapes are kept
/// as they are and invalid UTF-8 is replaced.
pub(super) fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) use crate::callback::html_escape;

/// The value of a parameter that must appear at most once (RFC 6749 §3.1, §3.2).
pub(super) fn single<'a>(
    params: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, String> {
    let mut values = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
    match (values.next(), values.next()) {
        (first, None) => Ok(first.map(String::as_str)),
        _ => Err(format!("the {name} parameter is repeated")),
    }
}

/// Space-separated scopes, normalised: `None` when there are none.
pub(super) fn normalize_scope(scope: Option<&str>) -> Option<String> {
    let scope = scope?.split_whitespace().collect::<Vec<_>>().join(" ");
    (!scope.is_empty()).then_some(scope)
}

/// Whether space-separated `scope` contains every scope in `required`.
pub(super) fn has_scopes(scope: Option<&str>, required: &str) -> bool {
    let granted: Vec<&str> = scope.unwrap_or_default().split_whitespace().collect();
    required.split_whitespace().all(|s| granted.contains(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_are_43_char_base64url() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn decodes_form_text() {
        assert_eq!(form_decode("a%3Ab+c%2"), "a:b c%2");
        assert_eq!(form_decode("%e2%82%ac"), "€");
    }

    #[test]
    fn single_rejects_repeats() {
        let params = vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
            ("b".to_owned(), "3".to_owned()),
        ];
        assert_eq!(single(&params, "a"), Ok(Some("1")));
        assert_eq!(single(&params, "c"), Ok(None));
        assert!(single(&params, "b").is_err());
    }

    #[test]
    fn scope_subsets() {
        assert!(has_scopes(Some("a b c"), "c a"));
        assert!(!has_scopes(Some("a"), "a b"));
        assert!(!has_scopes(None, "a"));
        assert!(has_scopes(None, ""));
        assert_eq!(normalize_scope(Some("  a   b ")), Some("a b".into()));
        assert_eq!(normalize_scope(Some(" ")), None);
    }
}
