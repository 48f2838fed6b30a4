//! SIGINT and SIGTERM in the CLI: acted on at once, except while the library is inside a
//! critical section (a token request's answer on its way to the cache, see
//! `mcp_oauth_client::CriticalSection`); then held until the section ends. A Ctrl-C while the
//! browser or the person is awaited still ends the process at once, and the cache is left as
//! it was.
//!
//! The choice: `signal-hook`'s iterator. Its handler only writes to a pipe; an ordinary thread
//! reads it and decides, so nothing of ours runs in signal context and there is no unsafe code
//! here. Blocking the signals with the signal mask instead would have to be done in every
//! thread the library starts (the callback listener's, the bridge's), since a signal goes to
//! any thread that does not block it.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use mcp_oauth_client::CriticalSection;

/// Open sections and the first signal that came during them.
#[derive(Default)]
struct State {
    open: usize,
    pending: Option<i32>,
}

/// The CLI's [`CriticalSection`]: counts open sections; a signal that arrives while one is open
/// ends the process when the last one closes.
#[derive(Clone, Default)]
pub struct Deferral(Arc<(Mutex<State>, Condvar)>);

static INSTALLED: OnceLock<Option<Deferral>> = OnceLock::new();

/// Starts receiving SIGINT and SIGTERM, once per process (one receiver, whoever asks first);
/// `None` where signals cannot be received this way (not Unix, or registration failed), and
/// the defaults stay.
pub fn install() -> Option<&'static Deferral> {
    INSTALLED
        .get_or_init(|| receive(Deferral::default()))
        .as_ref()
}

#[cfg(unix)]
fn receive(deferral: Deferral) -> Option<Deferral> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).ok()?;
    let receiver = deferral.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                receiver.arrived(signal);
            }
        })
        .ok()?;
    Some(deferral)
}

#[cfg(not(unix))]
fn receive(_: Deferral) -> Option<Deferral> {
    None
}

impl Deferral {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits, up to `within`, until no section is open: a program about to end (the bridge
    /// once its input is over) lets a refresh still on another thread store its tokens.
    pub fn wait_closed(&self, within: Duration) {
        let state = self.state();
        let _ = self
            .0
            .1
            .wait_timeout_while(state, within, |s| s.open > 0)
            .unwrap_or_else(PoisonError::into_inner);
    }

    /// A signal: acted on at once outside a section, else held, saying so once. A second one
    /// is held too: an impatient double Ctrl-C is common, and a section ends within its
    /// request's timeouts (SIGKILL remains for the rest).
    fn arrived(&self, signal: i32) {
        let mut state = self.state();
        if state.open == 0 {
            end(signal);
        }
        if state.pending.is_none() {
            state.pending = Some(signal);
            let _ = writeln!(
                std::io::stderr(),
                "mcp-oauth: storing the new tokens first, then stopping"
            );
        }
    }
}

impl CriticalSection for Deferral {
    fn enter(&self) {
        self.state().open += 1;
    }

    fn leave(&self) {
        let mut state = self.state();
        state.open = state.open.saturating_sub(1);
        if state.open == 0 {
            if let Some(signal) = state.pending {
                end(signal);
            }
            self.0.1.notify_all();
        }
    }
}

/// Ends the process the way `signal` would have without a handler, so that a parent sees it
/// killed by that signal (a shell reports 130 for SIGINT, 143 for SIGTERM).
fn end(signal: i32) -> ! {
    #[cfg(unix)]
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal)
}
