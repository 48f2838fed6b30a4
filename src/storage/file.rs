//! The default [`TokenStore`](super::TokenStore): one directory, FastMCP style, one file per
//! key, written atomically, opened as untrusted input (see `open.rs`), locked with `flock`
//! across processes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use url::Url;

use super::open::{self, storage_io};
use super::{
    CacheLock, FORMAT_VERSION, RefreshMark, StoredClient, StoredTokens, TokenStore, cache_key,
    parse_refresh_mark, parse_stored_client, parse_stored_tokens,
};
use crate::client::ClientRegistration;
use crate::error::{Error, ErrorKind, Result, Step};

/// The environment variable that overrides the default cache directory.
pub const CACHE_DIR_ENV: &str = "MCP_OAUTH_CACHE_DIR";

const TOKENS_SUFFIX: &str = "_tokens.json";
const CLIENT_SUFFIX: &str = "_client_info.json";
const TEMP_SUFFIX: &str = ".tmp";
const LOCK_SUFFIX: &str = ".lock";
const REFRESH_SUFFIX: &str = "_refreshing.json";
/// A temporary file this old was left by a writer that died (a SIGKILL, a power cut): a write
/// takes milliseconds.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);
/// Files larger than this are not read (a token file is a few KiB).
const MAX_FILE: u64 = 256 * 1024;

/// True for names this crate writes: `{key}-{8 hex}{suffix}` or one of its temporary files.
fn is_ours(name: &str) -> bool {
    let base = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(TEMP_SUFFIX))
        .and_then(|n| n.rsplit_once(".pid").map(|(b, _)| b))
        .unwrap_or(name);
    let Some(stem) = [TOKENS_SUFFIX, CLIENT_SUFFIX, LOCK_SUFFIX, REFRESH_SUFFIX]
        .iter()
        .find_map(|suffix| base.strip_suffix(suffix))
    else {
        return false;
    };
    stem.rsplit_once('-').is_some_and(|(_, h)| {
        h.len() == 8
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A token cache in one directory.
#[derive(Debug, Clone)]
pub struct FileTokenStorage {
    dir: PathBuf,
}

impl FileTokenStorage {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> FileTokenStorage {
        FileTokenStorage { dir: dir.into() }
    }

    /// The default directory: `$MCP_OAUTH_CACHE_DIR`, else `~/.fastmcp/oauth-mcp-client-cache`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when neither the variable nor a home directory is known.
    pub fn default_dir() -> Result<PathBuf> {
        if let Some(dir) = std::env::var_os(CACHE_DIR_ENV).filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        std::env::home_dir()
            .map(|h| h.join(".fastmcp").join("oauth-mcp-client-cache"))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    Step::Configure,
                    format!("no home directory; set {CACHE_DIR_ENV}"),
                )
            })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes sure tokens can be stored here, before a login whose tokens would otherwise be
    /// kept in memory only: the directory is created (0700) or checked, and a file is written
    /// in it and removed.
    ///
    /// # Errors
    /// [`ErrorKind::Storage`] naming the directory and why (not a directory, another user's,
    /// read-only, no space).
    pub fn check_writable(&self) -> Result<()> {
        self.ensure_dir()?;
        // Its own name for each check: two sessions of one process may check at once.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let probe = self
            .dir
            .join(format!(".write-check.pid{}.{n}.tmp", std::process::id()));
        let written = write_new_file(&probe, b"");
        let _ = fs::remove_file(&probe);
        written.map_err(|e| storage_io("cannot write in", &self.dir, e))
    }

    /// The token file of the MCP server at `server_url`.
    pub fn tokens_path(&self, server_url: &Url) -> PathBuf {
        self.server_file(server_url, TOKENS_SUFFIX)
    }

    /// The lock file of the MCP server at `server_url`.
    fn lock_path(&self, server_url: &Url) -> PathBuf {
        self.server_file(server_url, LOCK_SUFFIX)
    }

    /// The file of the MCP server at `server_url` that marks a refresh in progress.
    fn refresh_mark_path(&self, server_url: &Url) -> PathBuf {
        self.server_file(server_url, REFRESH_SUFFIX)
    }

    /// The file of the MCP server at `server_url` with `suffix`.
    fn server_file(&self, server_url: &Url, suffix: &str) -> PathBuf {
        let key = cache_key(&crate::discovery::canonical_resource(server_url));
        self.dir.join(format!("{key}{suffix}"))
    }

    /// The refresh of `server_url`'s tokens that began and was never seen to end, if any
    /// (see [`RefreshMark`]).
    ///
    /// # Errors
    /// As [`load_tokens`](Self::load_tokens).
    pub fn load_refresh_mark(&self, server_url: &Url) -> Result<Option<RefreshMark>> {
        let path = self.refresh_mark_path(server_url);
        read_file(&path)?
            .map(|b| parse_refresh_mark(&b).map_err(|e| name_path(e, &path)))
            .transpose()
    }

    /// Records a refresh that begins (`Some`), atomically, or removes the record (`None`).
    ///
    /// # Errors
    /// [`ErrorKind::Storage`] naming the path when it cannot be written or removed.
    pub fn save_refresh_mark(&self, server_url: &Url, mark: Option<&RefreshMark>) -> Result<()> {
        let path = self.refresh_mark_path(server_url);
        match mark {
            Some(mark) => self.write(&path, mark),
            None => remove(&path),
        }
    }

    /// The client file of the authorization server `issuer`.
    pub fn client_path(&self, issuer: &str) -> PathBuf {
        self.dir
            .join(format!("{}{CLIENT_SUFFIX}", cache_key(issuer)))
    }

    /// The stored tokens of `server_url`, `Ok(None)` when there are none.
    ///
    /// # Errors
    /// [`ErrorKind::Storage`] when the file cannot be read or is corrupt, foreign or of
    /// another version.
    pub fn load_tokens(&self, server_url: &Url) -> Result<Option<StoredTokens>> {
        let path = self.tokens_path(server_url);
        read_file(&path)?
            .map(|b| parse_stored_tokens(&b).map_err(|e| name_path(e, &path)))
            .transpose()
    }

    /// Stores the tokens of `server_url`, atomically.
    ///
    /// # Errors
    /// [`ErrorKind::Storage`] naming the path when the directory or file cannot be written.
    pub fn save_tokens(&self, server_url: &Url, tokens: &StoredTokens) -> Result<()> {
        self.write(&self.tokens_path(server_url), tokens)
    }

    /// The client registered with `issuer`, `Ok(None)` when there is none.
    ///
    /// # Errors
    /// As [`load_tokens`](Self::load_tokens).
    pub fn load_client(&self, issuer: &str) -> Result<Option<ClientRegistration>> {
        let path = self.client_path(issuer);
        let client = read_file(&path)?
            .map(|b| parse_stored_client(&b).map_err(|e| name_path(e, &path)))
            .transpose()?;
        // A file whose client belongs to another issuer is not this issuer's client.
        Ok(client.filter(|c| c.issuer == issuer))
    }

    /// Stores a client registration under its issuer, atomically.
    ///
    /// # Errors
    /// As [`save_tokens`](Self::save_tokens).
    pub fn save_client(&self, client: &ClientRegistration) -> Result<()> {
        let stored = StoredClient {
            version: FORMAT_VERSION,
            client: client.clone(),
        };
        self.write(&self.client_path(&client.issuer), &stored)
    }

    /// Forgets the client registered with `issuer`.
    ///
    /// # Errors
    /// [`ErrorKind::Storage`] when the file exists and cannot be removed.
    pub fn remove_client(&self, issuer: &str) -> Result<()> {
        remove(&self.client_path(issuer))
    }

    /// Forgets the tokens of `server_url`.
    ///
    /// # Errors
    /// [`ErrorKind::Storage`] when the file exists and cannot be removed.
    pub fn remove_tokens(&self, server_url: &Url) -> Result<()> {
        remove(&self.tokens_path(server_url))
    }

    /// Removes the files of one MCP server: its tokens, and the client registration of its
    /// issuer unless another server's tokens still use that issuer.
    ///
    /// # Errors
    /// [`ErrorKind::Storage`] when a file cannot be removed.
    pub fn clear(&self, server_url: &Url) -> Result<()> {
        let issuer = self
            .load_tokens(server_url)
            .ok()
            .flatten()
            .map(|t| t.issuer);
        self.remove_tokens(server_url)?;
        remove(&self.refresh_mark_path(server_url))?;
        remove_lock_if_free(&self.lock_path(server_url))?;
        if let Some(issuer) = issuer
            && !self.issuer_in_use(&issuer)
        {
            self.remove_client(&issuer)?;
        }
        Ok(())
    }

    fn issuer_in_use(&self, issuer: &str) -> bool {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            is_ours(&name)
                && name.ends_with(TOKENS_SUFFIX)
                && read_file(&e.path())
                    .ok()
                    .flatten()
                    .and_then(|b| parse_stored_tokens(&b).ok())
                    .is_some_and(|t| t.issuer == issuer)
        })
    }

    /// Every server's stored tokens in the directory, with the file each came from; a file
    /// that cannot be read is listed with its error.
    ///
    /// # Errors
    /// [`ErrorKind::Storage`] when the directory exists but cannot be listed.
    pub fn entries(&self) -> Result<Vec<(PathBuf, Result<StoredTokens>)>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(storage_io("cannot list", &self.dir, e)),
        };
        let mut out: Vec<(PathBuf, Result<StoredTokens>)> = entries
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                is_ours(&name) && !name.starts_with('.') && name.ends_with(TOKENS_SUFFIX)
            })
            .map(|e| {
                let path = e.path();
                let tokens = read_file(&path).and_then(|b| {
                    let bytes = b.unwrap_or_default();
                    parse_stored_tokens(&bytes).map_err(|e| name_path(e, &path))
                });
                (path, tokens)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Removes every file this crate wrote in the directory, and nothing else. Returns how
    /// many files were removed.
    ///
    /// # Errors
    /// [`ErrorKind::Storage`] when the directory cannot be listed or a file removed.
    pub fn clear_all(&self) -> Result<usize> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(storage_io("cannot list", &self.dir, e)),
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            // Anything under one of our names goes (a planted symlink or FIFO too), but no
            // directory.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !is_ours(&entry.file_name().to_string_lossy()) || is_dir {
                continue;
            }
            if path.extension().is_some_and(|e| e == "lock") {
                removed += usize::from(remove_lock_if_free(&path)?);
            } else {
                remove(&path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn write(&self, path: &Path, value: &impl serde::Serialize) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| {
            Error::new(
                ErrorKind::Storage,
                Step::Storage,
                "cannot encode the cache file",
            )
            .with_source(e)
        })?;
        self.ensure_dir()?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let suffix = crate::secret::random_token(6, Step::Storage)?;
        let temp = self.dir.join(format!(
            ".{name}.pid{}-{suffix}{TEMP_SUFFIX}",
            std::process::id()
        ));
        let result = write_new_file(&temp, &bytes)
            .and_then(|()| fs::rename(&temp, path))
            .map_err(|e| storage_io("cannot write", path, e));
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result?;
        sync_dir(&self.dir);
        remove_abandoned(&self.dir, &name);
        Ok(())
    }

    fn ensure_dir(&self) -> Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.dir)
            .map_err(|e| storage_io("cannot create", &self.dir, e))?;
        open::check_dir(&self.dir)
    }

    /// Takes the cross-process lock of `server_url`'s cache entry, waiting up to `wait` for
    /// another process to release it. Held across "re-read → refresh or log in → write", so
    /// that of several processes finding the same stale token, one refreshes and the others
    /// use its result. The operating system releases the lock when its holder exits, crashed
    /// or not.
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`] when the lock was not free within `wait`; [`ErrorKind::Storage`]
    /// when the lock file cannot be created (a read-only cache, say).
    pub fn lock(&self, server_url: &Url, wait: Duration) -> Result<CacheLock> {
        self.ensure_dir()?;
        let path = self.lock_path(server_url);
        let file = open::open_lock(&path)?;
        let deadline = Instant::now() + wait;
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(CacheLock::new(file)),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => {
                    return Err(storage_io("cannot lock", &path, e));
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    Step::Storage,
                    format!(
                        "another process held {} for more than {} s",
                        path.display(),
                        wait.as_secs()
                    ),
                ));
            }
            if !told {
                log::info!("waiting for another process using {}", path.display());
                told = true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Removes a lock file unless a process holds it (its holder is writing this cache right
/// now); anything else under a lock file's name (a symlink, a FIFO) is removed too. Returns
/// whether it was removed.
fn remove_lock_if_free(path: &Path) -> Result<bool> {
    match open::open_existing(path) {
        Ok(Some(f)) if f.try_lock().is_err() => Ok(false),
        Ok(None) => Ok(false),
        _ => remove(path).map(|()| true),
    }
}

fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Removes the temporary files of `name` that writers which died left behind (see
/// [`ABANDONED_AFTER`]); another writer's file in progress is younger. Symlinks under such
/// names are removed as links.
fn remove_abandoned(dir: &Path, name: &str) {
    let prefix = format!(".{name}.pid");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if !file.starts_with(&prefix) || !file.ends_with(TEMP_SUFFIX) {
            continue;
        }
        let abandoned = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > ABANDONED_AFTER);
        if abandoned {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Makes a rename durable (Unix; elsewhere a no-op).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let Some(file) = open::open_existing(path).map_err(|e| e.at_step(Step::TokenCheck))? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| storage_io("cannot read", path, e).at_step(Step::TokenCheck))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(Error::new(
            ErrorKind::Storage,
            Step::TokenCheck,
            format!("{} is larger than a cache file can be", path.display()),
        ));
    }
    Ok(Some(bytes))
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(storage_io("cannot remove", path, e))
        }
        _ => Ok(()),
    }
}

fn name_path(e: Error, path: &Path) -> Error {
    e.prefix_message(&path.display().to_string())
}

/// The file store's own methods, as the session sees them.
impl TokenStore for FileTokenStorage {
    fn load_tokens(&self, server_url: &Url) -> Result<Option<StoredTokens>> {
        FileTokenStorage::load_tokens(self, server_url)
    }

    fn save_tokens(&self, server_url: &Url, tokens: &StoredTokens) -> Result<()> {
        FileTokenStorage::save_tokens(self, server_url, tokens)
    }

    fn load_client(&self, issuer: &str) -> Result<Option<ClientRegistration>> {
        FileTokenStorage::load_client(self, issuer)
    }

    fn save_client(&self, client: &ClientRegistration) -> Result<()> {
        FileTokenStorage::save_client(self, client)
    }

    fn remove_client(&self, issuer: &str) -> Result<()> {
        FileTokenStorage::remove_client(self, issuer)
    }

    fn clear(&self, server_url: &Url) -> Result<()> {
        FileTokenStorage::clear(self, server_url)
    }

    fn load_refresh_mark(&self, server_url: &Url) -> Result<Option<RefreshMark>> {
        FileTokenStorage::load_refresh_mark(self, server_url)
    }

    fn save_refresh_mark(&self, server_url: &Url, mark: Option<&RefreshMark>) -> Result<()> {
        FileTokenStorage::save_refresh_mark(self, server_url, mark)
    }

    fn lock(&self, server_url: &Url, wait: Duration) -> Result<CacheLock> {
        FileTokenStorage::lock(self, server_url, wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_names() {
        let k = cache_key("https://a.example/mcp");
        assert!(is_ours(&format!("{k}_tokens.json")));
        assert!(is_ours(&format!("{k}_client_info.json")));
        assert!(is_ours(&format!(".{k}_tokens.json.pid12-abcdefgh.tmp")));
        assert!(is_ours(&format!("{k}.lock")));
        assert!(is_ours(&format!("{k}_refreshing.json")));
        assert!(!is_ours("https_a_example_mcp_tokens.json")); // FastMCP's own naming
        assert!(!is_ours("notes.txt"));
        assert!(!is_ours(&format!("{k}_tokens.json.bak")));
    }

    #[test]
    fn a_write_removes_what_dead_writers_of_that_file_left() {
        let dir = std::env::temp_dir().join(format!("mcp-oauth-temps-{}", std::process::id()));
        let store = FileTokenStorage::new(&dir);
        let url = Url::parse("https://a.example/mcp").unwrap();
        let token = crate::Secret::new("rt-1");
        store
            .save_refresh_mark(&url, Some(&RefreshMark::new(&token, 1)))
            .unwrap();
        let name = store
            .refresh_mark_path(&url)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let temp = |tag: &str| dir.join(format!(".{name}.pid1-{tag}{TEMP_SUFFIX}"));
        let (old, young) = (temp("old"), temp("young"));
        let other = dir.join(format!(".other_tokens.json.pid1-old{TEMP_SUFFIX}"));
        for path in [&old, &young, &other] {
            fs::write(path, b"half").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        for path in [&old, &other] {
            fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        store
            .save_refresh_mark(&url, Some(&RefreshMark::new(&token, 2)))
            .unwrap();
        assert!(!old.exists(), "an abandoned temporary file stays");
        assert!(young.exists(), "a write in progress was removed");
        assert!(other.exists(), "another file's temporary file was removed");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_refresh_mark_is_written_read_and_removed() {
        let dir = std::env::temp_dir().join(format!("mcp-oauth-mark-{}", std::process::id()));
        let store = FileTokenStorage::new(&dir);
        let url = Url::parse("https://a.example/mcp").unwrap();
        assert_eq!(store.load_refresh_mark(&url).unwrap(), None);
        let token = crate::Secret::new("rt-1");
        let mark = RefreshMark::new(&token, 1_700_000_000);
        store.save_refresh_mark(&url, Some(&mark)).unwrap();
        let read = store.load_refresh_mark(&url).unwrap().unwrap();
        assert_eq!(read, mark);
        assert!(read.presented(&token));
        assert!(!read.presented(&crate::Secret::new("rt-2")));
        // The file holds a digest, never the token.
        let text = std::fs::read_to_string(store.refresh_mark_path(&url)).unwrap();
        assert!(!text.contains("rt-1"));
        store.save_refresh_mark(&url, None).unwrap();
        assert_eq!(store.load_refresh_mark(&url).unwrap(), None);
        // Removing what is not there is no error; neither is clearing.
        store.save_refresh_mark(&url, None).unwrap();
        std::fs::write(store.refresh_mark_path(&url), b"{not json").unwrap();
        assert!(store.load_refresh_mark(&url).is_err());
        store.clear(&url).unwrap();
        assert_eq!(store.load_refresh_mark(&url).unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
