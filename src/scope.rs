//! Scope selection (MCP authorization, "Scope selection strategy"; RFC 6749 §3.3).
//!
//! Precedence: the scopes the caller configured, else the `scope` of the 401 challenge, else
//! the protected resource's `scopes_supported`, else no `scope` parameter at all.
//! `offline_access` is added only when the authorization server lists it. A step-up (403
//! `insufficient_scope`) asks for the union of what was asked before and what is challenged.

use std::fmt;

/// A set of OAuth scopes, kept in first-seen order without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Parses a space-separated scope string (RFC 6749 §3.3).
    pub fn parse(s: &str) -> Scopes {
        let mut out = Scopes::default();
        for s in s.split([' ', '\t', '\n', '\r']).filter(|s| !s.is_empty()) {
            out.insert(s);
        }
        out
    }

    /// Adds `scope` unless present.
    pub fn insert(&mut self, scope: &str) {
        if !self.contains(scope) {
            self.0.push(scope.to_owned());
        }
    }

    /// True when `scope` is in the set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// True when no scope is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// This set plus every scope of `other` (step-up, MCP authorization).
    pub fn union(&self, other: &Scopes) -> Scopes {
        let mut out = self.clone();
        for s in other.iter() {
            out.insert(s);
        }
        out
    }

    /// True when every scope of `other` is in this set.
    pub fn contains_all(&self, other: &Scopes) -> bool {
        other.iter().all(|s| self.contains(s))
    }
}

impl fmt::Display for Scopes {
    /// The space-separated form used on the wire.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl From<&str> for Scopes {
    fn from(s: &str) -> Scopes {
        Scopes::parse(s)
    }
}

impl From<String> for Scopes {
    fn from(s: String) -> Scopes {
        Scopes::parse(&s)
    }
}

impl<S: AsRef<str>> From<Vec<S>> for Scopes {
    fn from(v: Vec<S>) -> Scopes {
        v.iter().map(AsRef::as_ref).collect()
    }
}

impl<S: AsRef<str>> From<&[S]> for Scopes {
    fn from(v: &[S]) -> Scopes {
        v.iter().map(AsRef::as_ref).collect()
    }
}

impl<S: AsRef<str>, const N: usize> From<[S; N]> for Scopes {
    fn from(v: [S; N]) -> Scopes {
        v.iter().map(AsRef::as_ref).collect()
    }
}

impl<'a> FromIterator<&'a str> for Scopes {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Scopes {
        let mut out = Scopes::default();
        for s in iter {
            // A list element may itself hold several space-separated scopes.
            for part in Scopes::parse(s).iter() {
                out.insert(part);
            }
        }
        out
    }
}

/// What scope selection looks at: start from [`ScopeSources::default`] (nothing known) and
/// add what is.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ScopeSources<'a> {
    /// Scopes the caller configured.
    pub configured: Option<&'a Scopes>,
    /// The `scope` parameter of the 401 challenge.
    pub challenged: Option<&'a str>,
    /// The protected resource's `scopes_supported`.
    pub resource_supported: Option<&'a [String]>,
    /// The authorization server's `scopes_supported` (only consulted for `offline_access`).
    pub server_supported: Option<&'a [String]>,
}

impl<'a> ScopeSources<'a> {
    /// With the scopes the caller configured.
    #[must_use]
    pub fn configured(self, configured: Option<&'a Scopes>) -> ScopeSources<'a> {
        ScopeSources { configured, ..self }
    }

    /// With the `scope` parameter of the 401 challenge.
    #[must_use]
    pub fn challenged(self, challenged: Option<&'a str>) -> ScopeSources<'a> {
        ScopeSources { challenged, ..self }
    }

    /// With the protected resource's `scopes_supported`.
    #[must_use]
    pub fn resource_supported(self, supported: Option<&'a [String]>) -> ScopeSources<'a> {
        ScopeSources {
            resource_supported: supported,
            ..self
        }
    }

    /// With the authorization server's `scopes_supported`.
    #[must_use]
    pub fn server_supported(self, supported: Option<&'a [String]>) -> ScopeSources<'a> {
        ScopeSources {
            server_supported: supported,
            ..self
        }
    }
}

/// The scopes to request, or `None` to omit the `scope` parameter.
///
/// ```
/// use mcp_oauth_client::scope::{select_scopes, ScopeSources};
/// let prm = vec!["files:read".to_string()];
/// let asm = vec!["files:read".to_string(), "offline_access".to_string()];
/// let sources = ScopeSources::default()
///     .challenged(Some("files:read files:write"))
///     .resource_supported(Some(&prm))
///     .server_supported(Some(&asm));
/// let s = select_scopes(&sources);
/// assert_eq!(s.unwrap().to_string(), "files:read files:write offline_access");
/// ```
pub fn select_scopes(sources: &ScopeSources<'_>) -> Option<Scopes> {
    let mut chosen = if let Some(c) = sources.configured.filter(|c| !c.is_empty()) {
        c.clone()
    } else if let Some(c) = sources
        .challenged
        .map(Scopes::parse)
        .filter(|c| !c.is_empty())
    {
        c
    } else if let Some(r) = sources.resource_supported.filter(|r| !r.is_empty()) {
        Scopes::from(r)
    } else {
        return None;
    };
    if sources
        .server_supported
        .is_some_and(|s| s.iter().any(|s| s == "offline_access"))
    {
        chosen.insert("offline_access");
    }
    Some(chosen)
}

/// The scopes of a step-up authorization (MCP authorization, "Scope challenge handling"):
/// the union of what the grant held before, what the 403 challenged, and what would be asked
/// for anyway (`selected`), so that a step-up never loses a scope the grant had.
///
/// ```
/// use mcp_oauth_client::{Scopes, scope::step_up_scopes};
/// let before = Scopes::parse("files:read");
/// let s = step_up_scopes(None, &before, Some("files:write"));
/// assert_eq!(s.to_string(), "files:read files:write");
/// ```
pub fn step_up_scopes(
    selected: Option<Scopes>,
    before: &Scopes,
    challenged: Option<&str>,
) -> Scopes {
    let wanted = before.union(&Scopes::parse(challenged.unwrap_or("")));
    match selected {
        Some(s) => wanted.union(&s),
        None => wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_union() {
        let a = Scopes::parse("  a b\ta ");
        assert_eq!(a.to_string(), "a b");
        let b = Scopes::from(vec!["b", "c d"]);
        assert_eq!(a.union(&b).to_string(), "a b c d");
        assert!(a.union(&b).contains_all(&a));
        assert_eq!(Scopes::from(["x"]).to_string(), "x");
    }

    #[test]
    fn precedence() {
        let configured = Scopes::parse("cfg");
        let prm = vec!["prm".to_string()];
        let all = ScopeSources {
            configured: Some(&configured),
            challenged: Some("chal"),
            resource_supported: Some(&prm),
            server_supported: None,
        };
        assert_eq!(select_scopes(&all).unwrap().to_string(), "cfg");
        let s = ScopeSources {
            configured: None,
            ..all
        };
        assert_eq!(select_scopes(&s).unwrap().to_string(), "chal");
        let s = ScopeSources {
            challenged: None,
            ..s
        };
        assert_eq!(select_scopes(&s).unwrap().to_string(), "prm");
        let s = ScopeSources {
            resource_supported: None,
            ..s
        };
        assert_eq!(select_scopes(&s), None);
    }

    #[test]
    fn offline_access_only_when_listed() {
        let configured = Scopes::parse("a");
        let without = vec!["a".to_string()];
        let with = vec!["a".to_string(), "offline_access".to_string()];
        let mut s = ScopeSources {
            configured: Some(&configured),
            server_supported: Some(&without),
            ..Default::default()
        };
        assert_eq!(select_scopes(&s).unwrap().to_string(), "a");
        s.server_supported = Some(&with);
        assert_eq!(select_scopes(&s).unwrap().to_string(), "a offline_access");
    }
}
