//! Where tokens and client registrations are kept: the [`TokenStore`] trait, what is stored
//! ([`StoredTokens`], versioned), and the default store, [`FileTokenStorage`].
//!
//! The file store's layout (one directory, FastMCP style, one file per key):
//! - `{server key}_tokens.json`: the tokens of one MCP server with their absolute expiry, the
//!   issuer, the token endpoint and the resource, so that a refresh after a restart needs no
//!   discovery;
//! - `{issuer key}_client_info.json`: the client registered with one authorization server.
//!
//! A key is the URL made filename-safe plus eight hex digits of its SHA-256, so two URLs never
//! share a file. The directory is created 0700 and files 0600 (Unix), each write goes to a
//! temporary file that is flushed to disk and renamed over the old one, so a reader sees the
//! old or the new file, never a torn one. Files carry a format version; a corrupt, foreign or
//! newer file is an error for the caller to report and treat as absent.

mod file;
mod open;
#[cfg(feature = "keyring")]
mod os_keyring;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::client::AuthMethod;
use crate::client::ClientRegistration;
use crate::error::{Error, ErrorKind, Result, Step};
use crate::scope::Scopes;
use crate::secret::{Secret, sha256_base64url};
use crate::token::TokenSet;

pub use file::{CACHE_DIR_ENV, FileTokenStorage};
#[cfg(feature = "keyring")]
#[cfg_attr(docsrs, doc(cfg(feature = "keyring")))]
pub use os_keyring::{KEYRING_SERVICE, KeyringTokenStore};

/// What a cache directory holds in place of an access token kept in the OS keyring (feature
/// `keyring`); the copy is marked expired.
pub const IN_KEYRING: &str = "kept-in-the-keyring";

/// The version written in every file this crate stores.
#[doc(hidden)]
pub const FORMAT_VERSION: u32 = 1;

/// The tokens of one MCP server as stored on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredTokens {
    /// The format version, [`FORMAT_VERSION`].
    pub version: u32,
    /// The MCP server URL the tokens are for.
    pub server_url: String,
    /// The issuer that granted them; its client registration refreshes them.
    pub issuer: String,
    /// The issuer's token endpoint, for refreshing without discovery.
    pub token_endpoint: String,
    /// The issuer's revocation endpoint, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// The RFC 8707 resource the grant is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The scopes that were requested (granted ones are in `tokens.scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_scope: Option<String>,
    /// The client that obtained the tokens (its credentials are in the client file, or
    /// configured).
    pub client_id: String,
    /// How that client authenticates at the token endpoint.
    pub auth_method: AuthMethod,
    /// The tokens.
    pub tokens: TokenSet,
    /// How they were obtained ([`Grant::name`](crate::Grant::name)); absent in files of
    /// earlier versions, which all came from a browser login. A session uses only tokens of
    /// its own grant (and, for a grant without a browser, of its own client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// The private DPoP key the tokens are bound to (RFC 9449), PKCS#8 in base64url: kept with
    /// them so that they stay usable after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<Secret>,
}

/// A refresh that began: recorded just before its request leaves, forgotten once its answer
/// is handled. Still there later, it tells that a process stopped in between, perhaps after
/// the server had rotated the refresh token; when the server then refuses that refresh token,
/// the session says why a new login is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefreshMark {
    /// The format version, [`FORMAT_VERSION`].
    pub version: u32,
    /// When the refresh began (seconds since the epoch).
    pub started: u64,
    /// The refresh token it presented, as the base64url SHA-256 of its value: whether a later
    /// refusal concerns the same token.
    pub refresh_token_sha256: String,
}

impl RefreshMark {
    /// The mark of a refresh presenting `refresh_token`, beginning `started`.
    pub fn new(refresh_token: &Secret, started: u64) -> RefreshMark {
        RefreshMark {
            version: FORMAT_VERSION,
            started,
            refresh_token_sha256: sha256_base64url(refresh_token.secret().as_bytes()),
        }
    }

    /// Whether this mark is of a refresh that presented `refresh_token`.
    pub fn presented(&self, refresh_token: &Secret) -> bool {
        crate::secret::constant_time_eq(
            self.refresh_token_sha256.as_bytes(),
            sha256_base64url(refresh_token.secret().as_bytes()).as_bytes(),
        )
    }
}

/// Parses a refresh mark file.
///
/// # Errors
/// [`ErrorKind::Storage`] for anything but a mark of this format version.
pub fn parse_refresh_mark(bytes: &[u8]) -> Result<RefreshMark> {
    let mark: RefreshMark = serde_json::from_slice(bytes).map_err(|e| {
        Error::new(
            ErrorKind::Storage,
            Step::TokenCheck,
            "the refresh mark is not valid",
        )
        .with_source(e)
    })?;
    if mark.version != FORMAT_VERSION {
        return Err(Error::new(
            ErrorKind::Storage,
            Step::TokenCheck,
            format!("the refresh mark has format version {}", mark.version),
        ));
    }
    Ok(mark)
}

#[derive(Serialize, Deserialize)]
struct StoredClient {
    version: u32,
    client: ClientRegistration,
}

impl StoredTokens {
    /// The same grant with newly issued tokens.
    pub(crate) fn with_tokens(mut self, tokens: TokenSet) -> StoredTokens {
        self.tokens = tokens;
        self
    }

    /// The scopes of the grant: those asked for and those granted.
    pub(crate) fn scopes(&self) -> Scopes {
        let requested = Scopes::parse(self.requested_scope.as_deref().unwrap_or(""));
        requested.union(&Scopes::parse(self.tokens.scope.as_deref().unwrap_or("")))
    }
}

/// Parses a stored token file.
///
/// # Errors
/// [`ErrorKind::Storage`] for a file that is not valid JSON of this format, or of another
/// version.
pub fn parse_stored_tokens(bytes: &[u8]) -> Result<StoredTokens> {
    let t: StoredTokens = parse_versioned(bytes, "token file")?;
    // A file written by someone else could hold what no token response would pass.
    crate::token::check_access_token(t.tokens.access_token.secret(), Step::TokenCheck).map_err(
        |e| {
            Error::new(
                ErrorKind::Storage,
                Step::TokenCheck,
                "the token file is not readable",
            )
            .with_source(e)
        },
    )?;
    Ok(t)
}

/// Parses a stored client file.
///
/// # Errors
/// As [`parse_stored_tokens`].
#[doc(hidden)]
pub fn parse_stored_client(bytes: &[u8]) -> Result<ClientRegistration> {
    let c: StoredClient = parse_versioned(bytes, "client file")?;
    Ok(c.client)
}

fn parse_versioned<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let storage_error = |msg: String| Error::new(ErrorKind::Storage, Step::TokenCheck, msg);
    let unreadable = |e: serde_json::Error| {
        storage_error(format!("the {what} is not readable"))
            .with_source(crate::http::printable_json_error(&e))
    };
    let v: Version = serde_json::from_slice(bytes).map_err(unreadable)?;
    if v.version != FORMAT_VERSION {
        return Err(storage_error(format!(
            "the {what} has format version {}, this crate reads {FORMAT_VERSION}",
            v.version
        )));
    }
    serde_json::from_slice(bytes).map_err(unreadable)
}

/// The filename-safe key of a URL: readable characters plus a short hash.
///
/// ```
/// use mcp_oauth_client::internals::cache_key;
/// assert!(cache_key("http://127.0.0.1:8000/mcp").starts_with("http_127_0_0_1_8000_mcp-"));
/// assert_ne!(cache_key("https://a.example/x-y"), cache_key("https://a.example/x_y"));
/// ```
#[doc(hidden)]
pub fn cache_key(url: &str) -> String {
    let mut readable = String::new();
    for c in url.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if !(c == '_' && readable.ends_with('_')) {
            readable.push(c);
        }
        if readable.len() >= 80 {
            break;
        }
    }
    let digest = Sha256::digest(url.as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hash}", readable.trim_matches('_'))
}

/// A held lock on one cache entry, released on drop: what [`TokenStore::lock`] returns.
pub struct CacheLock {
    _guard: Option<Box<dyn Send>>,
}

impl CacheLock {
    /// A lock that holds nothing, for stores with one user at a time.
    pub fn none() -> CacheLock {
        CacheLock { _guard: None }
    }

    /// A lock held as long as `guard` lives (a locked file, a database transaction, …).
    pub fn new(guard: impl Send + 'static) -> CacheLock {
        CacheLock {
            _guard: Some(Box::new(guard)),
        }
    }
}

impl std::fmt::Debug for CacheLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheLock")
            .field("held", &self._guard.is_some())
            .finish()
    }
}

/// Where a session keeps its tokens and client registrations: [`FileTokenStorage`] by
/// default; a keyring or a database through [`SessionBuilder::token_store`](crate::SessionBuilder::token_store).
///
/// What the session relies on: a `save` is whole or not at all (a reader never sees half of
/// it); `lock` excludes every other user of the same entry (other threads and processes)
/// until the guard drops, since "re-read, refresh, write" must not interleave (a rotated
/// refresh token would be spent twice); a corrupt entry is an error, which the session
/// reports and treats as absent. Entries are keyed by the MCP server URL (tokens) and by the
/// issuer (clients).
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    /// The stored tokens of the MCP server at `server_url`, `Ok(None)` when there are none.
    ///
    /// # Errors
    /// When the entry cannot be read or is corrupt.
    fn load_tokens(&self, server_url: &Url) -> Result<Option<StoredTokens>>;

    /// Stores the tokens of `server_url`, replacing what was there, whole or not at all.
    ///
    /// # Errors
    /// When they cannot be written.
    fn save_tokens(&self, server_url: &Url, tokens: &StoredTokens) -> Result<()>;

    /// The client registered with `issuer`, `Ok(None)` when there is none.
    ///
    /// # Errors
    /// When the entry cannot be read or is corrupt.
    fn load_client(&self, issuer: &str) -> Result<Option<ClientRegistration>>;

    /// Stores a client registration under its issuer.
    ///
    /// # Errors
    /// When it cannot be written.
    fn save_client(&self, client: &ClientRegistration) -> Result<()>;

    /// Forgets the client registered with `issuer`.
    ///
    /// # Errors
    /// When it cannot be removed.
    fn remove_client(&self, issuer: &str) -> Result<()>;

    /// Forgets the tokens of `server_url`, and the client registration of their issuer unless
    /// another server's tokens still use it.
    ///
    /// # Errors
    /// When something cannot be removed.
    fn clear(&self, server_url: &Url) -> Result<()>;

    /// The refresh of `server_url`'s tokens that began and was never seen to end, if one is
    /// recorded (see [`RefreshMark`]). The default records nothing: `Ok(None)`.
    ///
    /// # Errors
    /// When the entry cannot be read or is corrupt.
    fn load_refresh_mark(&self, server_url: &Url) -> Result<Option<RefreshMark>> {
        let _ = server_url;
        Ok(None)
    }

    /// Records, just before a refresh request leaves, that it began (`Some`), and forgets it
    /// once the refresh has ended either way (`None`). The default records nothing; a store
    /// without marks loses only the explanation of a lost rotation.
    ///
    /// # Errors
    /// When the mark cannot be written or removed.
    fn save_refresh_mark(&self, server_url: &Url, mark: Option<&RefreshMark>) -> Result<()> {
        let _ = (server_url, mark);
        Ok(())
    }

    /// Locks the entry of `server_url` against every other user until the guard drops,
    /// waiting up to `wait` for another holder.
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`] when the lock was not free within `wait`; a storage error when
    /// it cannot be taken at all (the session then goes on without it).
    fn lock(&self, server_url: &Url, wait: Duration) -> Result<CacheLock>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_file_versions() {
        assert!(parse_stored_tokens(b"{").is_err());
        assert!(parse_stored_tokens(br#"{"version":2}"#).is_err());
        assert!(parse_stored_tokens(br#"{"version":1}"#).is_err());
        assert!(parse_stored_client(br#"{"version":1,"client":{}}"#).is_err());
        // serde quotes an unknown variant verbatim; the error must stay on one line.
        let e = parse_stored_client(
            br#"{"version":1,"client":{"issuer":"i","client_id":"c","auth_method":"x\ny"}}"#,
        )
        .unwrap_err();
        assert!(!e.to_string().contains('\n'), "{e:#}");
    }
}
