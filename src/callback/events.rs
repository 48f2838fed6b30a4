//! What reaches the thread waiting for the authorization response: requests that passed the
//! HTTP checks, addresses a person pasted, and cancellation; and the handles that send the last
//! two from other threads.

use std::net::TcpStream;
use std::sync::mpsc::{self, Sender};

/// What reaches the waiting thread.
pub(super) enum Event {
    /// A request that passed the HTTP checks, waiting for the verdict.
    Request(Candidate),
    /// An address pasted by the person ([`Paster::deliver`]), with where to say what came of it.
    Pasted(String, Sender<PasteOutcome>),
    /// [`Canceller::cancel`].
    Cancel,
}

/// A request that passed the HTTP checks, waiting for the verdict from the thread that holds
/// the expectation.
pub(super) struct Candidate {
    pub(super) stream: TcpStream,
    pub(super) kind: Kind,
}

/// Which of the two paths the request was for. (No `Debug` outside tests: it holds the code.)
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) enum Kind {
    /// The redirect URI, with its query parameters.
    Callback(Vec<(String, String)>),
    /// The launch path, with the nonce it named.
    Launch(String),
}

/// Delivers the address a browser ended on to a waiting [`CallbackListener`](super::CallbackListener), for a browser
/// that cannot reach the loopback listener (on another machine, over SSH, in a container): it
/// is checked exactly like a request to the redirect URI. Cheap to clone, `Send` and `Sync`.
#[derive(Debug, Clone)]
pub struct Paster {
    pub(super) tx: Sender<Event>,
}

/// What became of a pasted address.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasteOutcome {
    /// It was this login's authorization response: the login goes on with it (to the code
    /// exchange, or to the error the server sent).
    Delivered,
    /// Not an address of the redirect URI (`…/callback?…`).
    NotACallback,
    /// An authorization response, but not this login's (another or no `state`): the login
    /// keeps waiting.
    NotThisLogin,
    /// No login is waiting any more.
    Over,
}

impl Paster {
    /// Delivers `address`, the full URL the browser ended on, and says what came of it.
    pub fn deliver(&self, address: &str) -> PasteOutcome {
        let (reply, outcome) = mpsc::channel();
        if self
            .tx
            .send(Event::Pasted(address.trim().to_owned(), reply))
            .is_err()
        {
            return PasteOutcome::Over;
        }
        outcome.recv().unwrap_or(PasteOutcome::Over)
    }
}

/// Ends a wait for the person (a [`CallbackListener::wait`](super::CallbackListener::wait), a device login's polling) from
/// another thread with [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled).
pub(crate) struct Canceller(Box<dyn Fn() -> bool + Send>);

impl Canceller {
    /// A canceller that runs `cancel`, which says whether the wait was still on.
    pub(crate) fn new(cancel: impl Fn() -> bool + Send + 'static) -> Canceller {
        Canceller(Box::new(cancel))
    }

    /// Cancels the wait; false when it was already over.
    pub(crate) fn cancel(&self) -> bool {
        (self.0)()
    }
}
