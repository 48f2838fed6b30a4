//! Whether a login binds its tokens to a DPoP key (RFC 9449), and whether cached tokens suit
//! the session. The authorization server and the MCP server are often different products: a
//! token is bound only where both take DPoP, since a bound token is worth nothing to an MCP
//! server that takes `Bearer` alone (RFC 9449 §7.1, RFC 9728 §2).

use crate::discovery::ResourceMetadata;
use crate::error::{Error, ErrorKind, Result, Step};
use crate::www_authenticate::Challenge;

/// The proof algorithm this crate signs with.
const ALG: &str = "ES256";

/// The session's DPoP setting ([`SessionBuilder::dpop`](crate::SessionBuilder::dpop)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Bind where the authorization server and the MCP server both take DPoP (the default).
    Auto,
    /// Bind wherever the authorization server does.
    Always,
    /// Never bind.
    Never,
}

/// Which token schemes the challenges of a 401 offer (RFC 6750 §3, RFC 9449 §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Offered {
    pub(crate) bearer: bool,
    pub(crate) dpop: bool,
}

impl Offered {
    /// The token schemes among `challenges`; `None` when they offer neither.
    pub(crate) fn of(challenges: &[Challenge]) -> Option<Offered> {
        let has = |scheme: &str| {
            challenges
                .iter()
                .any(|c| c.scheme.eq_ignore_ascii_case(scheme))
        };
        let offered = Offered {
            bearer: has("bearer"),
            dpop: has("dpop"),
        };
        (offered.bearer || offered.dpop).then_some(offered)
    }

    /// Only `DPoP`: the server takes bound tokens alone.
    pub(crate) fn dpop_only(self) -> bool {
        self.dpop && !self.bearer
    }

    /// Only `Bearer`: the server takes no bound token.
    pub(crate) fn bearer_only(self) -> bool {
        self.bearer && !self.dpop
    }
}

/// What the MCP server says of DPoP-bound tokens, in its resource metadata and its 401.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ResourceDpop {
    /// It takes them.
    pub(crate) takes: bool,
    /// It takes nothing else.
    pub(crate) requires: bool,
}

impl ResourceDpop {
    /// From the schemes a 401 offered when one was seen (what the server does: RFC 9449 §7.1
    /// has a server that takes bound tokens offer `DPoP`), else from the resource metadata
    /// (what it says).
    pub(crate) fn of(prm: Option<&ResourceMetadata>, offered: Option<Offered>) -> ResourceDpop {
        match offered {
            Some(offered) => ResourceDpop {
                takes: offered.dpop,
                requires: offered.dpop_only(),
            },
            None => ResourceDpop {
                takes: prm.is_some_and(|p| p.takes_dpop(ALG)),
                requires: prm.is_some_and(|p| p.dpop_bound_access_tokens_required),
            },
        }
    }
}

/// Whether a login binds its tokens: `policy`, whether the authorization server binds with
/// ES256 proofs (`server_binds`), and what the MCP server takes.
///
/// # Errors
/// [`ErrorKind::ProofRequired`] when the MCP server takes bound tokens only and the policy is
/// [`Policy::Never`]: a login would get a token it refuses.
pub(crate) fn binds(policy: Policy, server_binds: bool, resource: ResourceDpop) -> Result<bool> {
    match policy {
        Policy::Never if resource.requires => Err(Error::new(
            ErrorKind::ProofRequired,
            Step::Authorization,
            "the MCP server takes DPoP-bound tokens only (each request with its own proof), \
             and this session does not bind tokens (dpop(false))",
        )),
        Policy::Never => Ok(false),
        Policy::Always => {
            if !server_binds {
                log::info!(
                    "the authorization server binds no tokens to ES256 DPoP keys; using Bearer \
                     tokens"
                );
            }
            Ok(server_binds)
        }
        Policy::Auto => {
            if resource.requires && !server_binds {
                log::warn!(
                    "the MCP server takes DPoP-bound tokens only, but the authorization server \
                     binds no tokens to ES256 DPoP keys; trying a Bearer token"
                );
            }
            Ok(server_binds && resource.takes)
        }
    }
}

/// Whether cached tokens (`bound`: DPoP-bound) suit a session with `policy`, after a 401
/// offering `offered` when there was one: a session that never binds has no use for bound
/// tokens, and a server that takes bound tokens only none for a Bearer token (unless the
/// session never binds: then it says so when it logs in).
pub(crate) fn suits(policy: Policy, bound: bool, offered: Option<Offered>) -> bool {
    if policy == Policy::Never {
        return !bound;
    }
    bound || !offered.is_some_and(Offered::dpop_only)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::www_authenticate::parse_www_authenticate;

    fn offered(header: &str) -> Option<Offered> {
        Offered::of(&parse_www_authenticate(header))
    }

    fn prm(extra: &str) -> ResourceMetadata {
        let url = url::Url::parse("https://mcp.example.com/mcp").unwrap();
        let body = format!(
            r#"{{"resource": "https://mcp.example.com/mcp",
                "authorization_servers": ["https://as.example.com"]{extra}}}"#
        );
        crate::discovery::parse_resource_metadata(body.as_bytes(), &url).unwrap()
    }

    #[test]
    fn schemes_offered_by_a_challenge() {
        assert_eq!(offered(r#"Basic realm="x""#), None);
        let both = offered(r#"DPoP algs="ES256", Bearer realm="mcp""#).unwrap();
        assert!(!both.dpop_only() && !both.bearer_only());
        assert!(offered("DPoP algs=\"ES256\"").unwrap().dpop_only());
        assert!(
            offered("Bearer error=\"invalid_token\"")
                .unwrap()
                .bearer_only()
        );
    }

    #[test]
    fn what_the_resource_takes() {
        let plain = prm("");
        assert_eq!(
            ResourceDpop::of(Some(&plain), None),
            ResourceDpop::default()
        );
        let takes = ResourceDpop::of(
            Some(&prm(r#", "dpop_signing_alg_values_supported": ["ES256"]"#)),
            None,
        );
        assert_eq!(
            takes,
            ResourceDpop {
                takes: true,
                requires: false
            }
        );
        // Algorithms this crate cannot sign with: not taken.
        let rs = prm(r#", "dpop_signing_alg_values_supported": ["RS256"]"#);
        assert!(!ResourceDpop::of(Some(&rs), None).takes);
        let required = prm(r#", "dpop_bound_access_tokens_required": true"#);
        assert_eq!(
            ResourceDpop::of(Some(&required), None),
            ResourceDpop {
                takes: true,
                requires: true
            }
        );
        // A 401 offering DPoP alone says as much without metadata.
        assert!(ResourceDpop::of(None, offered("DPoP algs=\"ES256\"")).requires);
        let both = ResourceDpop::of(Some(&plain), offered("DPoP, Bearer"));
        assert!(both.takes && !both.requires);
        // What the server does outweighs what its metadata says.
        let says = prm(r#", "dpop_signing_alg_values_supported": ["ES256"]"#);
        assert!(!ResourceDpop::of(Some(&says), offered("Bearer")).takes);
    }

    #[test]
    fn a_login_binds_only_where_both_sides_take_dpop() {
        let none = ResourceDpop::default();
        let takes = ResourceDpop {
            takes: true,
            requires: false,
        };
        let requires = ResourceDpop {
            takes: true,
            requires: true,
        };
        let auto = |server, resource| binds(Policy::Auto, server, resource).unwrap();
        assert!(!auto(true, none), "a Bearer-only MCP server");
        assert!(auto(true, takes) && auto(true, requires));
        assert!(!auto(false, takes), "an authorization server without DPoP");
        assert!(binds(Policy::Always, true, none).unwrap());
        assert!(!binds(Policy::Always, false, requires).unwrap());
        assert!(!binds(Policy::Never, true, takes).unwrap());
        let e = binds(Policy::Never, true, requires).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ProofRequired);
    }

    #[test]
    fn cached_tokens_that_suit_the_session() {
        let dpop_only = offered("DPoP");
        let bearer_only = offered("Bearer");
        assert!(!suits(Policy::Never, true, None));
        assert!(suits(Policy::Never, false, dpop_only));
        assert!(
            suits(Policy::Auto, true, bearer_only),
            "the fallback decides that"
        );
        assert!(!suits(Policy::Auto, false, dpop_only));
        assert!(suits(Policy::Always, false, None) && suits(Policy::Auto, false, bearer_only));
    }
}
