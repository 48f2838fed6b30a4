//! Token revocation (RFC 7009): telling the authorization server a token is no longer needed.

use crate::error::{Result, Step};
use crate::secret::Secret;
use crate::token::ClientEndpoint;

/// Which kind of token is revoked (RFC 7009 §2.1 `token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenTypeHint {
    /// An access token.
    AccessToken,
    /// A refresh token; revoking it also ends the access tokens of its grant at most servers.
    RefreshToken,
}

impl TokenTypeHint {
    /// The RFC 7009 name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
        }
    }
}

/// A revocation request (RFC 7009 §2.1).
#[derive(Debug)]
#[non_exhaustive]
pub struct RevocationRequest<'a> {
    /// The authorization server's `revocation_endpoint`, with the client the token was issued
    /// to, which authenticates as at the token endpoint (a DPoP key is not used here).
    pub endpoint: ClientEndpoint<'a>,
    /// The token to revoke.
    pub token: &'a Secret,
    /// What kind of token it is.
    pub hint: TokenTypeHint,
}

impl<'a> RevocationRequest<'a> {
    /// The revocation of `token`, a `hint`, at `endpoint`.
    pub fn new(
        endpoint: ClientEndpoint<'a>,
        token: &'a Secret,
        hint: TokenTypeHint,
    ) -> RevocationRequest<'a> {
        RevocationRequest {
            endpoint,
            token,
            hint,
        }
    }
}

/// Revokes a token. The server answers 200 also for tokens it does not know (RFC 7009 §2.2).
/// Redirects are not followed.
///
/// # Errors
/// Transport failures and the server's OAuth error (`unsupported_token_type`,
/// `invalid_client`, …), in [`Step::Revocation`].
pub fn revoke(agent: &ureq::Agent, req: &RevocationRequest<'_>) -> Result<()> {
    let form = vec![
        ("token", req.token.secret()),
        ("token_type_hint", req.hint.as_str()),
    ];
    req.endpoint
        .dpop(None)
        .post(agent, form, Step::Revocation)
        .map(drop)
}
