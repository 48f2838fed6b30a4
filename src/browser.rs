//! The browser step (RFC 8252 §4.1: the system browser, never an embedded one; §8.3: the
//! loopback redirect).
//!
//! The step is a value, [`BrowserStep`]: the authorization URL to show, a one-time launch URL
//! for a browser on this machine, the redirect URI being waited on, the deadline, and a
//! [`Paster`] for an address copied from a browser elsewhere. An authorize hook receives it
//! (front ends, GUIs, tests); without a hook the session opens the launch URL in the system
//! browser. The library prints nothing and reads nothing: what the person sees is the front
//! end's.

use std::time::{Duration, Instant};

use url::Url;

use crate::callback::Paster;
use crate::error::{Error, ErrorKind, Result, Step};

/// What a login needs from the browser, handed to the authorize hook.
#[non_exhaustive]
pub struct BrowserStep {
    /// The authorization URL, to show to the person (to copy into a browser on another
    /// machine, say). It carries `state` and the PKCE challenge: do not put it on a command
    /// line, which other local users can read; start a browser with
    /// [`launch_url`](Self::launch_url) instead.
    pub authorization_url: Url,
    /// A one-time `http://127.0.0.1:PORT/start/…` URL that redirects once to the authorization
    /// URL: what to start a browser on this machine with. Opened a second time, it stops the
    /// login (someone else read it).
    pub launch_url: Url,
    /// The loopback redirect URI the login waits on.
    pub redirect_uri: Url,
    /// When the login stops waiting.
    pub deadline: Instant,
    paster: Paster,
}

impl BrowserStep {
    pub(crate) fn new(
        authorization_url: Url,
        launch_url: Url,
        redirect_uri: Url,
        deadline: Instant,
        paster: Paster,
    ) -> BrowserStep {
        BrowserStep {
            authorization_url,
            launch_url,
            redirect_uri,
            deadline,
            paster,
        }
    }

    /// Delivers the address a browser ended on (for a browser that cannot reach this
    /// machine's loopback), checked like a request to the redirect URI. The handle may be kept
    /// and used from another thread while the login waits.
    pub fn paster(&self) -> Paster {
        self.paster.clone()
    }

    /// The time left before the login stops waiting.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

impl std::fmt::Debug for BrowserStep {
    /// Without the URLs' secrets: the authorization URL's query and the launch URL's path.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut authorize = self.authorization_url.clone();
        authorize.set_query(None);
        f.debug_struct("BrowserStep")
            .field("authorization_url", &authorize.as_str())
            .field("redirect_uri", &self.redirect_uri.as_str())
            .field("remaining", &self.remaining())
            .finish_non_exhaustive()
    }
}

/// A replacement for the system browser: called with the [`BrowserStep`] once the callback
/// listener is ready. It must return promptly (the login waits on the listener after it
/// returns), so a hook that drives the login itself does so on another thread.
pub type AuthorizeHook = Box<dyn FnMut(&BrowserStep) + Send>;

/// Opens `url` in the system browser (`webbrowser`, which tries `$BROWSER` first on Unix).
/// Prints nothing.
///
/// # Errors
/// [`ErrorKind::Browser`] when no browser could be started.
pub fn open_browser(url: &Url) -> Result<()> {
    webbrowser::open(url.as_str()).map_err(|e| {
        Error::new(
            ErrorKind::Browser,
            Step::Authorization,
            "no browser could be started; give the session an authorize hook that shows the \
             authorization URL",
        )
        .with_source(e)
    })
}
