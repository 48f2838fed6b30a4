//! Tokens and client secrets in the operating system's keyring (feature `keyring`): the
//! kernel's keyutils on Linux, the Keychain on macOS, the Credential Manager on Windows.
//!
//! Each entry (a server's tokens, an issuer's client) is one keyring item holding the whole
//! record, so a save is whole or not at all. The cache directory keeps a copy without
//! anything secret (the access token replaced by a placeholder marked expired, no refresh
//! token, no client secret, no DPoP key) for `mcp-oauth status`, for the cross-process lock,
//! and for finding what to clear. A reader of that directory without this store sees an
//! expired token it cannot refresh, never a secret.
//!
//! On Linux the items live in the user's keyring (keyutils), shared by the user's sessions:
//! in memory, for as long as the user has a process, never across a reboot. When the keyring
//! lost an entry the session logs in again.

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use url::Url;

use super::{
    CacheLock, FORMAT_VERSION, FileTokenStorage, IN_KEYRING, RefreshMark, StoredClient,
    StoredTokens, TokenStore, cache_key, parse_stored_client, parse_stored_tokens,
};
use crate::client::ClientRegistration;
use crate::error::{Error, ErrorKind, Result, Step};
use crate::secret::Secret;

/// The keyring service name of this crate's items.
pub const KEYRING_SERVICE: &str = "mcp-oauth-client";

/// A [`TokenStore`] with the secrets in the OS keyring and the rest in a cache directory.
#[derive(Debug, Clone)]
pub struct KeyringTokenStore {
    files: FileTokenStorage,
    /// Tells this directory's items from another's (two cache directories, two identities).
    scope: String,
}

impl KeyringTokenStore {
    /// A store whose non-secret copies and locks live in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> KeyringTokenStore {
        let files = FileTokenStorage::new(dir);
        let digest = Sha256::digest(files.dir().to_string_lossy().as_bytes());
        let scope = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        KeyringTokenStore { files, scope }
    }

    /// The directory of the non-secret copies.
    pub fn files(&self) -> &FileTokenStorage {
        &self.files
    }

    /// Writes, reads and deletes an item: whether the keyring works here (a container without
    /// keyutils, a session without a keyring daemon).
    ///
    /// # Errors
    /// [`ErrorKind::Storage`] with the keyring's reason.
    pub fn probe(&self) -> Result<()> {
        let entry = self.entry("probe")?;
        let value = crate::secret::random_token(8, Step::Storage)?;
        entry.set_password(&value).map_err(keyring_error)?;
        let back = entry.get_password().map_err(keyring_error)?;
        let _ = entry.delete_credential();
        if back != value {
            return Err(Error::new(
                ErrorKind::Storage,
                Step::Storage,
                "the keyring gave back another value than it was given",
            ));
        }
        Ok(())
    }

    /// The keyring item `what` of this directory. On Linux it lives in the user's keyring
    /// (keyutils), which every session of the user shares, for as long as the user has a
    /// process; elsewhere in the platform's store.
    fn entry(&self, what: &str) -> Result<::keyring::Entry> {
        let user = format!("{}/{what}", self.scope);
        #[cfg(target_os = "linux")]
        {
            use linux_keyutils::{KeyRing, KeyRingIdentifier};
            let keyring = KeyRing::from_special_id(KeyRingIdentifier::User, true).map_err(|e| {
                Error::new(
                    ErrorKind::Storage,
                    Step::Storage,
                    "no user keyring (keyutils)",
                )
                .with_source(e)
            })?;
            let credential = ::keyring::keyutils::KeyutilsCredential {
                session: keyring,
                persistent: None,
                description: format!("{KEYRING_SERVICE}:{user}"),
            };
            Ok(::keyring::Entry::new_with_credential(Box::new(credential)))
        }
        #[cfg(not(target_os = "linux"))]
        {
            ::keyring::Entry::new(KEYRING_SERVICE, &user).map_err(keyring_error)
        }
    }

    fn tokens_entry(&self, server_url: &Url) -> Result<::keyring::Entry> {
        let key = cache_key(&crate::discovery::canonical_resource(server_url));
        self.entry(&format!("tokens/{key}"))
    }

    fn client_entry(&self, issuer: &str) -> Result<::keyring::Entry> {
        self.entry(&format!("client/{}", cache_key(issuer)))
    }

    /// The item's text, `None` when the keyring has none.
    fn read(entry: &::keyring::Entry) -> Result<Option<String>> {
        match entry.get_password() {
            Ok(text) => Ok(Some(text)),
            Err(::keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error(e)),
        }
    }

    fn write(entry: &::keyring::Entry, value: &impl serde::Serialize) -> Result<()> {
        let text = serde_json::to_string(value).map_err(|e| {
            Error::new(
                ErrorKind::Storage,
                Step::Storage,
                "cannot encode the keyring item",
            )
            .with_source(e)
        })?;
        entry.set_password(&text).map_err(keyring_error)
    }

    fn delete(entry: &::keyring::Entry) -> Result<()> {
        match entry.delete_credential() {
            Ok(()) | Err(::keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keyring_error(e)),
        }
    }
}

fn keyring_error(e: ::keyring::Error) -> Error {
    match e {
        // It carries the item's bytes (tokens, a key), which its Debug output would print.
        ::keyring::Error::BadEncoding(_) => Error::new(
            ErrorKind::Storage,
            Step::Storage,
            "the OS keyring failed: an item is not UTF-8",
        ),
        other => Error::new(ErrorKind::Storage, Step::Storage, "the OS keyring failed")
            .with_source(other),
    }
}

impl TokenStore for KeyringTokenStore {
    fn load_tokens(&self, server_url: &Url) -> Result<Option<StoredTokens>> {
        match Self::read(&self.tokens_entry(server_url)?)? {
            Some(text) => parse_stored_tokens(text.as_bytes()).map(Some),
            None => Ok(None),
        }
    }

    fn save_tokens(&self, server_url: &Url, tokens: &StoredTokens) -> Result<()> {
        Self::write(&self.tokens_entry(server_url)?, tokens)?;
        let mut copy = tokens.clone();
        copy.tokens.access_token = Secret::new(IN_KEYRING);
        copy.tokens.expires_at = Some(0);
        copy.tokens.refresh_token = None;
        copy.dpop_key = None;
        if let Err(e) = self.files.save_tokens(server_url, &copy) {
            log::warn!("the tokens are in the keyring, their non-secret copy is not: {e:#}");
        }
        Ok(())
    }

    fn load_client(&self, issuer: &str) -> Result<Option<ClientRegistration>> {
        match Self::read(&self.client_entry(issuer)?)? {
            Some(text) => parse_stored_client(text.as_bytes()).map(Some),
            None => Ok(None),
        }
    }

    fn save_client(&self, client: &ClientRegistration) -> Result<()> {
        let stored = StoredClient {
            version: FORMAT_VERSION,
            client: client.clone(),
        };
        Self::write(&self.client_entry(&client.issuer)?, &stored)?;
        let mut copy = client.clone();
        copy.client_secret = None;
        if let Err(e) = self.files.save_client(&copy) {
            log::warn!("the client is in the keyring, its non-secret copy is not: {e:#}");
        }
        Ok(())
    }

    fn remove_client(&self, issuer: &str) -> Result<()> {
        Self::delete(&self.client_entry(issuer)?)?;
        self.files.remove_client(issuer)
    }

    fn clear(&self, server_url: &Url) -> Result<()> {
        let issuer = self.load_tokens(server_url)?.map(|t| t.issuer);
        Self::delete(&self.tokens_entry(server_url)?)?;
        self.files.clear(server_url)?;
        // The file store keeps the client while another server's tokens use it.
        if let Some(issuer) = issuer
            && self.files.load_client(&issuer).ok().flatten().is_none()
        {
            Self::delete(&self.client_entry(&issuer)?)?;
        }
        Ok(())
    }

    // A mark holds no secret (a digest of the refresh token): it stays a file.
    fn load_refresh_mark(&self, server_url: &Url) -> Result<Option<RefreshMark>> {
        self.files.load_refresh_mark(server_url)
    }

    fn save_refresh_mark(&self, server_url: &Url, mark: Option<&RefreshMark>) -> Result<()> {
        self.files.save_refresh_mark(server_url, mark)
    }

    fn lock(&self, server_url: &Url, wait: Duration) -> Result<CacheLock> {
        self.files.lock(server_url, wait)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_undecodable_item_stays_out_of_the_error() {
        let e = super::keyring_error(::keyring::Error::BadEncoding(b"refresh-secret-42".to_vec()));
        let text = format!("{e:#} {e:?}");
        assert!(!text.contains("refresh-secret-42"), "{text}");
        assert!(
            !text.contains("114, 101, 102"),
            "the bytes leaked as numbers: {text}"
        );
        assert!(text.contains("not UTF-8"), "{text}");
    }
}
