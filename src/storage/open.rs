//! Opening cache files as untrusted input: the cache directory may be shared, or another
//! process of another user may have planted a symlink or a FIFO under one of our names.
//!
//! Every cache file (tokens, client, lock) is opened without following a symlink and without
//! blocking on a FIFO, then checked on the opened handle, not on the path: it must be a
//! regular file owned by this user; group and other permissions are removed through the
//! handle. The directory is checked the same way (it may itself be a symlink the user made).

use std::fs::{self, File, OpenOptions};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result, Step};

/// Opens an existing cache file for reading; `Ok(None)` when there is none.
pub(super) fn open_existing(path: &Path) -> Result<Option<File>> {
    let mut options = OpenOptions::new();
    options.read(true);
    match no_follow(options).open(path) {
        Ok(file) => checked(file, path, 0o600).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(refusal_or_io(path, e)),
    }
}

/// Opens the lock file, creating it (mode 0600) when there is none.
pub(super) fn open_lock(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = no_follow(options)
        .open(path)
        .map_err(|e| refusal_or_io(path, e))?;
    checked(file, path, 0o600)
}

/// Checks the cache directory (following a symlink the user made to it): a directory owned by
/// this user, not open to others.
pub(super) fn check_dir(dir: &Path) -> Result<()> {
    let handle = File::open(dir).map_err(|e| storage_io("cannot open", dir, e))?;
    checked(handle, dir, 0o700).map(drop)
}

/// `options` that neither follow a final symlink nor block on a FIFO (Unix).
fn no_follow(mut options: OpenOptions) -> OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NOFOLLOW | libc::O_NONBLOCK,
    );
    options
}

/// The checks on an opened handle: a regular file (or, for `mode` 0700, a directory) owned by
/// this user; group and other permissions removed through the handle, never through the path.
fn checked(file: File, path: &Path, mode: u32) -> Result<File> {
    let meta = file
        .metadata()
        .map_err(|e| storage_io("cannot read", path, e))?;
    let right_type = if mode == 0o700 {
        meta.is_dir()
    } else {
        meta.is_file()
    };
    if !right_type {
        return Err(refused(
            path,
            if mode == 0o700 {
                "is not a directory"
            } else {
                "is not a regular file (a FIFO, a device or a directory)"
            },
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if let Some(uid) = current_uid()
            && meta.uid() != uid
        {
            return Err(refused(
                path,
                &format!("belongs to user {}, not to this user", meta.uid()),
            ));
        }
        if meta.mode() & 0o077 != 0 {
            // Group and other rights are taken away; the owner's are kept within `mode`, never
            // added (a directory made read-only on purpose stays read-only).
            let restricted = meta.mode() & 0o7700 & (mode | 0o7000);
            log::warn!("{} was open to others; restricting it", path.display());
            file.set_permissions(fs::Permissions::from_mode(restricted))
                .map_err(|e| storage_io("cannot restrict the mode of", path, e))?;
        }
    }
    Ok(file)
}

/// Our user id, where the platform tells it without `unsafe` (`/proc/self` belongs to it).
#[cfg(unix)]
fn current_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

fn refused(path: &Path, why: &str) -> Error {
    Error::new(
        ErrorKind::Storage,
        Step::Storage,
        format!("{} {why}; refusing to use it", path.display()),
    )
}

/// A symlink refused by `O_NOFOLLOW` (ELOOP) reads as a refusal; other errors as I/O.
fn refusal_or_io(path: &Path, e: std::io::Error) -> Error {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return refused(path, "is a symbolic link");
    }
    storage_io("cannot open", path, e)
}

/// A storage error for `what` failed on `path`, with the I/O error as its cause.
pub(super) fn storage_io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Storage,
        Step::Storage,
        format!("{what} {}", path.display()),
    )
    .with_source(e)
}
