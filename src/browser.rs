//! Sending the user to the authorization URL (RFC 8252 §4.1: the system browser, never an
//! embedded one).
//!
//! The URL is always printed to stderr as well, so a user whose browser did not open can
//! copy it. An authorize hook replaces the browser for tests, GUIs and headless use.

use url::Url;

/// A replacement for the browser: called with the authorization URL once the callback listener
/// is ready. It must return promptly (the flow waits on the listener after it returns), so a
/// hook that drives the login itself should do so on another thread.
pub type AuthorizeHook = Box<dyn FnMut(&Url) + Send>;

/// Opens `url` in the user's browser and prints it to stderr. Returns false when no browser
/// could be started; the user can still open the printed URL by hand.
pub fn open_browser(url: &Url) -> bool {
    eprintln!("Opening your browser to authorize. If it does not open, visit:\n  {url}");
    match webbrowser::open(url.as_str()) {
        Ok(()) => true,
        Err(e) => {
            log::warn!("could not open a browser: {e}");
            eprintln!("No browser could be opened; open the URL above by hand.");
            false
        }
    }
}
