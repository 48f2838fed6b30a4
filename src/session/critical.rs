//! Critical sections: from a token request leaving to its tokens durably stored.
//!
//! A refresh at a server that rotates refresh tokens spends the old one the moment the server
//! answers; a code exchange spends the code. A process that stops between that moment and the
//! write of the new tokens has lost them, and with reuse detection (RFC 9700 §4.14.2) the next
//! refresh, presenting the spent token, revokes the whole grant: a new login. The session
//! keeps that window short (the tokens are written, with `fsync`, before anything else is done
//! with them) and tells a [`CriticalSection`] when it opens and closes, so that a front end can
//! hold off SIGINT and SIGTERM for its length. The library itself installs no signal handler.

use std::sync::Arc;

/// Told when the session enters and leaves a critical section, for a front end that defers
/// interruptions (SIGINT, SIGTERM, a service stop) until the section ends; see
/// [`SessionBuilder::critical_section`](crate::SessionBuilder::critical_section).
///
/// A section starts just before a token request leaves (a refresh, a code exchange, a grant,
/// one poll of a device login) and ends once its answer is handled: new tokens written to the
/// store durably, or the request failed. Each lasts at most one request's timeouts (DPoP
/// nonce retry included) and one write. Waiting for the browser or the person is never inside
/// one. Sections of different threads may overlap: count them.
pub trait CriticalSection: Send + Sync {
    /// A section begins: defer interruptions.
    fn enter(&self);
    /// A section ended: interruptions deferred meanwhile may be acted on once no section is
    /// open.
    fn leave(&self);
}

/// The session's [`CriticalSection`], when it was given one.
#[derive(Clone, Default)]
pub(crate) struct Critical(Option<Arc<dyn CriticalSection>>);

impl Critical {
    pub(crate) fn new(hook: Option<Arc<dyn CriticalSection>>) -> Critical {
        Critical(hook)
    }

    /// Enters a section, left when the returned guard drops (on every path, errors and
    /// panics included).
    pub(crate) fn hold(&self) -> Held {
        if let Some(hook) = &self.0 {
            hook.enter();
        }
        Held(self.0.clone())
    }
}

/// Inside a critical section until dropped.
#[must_use = "the section ends when this is dropped"]
pub(crate) struct Held(Option<Arc<dyn CriticalSection>>);

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(hook) = &self.0 {
            hook.leave();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI32, Ordering};

    struct Depth(AtomicI32);
    impl CriticalSection for Depth {
        fn enter(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn leave(&self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_guard_leaves_on_drop_and_on_unwind() {
        let depth = Arc::new(Depth(AtomicI32::new(0)));
        let critical = Critical::new(Some(depth.clone() as Arc<dyn CriticalSection>));
        let held = critical.hold();
        assert_eq!(depth.0.load(Ordering::SeqCst), 1);
        drop(held);
        assert_eq!(depth.0.load(Ordering::SeqCst), 0);
        let c = critical.clone();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = c.hold();
            panic!("inside");
        }));
        assert_eq!(depth.0.load(Ordering::SeqCst), 0);
        // Without a hook, holding is free and harmless.
        let _held = Critical::default().hold();
    }
}
