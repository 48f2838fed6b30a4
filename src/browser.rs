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

/// Lets the user paste the URL the browser ended on, for when the browser cannot reach the
/// loopback listener (another machine, SSH, a container). Each pasted line is delivered to the
/// listener at `redirect_uri` as the request the browser would have made, so it is checked
/// exactly like one (`state`, `iss`, `error`); a wrong one is answered and the wait goes on.
///
/// Reads standard input on a thread of its own, which ends at the end of input or once the
/// listener is gone; until then it keeps waiting for a line, so use this in programs that own
/// their standard input (command-line tools).
pub fn accept_pasted_redirects(redirect_uri: &Url) {
    let redirect_uri = redirect_uri.clone();
    eprintln!(
        "If your browser cannot reach this machine, paste the address it ended on \
         (starting with {redirect_uri}) here and press Enter:"
    );
    std::thread::spawn(move || {
        let agent = crate::http::new_agent();
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { return };
            let Some(query) = Url::parse(line.trim())
                .ok()
                .and_then(|u| u.query().map(str::to_owned))
            else {
                if !line.trim().is_empty() {
                    eprintln!("That is not the address of the authorization response; try again:");
                }
                continue;
            };
            let mut target = redirect_uri.clone();
            target.set_query(Some(&query));
            // The listener binds 127.0.0.1 whatever name the redirect URI uses.
            let _ = target.set_host(Some("127.0.0.1"));
            match agent.get(target.as_str()).call() {
                Ok(r) if r.status().is_success() => return,
                Ok(_) => eprintln!("That address does not belong to this login; try again:"),
                // The listener is gone: the login ended another way.
                Err(_) => return,
            }
        }
    });
}
