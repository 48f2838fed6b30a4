//! `login` and `token`: a login through the browser (or a device, or a grant without a
//! person), stored in the cache; `token` prints what another program can use.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mcp_oauth_client::internals::unix_now;
use mcp_oauth_client::{Error, ErrorKind, Secret, Session, printable};

use crate::Failure;
use crate::args::Options;
use crate::terminal::Verbosity;
use crate::wiring::Person;

/// `login`: always a new login, whose tokens must be stored.
pub(crate) fn login(options: &Options) -> Result<(), Failure> {
    let person = Person::here(options, false);
    if person == Person::Nobody && !options.device {
        return Err(nobody_to_log_in(options.url()));
    }
    options.storage_checked()?;
    let done = Arc::new(AtomicBool::new(false));
    // At -v the log says the same, line for line.
    let progress = options.verbosity == Verbosity::Normal;
    let session = options.session_for(person, false, &done, progress)?;
    let result = session.login();
    done.store(true, Ordering::SeqCst);
    let token = result.map_err(|e| why_no_login(e, person, options.url()))?;
    stored(&session, &token)?;
    sayln!("Logged in to {}", session.server_url());
    Ok(())
}

/// `token`: a valid token, from the cache, a refresh, or a login; printed for another
/// program.
pub(crate) fn token(options: &Options) -> Result<(), Failure> {
    let person = Person::here(options, false);
    if !options.no_login {
        options.storage_checked()?;
    }
    let done = Arc::new(AtomicBool::new(false));
    let session = options.session_for(person, false, &done, false)?;
    let token = if options.refresh {
        session.refresh()
    } else {
        session.access_token()
    };
    done.store(true, Ordering::SeqCst);
    let token = token.map_err(|e| why_no_login(e, person, options.url()))?;
    let cached = session
        .store()
        .load_tokens(session.server_url())
        .ok()
        .flatten();
    if !options.no_login
        && cached
            .as_ref()
            .is_none_or(|c| c.tokens.access_token.secret() != token.secret())
    {
        stored(&session, &token)?;
    }
    if options.header_json {
        let header = session.authorization_header()?;
        outln!("{}", serde_json::json!({ "Authorization": header }));
        return Ok(());
    }
    let tokens = cached.as_ref().map(|s| &s.tokens);
    if tokens.is_some_and(|t| t.is_dpop()) {
        sayln!(
            "mcp-oauth: this token is bound to a DPoP key (--dpop): a server takes it only with \
             a proof signed by that key; without --dpop, token gives a Bearer token"
        );
    }
    if !options.json {
        outln!("{}", token.secret());
        return Ok(());
    }
    let expires_at = tokens.and_then(|t| t.expires_at);
    let json = serde_json::json!({
        "access_token": token.secret(),
        "token_type": tokens.map_or("Bearer", |t| t.token_type.as_str()),
        "expires_at": expires_at,
        "expires_in": expires_at.map(|t| t.saturating_sub(unix_now())),
        "scope": tokens.and_then(|t| t.scope.as_deref()).map(printable),
        "issuer": cached.as_ref().map(|s| printable(&s.issuer)),
    });
    outln!("{json:#}");
    Ok(())
}

/// Fails when the token just obtained is not what the cache holds now: the login happened,
/// but the next command would not find it.
fn stored(session: &Session, token: &Secret) -> Result<(), Failure> {
    let held = session.store().load_tokens(session.server_url());
    let kept = matches!(&held, Ok(Some(t)) if t.tokens.access_token.secret() == token.secret());
    if kept {
        return Ok(());
    }
    let where_ = session
        .file_store()
        .map(|f| f.dir().display().to_string())
        .unwrap_or_else(|| "the token store".into());
    let why = match held {
        Err(e) => format!("{e:#}"),
        Ok(_) => "the tokens were not written there (see the warning above)".into(),
    };
    Err(Failure::Stored(format!(
        "logged in, but the tokens are not cached in {where_}: {why}"
    )))
}

/// The error of a login that could not happen: named for what the person can do.
fn why_no_login(e: Error, person: Person, url: &str) -> Failure {
    match e.kind() {
        ErrorKind::LoginRequired if person == Person::Nobody => nobody_to_log_in(url),
        ErrorKind::Cancelled if person == Person::Browser => nobody_to_log_in(url),
        _ => Failure::Error(e),
    }
}

/// Nothing here can complete a login: no browser starts and no terminal takes a pasted
/// address.
pub(crate) fn nobody_to_log_in(url: &str) -> Failure {
    let url = printable(url);
    Failure::LoginNeeded(format!(
        "a login is needed for {url}, and none can be done here: no browser can be started \
         and there is no terminal to paste into. Run `mcp-oauth login {url}` in a terminal, \
         or `mcp-oauth login {url} --device` to sign in on another device"
    ))
}

impl Options {
    /// The cache, once it is known that tokens can be written there (with `--keyring`, the
    /// keyring too, and the directory that keeps copies without secrets): a login whose tokens
    /// could not be stored would be lost to the next command.
    pub(crate) fn storage_checked(&self) -> Result<(), Failure> {
        let files = self.storage()?;
        files.check_writable()?;
        #[cfg(feature = "keyring")]
        if self.keyring {
            mcp_oauth_client::storage::KeyringTokenStore::new(files.dir()).probe()?;
        }
        Ok(())
    }
}
