//! What this machine tells the protocol steps: its clock, and the small files a user names (a
//! client secret, a client's private key, a workload identity token, a CA bundle). Below every
//! step, using none of them.
//!
//! A file is read whole when it is needed, so a name that leads somewhere else must not hold
//! the program: it is opened without blocking (a FIFO would wait for a writer forever), must
//! be a regular file (not `/dev/zero`, not a directory), and may be at most
//! [`MAX_USER_FILE`] bytes. A symlink is followed: the user named it (a Kubernetes token file
//! is one).

use std::fs::OpenOptions;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result, Step};

/// Seconds since the Unix epoch (0 on a clock set before it).
#[doc(hidden)]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The largest file of this kind read, in bytes: keys, secrets and tokens are a few KiB, and a
/// CA bundle of every public root about 220 KiB; 256 KiB holds any of them.
pub const MAX_USER_FILE: u64 = 256 * 1024;

/// Reads the file at `path` as text; `what` names it in errors.
///
/// # Errors
/// [`ErrorKind::Config`] in `step`, naming the file, when it cannot be opened or read, is not
/// a regular file, is larger than [`MAX_USER_FILE`], or is not UTF-8.
pub fn read_user_file(path: &Path, what: &str, step: Step) -> Result<String> {
    let refuse = |why: String| {
        Error::new(
            ErrorKind::Config,
            step,
            format!("cannot read {what} from {}: {why}", path.display()),
        )
    };
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options
        .open(path)
        .map_err(|e| refuse(e.kind().to_string()).with_source(e))?;
    let meta = file
        .metadata()
        .map_err(|e| refuse(e.kind().to_string()).with_source(e))?;
    if !meta.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_USER_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(e.kind().to_string()).with_source(e))?;
    if bytes.len() as u64 > MAX_USER_FILE {
        return Err(refuse(format!("larger than {} KiB", MAX_USER_FILE / 1024)));
    }
    String::from_utf8(bytes).map_err(|_| refuse("not UTF-8 text".into()))
}
