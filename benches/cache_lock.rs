//! The cost of the cross-process cache lock (issue: many processes, one token cache).
//!
//! Measures, in one run on this machine, the median `Session::access_token()` time on the
//! cached-token path with no other process around and with 7 other processes hammering the
//! same cache entry's lock, and the median time to take and release that lock in both cases.
//! Prints medians and ratios; asserts nothing (this machine is shared and noisy).
//!
//! ```sh
//! cargo bench --features test-server --bench cache_lock
//! ```

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use mcp_oauth_client::testing::{HeadlessBrowser, TestServer};
use mcp_oauth_client::{FileTokenStorage, Session};

const SAMPLES: usize = 5000;
const CONTENDERS: usize = 7;

fn main() {
    if let Ok(until) = std::env::var("BENCH_CHILD_UNTIL_MS") {
        contend(until.parse().unwrap());
        return;
    }
    let server = TestServer::start().unwrap();
    let cache = std::env::temp_dir().join(format!("mcp-oauth-bench-{}", std::process::id()));
    let browser = HeadlessBrowser::new();
    let session = Session::builder(server.mcp_url().as_str())
        .cache_dir(&cache)
        .authorize_hook(browser.hook())
        .build()
        .unwrap();
    session.access_token().unwrap();
    let storage = FileTokenStorage::new(&cache);
    let url = server.mcp_url();

    let cached = || median(SAMPLES, || drop(session.access_token().unwrap()));
    let lock = || {
        median(SAMPLES, || {
            drop(storage.lock(&url, Duration::from_secs(10)).unwrap())
        })
    };

    let quiet_cached = cached();
    let quiet_lock = lock();

    let children = spawn_contenders(&server, &cache, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    let busy_cached = cached();
    let busy_lock = lock();
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let _ = std::fs::remove_dir_all(&cache);

    println!("cache lock cost, medians of {SAMPLES} calls, {CONTENDERS} contending processes");
    println!("| path | alone (median, p90) | contended (median, p90) | ratio of medians |");
    println!("| --- | ---: | ---: | ---: |");
    row("access_token(), cached token", quiet_cached, busy_cached);
    row("lock() + release", quiet_lock, busy_lock);
}

fn row(name: &str, alone: (Duration, Duration), busy: (Duration, Duration)) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "| {name} | {:.1} us, {:.1} us | {:.1} us, {:.1} us | {:.2}x |",
        us(alone.0),
        us(alone.1),
        us(busy.0),
        us(busy.1),
        busy.0.as_secs_f64() / alone.0.as_secs_f64()
    );
}

/// The median and 90th percentile of `n` timed calls.
fn median(n: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[n / 2], times[n * 9 / 10])
}

fn spawn_contenders(server: &TestServer, cache: &std::path::Path, for_: Duration) -> Vec<Child> {
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        + for_;
    (0..CONTENDERS)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .env("BENCH_CHILD_UNTIL_MS", until.as_millis().to_string())
                .env("BENCH_URL", server.mcp_url().as_str())
                .env("BENCH_CACHE", cache)
                .spawn()
                .unwrap()
        })
        .collect()
}

/// A contender: takes and releases the entry's lock, re-reading the tokens under it (what a
/// process checking a stale token does), until the deadline.
fn contend(until_ms: u128) {
    let url = url::Url::parse(&std::env::var("BENCH_URL").unwrap()).unwrap();
    let storage = FileTokenStorage::new(std::env::var("BENCH_CACHE").unwrap());
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    };
    while now() < until_ms {
        let _lock = storage.lock(&url, Duration::from_secs(10)).unwrap();
        let _ = storage.load_tokens(&url);
    }
}
