//! From the command line to a session: each option to its builder method, the browser step
//! as a person at a terminal meets it, the secret read from where the user put it.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mcp_oauth_client::device::DeviceStep;
use mcp_oauth_client::{
    Assertion, BrowserStep, CallbackHost, FileTokenStorage, Session, SessionBuilder, Step,
};

use crate::Failure;
use crate::args::Options;
use crate::terminal;

/// How the browser step of this process can be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Person {
    /// A browser starts; the address to paste is taken too when there is a terminal.
    Browser,
    /// The URL is printed and the address the browser ended on is read from standard input,
    /// while the redirect may still come (`--no-browser`, or no browser can start and a
    /// terminal is there).
    Paste,
    /// Nothing can complete a login here: no browser starts and no terminal takes an address.
    Nobody,
}

impl Person {
    /// What this process can do, for a command whose stdin is the person's unless `bridge`.
    pub(crate) fn here(options: &Options, bridge: bool) -> Person {
        let terminal = !bridge && terminal::can_paste();
        match (options.no_browser, terminal::browser_can_start(), terminal) {
            (true, _, _) => Person::Paste,
            (false, true, _) => Person::Browser,
            (false, false, true) => Person::Paste,
            (false, false, false) => Person::Nobody,
        }
    }
}

impl Options {
    /// The MCP server URL (checked when parsed).
    pub(crate) fn url(&self) -> &str {
        self.url.as_deref().unwrap_or_default()
    }

    /// The token cache.
    pub(crate) fn storage(&self) -> Result<FileTokenStorage, Failure> {
        let dir = match &self.cache_dir {
            Some(d) => d.clone(),
            None => FileTokenStorage::default_dir()?,
        };
        Ok(FileTokenStorage::new(dir))
    }

    /// A builder with every option of the command line, for `url`.
    pub(crate) fn builder(&self, url: &str) -> Result<SessionBuilder, Failure> {
        let mut b = Session::builder(url);
        if let Some(d) = &self.cache_dir {
            b = b.cache_dir(d);
        }
        #[cfg(feature = "keyring")]
        if self.keyring {
            b = b.token_store(mcp_oauth_client::storage::KeyringTokenStore::new(
                self.storage()?.dir(),
            ));
        }
        if let Some(s) = &self.scopes {
            b = b.scopes(s.as_str());
        }
        if let Some(id) = &self.client_id {
            b = b.client_id(id);
        }
        if let Some(s) = client_secret(self.client_secret_file.as_deref())? {
            b = b.client_secret(s);
        }
        if let Some(f) = &self.client_key_file {
            b = b.client_key_file(f);
        }
        if let Some(m) = self.client_auth_method {
            b = b.client_auth_method(m);
        }
        if self.client_credentials {
            b = b.client_credentials();
        }
        if let Some(f) = &self.assertion_file {
            b = b.jwt_bearer(Assertion::File(f.clone()));
        }
        if let Some(p) = self.callback_port {
            b = b.callback_port(p);
        }
        if let Some(p) = &self.callback_path {
            b = b.callback_path(p);
        }
        if self.callback_localhost {
            b = b.callback_host(CallbackHost::Localhost);
        }
        for (name, value) in &self.authorize_params {
            b = b.authorize_param(name, value);
        }
        if let Some(f) = &self.ca_file {
            b = b.ca_file(f);
        }
        if let Some(t) = self.timeout {
            b = b.callback_timeout(Duration::from_secs(t));
        }
        if self.dpop || self.no_dpop {
            b = b.dpop(self.dpop);
        }
        // SIGINT and SIGTERM wait while a token request's answer is on its way to the cache.
        if let Some(deferral) = crate::signals::install() {
            b = b.critical_section(deferral.clone());
        }
        Ok(b.allow_private_network(self.allow_private_network)
            .interactive(!self.no_login)
            .omit_resource(self.omit_resource))
    }

    /// A session whose login talks to the person this process has (see [`Person`]); `done`
    /// stops the countdown, `progress` shows each step. With nobody to complete a login, the
    /// session starts none (a cached or refreshed token still comes).
    pub(crate) fn session_for(
        &self,
        person: Person,
        bridge: bool,
        done: &Arc<AtomicBool>,
        progress: bool,
    ) -> Result<Arc<Session>, Failure> {
        let mut b = self.builder(self.url())?;
        if progress {
            b = b.on_progress(terminal::progress_printer(Instant::now()));
        }
        let done = Arc::clone(done);
        let shown = (!bridge).then(|| Arc::clone(&done));
        if self.device {
            let b = b.device_login(move |step: &DeviceStep| {
                terminal::show_device_step(step, shown.clone());
            });
            return Ok(Arc::new(b.build()?));
        }
        if person == Person::Nobody {
            return Ok(Arc::new(b.interactive(false).build()?));
        }
        // The session, for the hook to cancel its login when the browser cannot start and
        // nothing can be pasted.
        let me: Arc<OnceLock<std::sync::Weak<Session>>> = Arc::new(OnceLock::new());
        let hook_me = Arc::clone(&me);
        let b = b.authorize_hook(move |step: &BrowserStep| {
            let opened = match person {
                Person::Browser => {
                    errln!(
                        "Opening your browser to authorize. If it does not open, visit:\n  {}",
                        step.authorization_url
                    );
                    match mcp_oauth_client::browser::open_browser(&step.launch_url) {
                        Ok(()) => true,
                        Err(e) => {
                            errln!("mcp-oauth: {e:#}; open the URL above by hand.");
                            false
                        }
                    }
                }
                _ => {
                    errln!(
                        "Open this URL in a browser to authorize:\n  {}",
                        step.authorization_url
                    );
                    false
                }
            };
            if bridge {
                return;
            }
            if person == Person::Paste || (!opened && terminal::can_paste()) {
                terminal::paste_prompt(step);
            } else if !opened {
                // The browser did not start and there is no terminal: nothing can finish this.
                if let Some(session) = hook_me.get().and_then(std::sync::Weak::upgrade) {
                    std::thread::spawn(move || {
                        session.cancel_login();
                    });
                }
                return;
            }
            terminal::countdown(
                &format!(
                    "Waiting for the authorization response at {}",
                    step.redirect_uri
                ),
                step.deadline,
                Arc::clone(&done),
            );
        });
        let session = Arc::new(b.build()?);
        let _ = me.set(Arc::downgrade(&session));
        Ok(session)
    }

    /// The record of a non-secret copy, read from the keyring with `--keyring`.
    pub(crate) fn read_keyring(
        &self,
        storage: &FileTokenStorage,
        copy: mcp_oauth_client::StoredTokens,
    ) -> Option<mcp_oauth_client::StoredTokens> {
        #[cfg(feature = "keyring")]
        if self.keyring {
            let url = url::Url::parse(&copy.server_url).ok()?;
            let store = mcp_oauth_client::storage::KeyringTokenStore::new(storage.dir());
            return mcp_oauth_client::TokenStore::load_tokens(&store, &url)
                .ok()
                .flatten();
        }
        let _ = (storage, copy);
        None
    }
}

/// The client secret: from `file` (`-`: standard input), else `MCP_OAUTH_CLIENT_SECRET`. One
/// final line break is dropped.
fn client_secret(file: Option<&std::path::Path>) -> Result<Option<String>, Failure> {
    use std::io::Read;
    let text = match file {
        Some(path) if path.as_os_str() == "-" => {
            let limit = mcp_oauth_client::local::MAX_USER_FILE;
            let mut text = String::new();
            std::io::stdin()
                .take(limit + 1)
                .read_to_string(&mut text)
                .map_err(|e| Failure::Other(format!("cannot read the client secret: {e:#}")))?;
            if text.len() as u64 > limit {
                return Err(Failure::Other(format!(
                    "the client secret on standard input is larger than {} KiB",
                    limit / 1024
                )));
            }
            text
        }
        Some(path) => {
            mcp_oauth_client::local::read_user_file(path, "the client secret", Step::Configure)?
        }
        None => match std::env::var("MCP_OAUTH_CLIENT_SECRET") {
            Ok(secret) => secret,
            Err(_) => return Ok(None),
        },
    };
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    Ok((!secret.is_empty()).then(|| secret.to_owned()))
}
