//! The checks on an authorization response (RFC 6749 §4.1.2, §10.12; RFC 9207 §2.4; MCP
//! authorization): `state`, `iss`, then the code or the error. Pure and fuzzed.

use crate::error::{Error, ErrorKind, Step};
use crate::secret::{Secret, constant_time_eq};

/// What an authorization response must match. `Debug` hides the `state`.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct CallbackExpectation<'a> {
    /// The `state` sent on the authorization request.
    pub state: &'a str,
    /// The issuer of the authorization server the request went to.
    pub issuer: &'a str,
    /// The server advertised `authorization_response_iss_parameter_supported` (RFC 9207 §3).
    pub iss_required: bool,
}

impl<'a> CallbackExpectation<'a> {
    /// A response to the request that sent `state` to the authorization server `issuer`;
    /// `iss_required` when the server advertised `authorization_response_iss_parameter_supported`.
    pub fn new(state: &'a str, issuer: &'a str, iss_required: bool) -> CallbackExpectation<'a> {
        CallbackExpectation {
            state,
            issuer,
            iss_required,
        }
    }
}

impl std::fmt::Debug for CallbackExpectation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackExpectation")
            .field("state", &"[redacted]")
            .field("issuer", &self.issuer)
            .field("iss_required", &self.iss_required)
            .finish()
    }
}

/// The verdict on one authorization response.
#[derive(Debug)]
#[non_exhaustive]
pub enum CallbackOutcome {
    /// The right `state` and a code: redeem it.
    Code(Secret),
    /// The right `state` and an error (or an `iss` mismatch): the flow ends with this error.
    Failed(Error),
    /// Not the response we wait for (no or wrong `state`): answer and keep waiting.
    Ignored(&'static str),
}

/// Checks an authorization response's parameters (RFC 6749 §4.1.2, §10.12; RFC 9207 §2.4).
///
/// The `state` is compared in constant time. The `iss` table, with no normalisation:
/// present → must equal the issuer; absent → an error when the server advertised it. An
/// `error_description` that echoes the `state` or a `code` has them removed.
pub fn validate_callback(
    params: &[(String, String)],
    expect: &CallbackExpectation<'_>,
) -> CallbackOutcome {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get("state") {
        Some(s) if constant_time_eq(s.as_bytes(), expect.state.as_bytes()) => {}
        Some(_) => return CallbackOutcome::Ignored("the state does not match this login"),
        None => return CallbackOutcome::Ignored("the request carries no state"),
    }
    let refuse =
        |msg: &str| CallbackOutcome::Failed(Error::new(ErrorKind::Refused, Step::Callback, msg));
    match get("iss") {
        Some(iss) if iss != expect.issuer => {
            return refuse(
                "the authorization response's iss is not the expected issuer (RFC 9207 mix-up defence)",
            );
        }
        None if expect.iss_required => {
            return refuse(
                "the authorization server advertises RFC 9207 but its response has no iss",
            );
        }
        _ => {}
    }
    if let Some(code) = get("error") {
        let secrets = [expect.state, get("code").unwrap_or("")];
        let description = get("error_description").map(|d| crate::error::redact(d, &secrets));
        return CallbackOutcome::Failed(Error::oauth(
            Step::Callback,
            &crate::error::redact(code, &secrets),
            description.as_deref(),
        ));
    }
    match get("code") {
        Some(code) if !code.is_empty() => CallbackOutcome::Code(Secret::new(code)),
        _ => refuse("the authorization response has neither code nor error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::test_params as params;

    const EXPECT: CallbackExpectation<'static> = CallbackExpectation {
        state: "st",
        issuer: "https://as.example.com",
        iss_required: false,
    };

    #[test]
    fn debug_hides_the_state() {
        let expect = CallbackExpectation {
            state: "SECRETSTATE",
            ..EXPECT
        };
        assert!(!format!("{expect:?}").contains("SECRET"));
    }

    #[test]
    fn an_echoed_state_or_code_is_removed_from_the_error() {
        let q = "error=server_error&state=st&code=CODE1&error_description=bad+st+and+CODE1";
        match validate_callback(&params(q), &EXPECT) {
            CallbackOutcome::Failed(e) => {
                let text = format!("{e:#} {e:?}");
                assert_eq!(e.oauth_description(), Some("bad [redacted] and [redacted]"));
                assert!(!text.contains("CODE1"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn state_is_checked_first() {
        assert!(matches!(
            validate_callback(&params("code=c&state=other"), &EXPECT),
            CallbackOutcome::Ignored(_)
        ));
        assert!(matches!(
            validate_callback(&params("code=c"), &EXPECT),
            CallbackOutcome::Ignored(_)
        ));
        match validate_callback(&params("code=c&state=st"), &EXPECT) {
            CallbackOutcome::Code(c) => assert_eq!(c.secret(), "c"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_are_reported_with_their_code() {
        match validate_callback(&params("error=access_denied&state=st"), &EXPECT) {
            CallbackOutcome::Failed(e) => assert!(e.is_access_denied()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rfc9207_iss_table() {
        let required = CallbackExpectation {
            iss_required: true,
            ..EXPECT
        };
        let is_code = |q: &str, e: &CallbackExpectation<'_>| {
            matches!(validate_callback(&params(q), e), CallbackOutcome::Code(_))
        };
        // Advertised and present and equal: accepted.
        assert!(is_code(
            "code=c&state=st&iss=https%3A%2F%2Fas.example.com",
            &required
        ));
        // Advertised and absent: refused.
        assert!(!is_code("code=c&state=st", &required));
        // Not advertised and absent: accepted.
        assert!(is_code("code=c&state=st", &EXPECT));
        // Present and different, advertised or not, no normalisation: refused.
        for iss in [
            "https://evil.example.com",
            "https://as.example.com/",
            "HTTPS://as.example.com",
        ] {
            let q = format!(
                "code=c&state=st&iss={}",
                url::form_urlencoded::byte_serialize(iss.as_bytes()).collect::<String>()
            );
            assert!(!is_code(&q, &EXPECT), "{iss}");
            assert!(!is_code(&q, &required), "{iss}");
        }
        // A mismatched iss wins over an error parameter.
        match validate_callback(&params("error=access_denied&state=st&iss=x"), &EXPECT) {
            CallbackOutcome::Failed(e) => assert_eq!(e.kind(), ErrorKind::Refused),
            other => panic!("{other:?}"),
        }
    }
}
