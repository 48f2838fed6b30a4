//! A headless user agent: follows the authorization server's redirects into the client's
//! loopback callback listener, the way a browser would after the user clicks "allow".
//!
//! [`HeadlessBrowser::hook`] plugs into
//! [`SessionBuilder::authorize_hook`](crate::SessionBuilder::authorize_hook): each
//! authorization URL is visited on its own thread (the session waits on its listener meanwhile),
//! and every visit is recorded for the test to inspect.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use crate::BrowserStep;

/// The most redirects followed in one visit.
pub const MAX_HOPS: usize = 10;

/// What one visit ended on.
#[derive(Debug, Clone)]
pub struct Visit {
    /// The URL first visited.
    pub start: Url,
    /// The last URL fetched (after redirects).
    pub final_url: Url,
    /// Its HTTP status.
    pub status: u16,
    /// Its body, as text (at most 1 MiB).
    pub body: String,
    /// Its response headers, names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Visit {
    /// The value of response header `name` on the last page.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Visits `url` and follows redirects (loopback hosts only), like a browser whose user
/// approves at once.
///
/// # Errors
/// An I/O error for a transport failure, a non-loopback URL or too many redirects.
pub fn follow_redirects(url: &Url) -> std::io::Result<Visit> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .new_agent();
    let mut current = url.clone();
    for _ in 0..=MAX_HOPS {
        if !crate::address::is_loopback(&current) {
            return Err(std::io::Error::other(format!(
                "the headless browser only visits loopback hosts, not {}",
                current.host_str().unwrap_or("")
            )));
        }
        let mut response = agent
            .get(current.as_str())
            .call()
            .map_err(std::io::Error::other)?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let location = headers
            .iter()
            .find(|(k, _)| k == "location")
            .map(|(_, v)| v.clone());
        if (300..400).contains(&status)
            && let Some(location) = location
        {
            current = current.join(&location).map_err(std::io::Error::other)?;
            continue;
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(1024 * 1024)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(std::io::Error::other)?;
        return Ok(Visit {
            start: url.clone(),
            final_url: current,
            status,
            body,
            headers,
        });
    }
    Err(std::io::Error::other("too many redirects"))
}

#[derive(Default)]
struct Log {
    visits: Vec<Result<Visit, String>>,
    opened: usize,
}

/// A stand-in for the user's browser that approves every authorization request.
#[derive(Clone, Default)]
pub struct HeadlessBrowser {
    log: Arc<(Mutex<Log>, Condvar)>,
}

impl std::fmt::Debug for HeadlessBrowser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadlessBrowser")
            .field("opened", &self.opened())
            .finish()
    }
}

impl HeadlessBrowser {
    /// A browser with no visits yet.
    pub fn new() -> HeadlessBrowser {
        HeadlessBrowser::default()
    }

    /// An authorize hook that opens each step's launch URL on a new thread, as the system
    /// browser would, and follows the redirects to the callback.
    pub fn hook(&self) -> impl FnMut(&BrowserStep) + Send + 'static {
        let log = Arc::clone(&self.log);
        move |step: &BrowserStep| {
            log.0.lock().unwrap_or_else(|p| p.into_inner()).opened += 1;
            let url = step.launch_url.clone();
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let visit = follow_redirects(&url).map_err(|e| e.to_string());
                let (lock, cv) = &*log;
                lock.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .visits
                    .push(visit);
                cv.notify_all();
            });
        }
    }

    /// How many browser steps the hook received.
    pub fn opened(&self) -> usize {
        self.log.0.lock().unwrap_or_else(|p| p.into_inner()).opened
    }

    /// Waits up to `timeout` until `n` visits have finished, and returns all visits so far.
    pub fn wait_for_visits(&self, n: usize, timeout: Duration) -> Vec<Result<Visit, String>> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.log;
        let mut log = lock.lock().unwrap_or_else(|p| p.into_inner());
        while log.visits.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            log = cv
                .wait_timeout(log, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        log.visits.clone()
    }
}
