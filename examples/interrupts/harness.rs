//! The harness itself (Unix: signals, `waitid`); see `main.rs`.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_oauth_client::Session;
use mcp_oauth_client::internals::{parse_refresh_mark, parse_stored_client};
use mcp_oauth_client::storage::parse_stored_tokens;
use mcp_oauth_client::testing::{Fault, HeadlessBrowser, Route, ServerConfig, TestServer};

/// The exit code of `mcp-oauth` when only a login would help and `--no-login` forbids one.
const LOGIN_REQUIRED: i32 = 8;

struct Options {
    signals: Vec<i32>,
    processes: usize,
    calls: usize,
    every: Duration,
    lifetime: i64,
    slow_token: Duration,
    cli: PathBuf,
    url: Option<String>,
    cache_dir: Option<PathBuf>,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        signals: vec![libc::SIGINT, libc::SIGTERM],
        processes: 8,
        calls: 400,
        every: Duration::from_millis(10),
        lifetime: 2,
        slow_token: Duration::from_millis(20),
        cli: std::env::current_exe()
            .ok()
            .and_then(|p| Some(p.parent()?.parent()?.join("mcp-oauth")))
            .unwrap_or_else(|| PathBuf::from("mcp-oauth")),
        url: None,
        cache_dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--signals" => {
                o.signals = value()?
                    .split(',')
                    .map(|s| match s.trim().to_ascii_lowercase().as_str() {
                        "int" => Ok(libc::SIGINT),
                        "term" => Ok(libc::SIGTERM),
                        "kill" => Ok(libc::SIGKILL),
                        other => Err(format!("unknown signal {other}")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--processes" => o.processes = number(value()?)? as usize,
            "--calls" => o.calls = number(value()?)? as usize,
            "--every-ms" => o.every = Duration::from_millis(number(value()?)?),
            "--lifetime" => o.lifetime = number(value()?)? as i64,
            "--slow-token-ms" => o.slow_token = Duration::from_millis(number(value()?)?),
            "--cli" => o.cli = value()?.into(),
            "--url" => o.url = Some(value()?),
            "--cache-dir" => o.cache_dir = Some(value()?.into()),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if o.signals.is_empty() || o.processes == 0 {
        return Err("needs a signal and a process".into());
    }
    Ok(o)
}

fn signal_name(s: i32) -> &'static str {
    match s {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGKILL => "SIGKILL",
        _ => "?",
    }
}

/// The server the calls go to, and how a lost grant is logged in again.
enum Target {
    Embedded {
        server: TestServer,
        browser: HeadlessBrowser,
    },
    External,
}

/// What the workers share.
struct Run {
    url: String,
    cache: PathBuf,
    cli: PathBuf,
    target: Target,
    /// The processes running now; a signal goes only to one of these, and a process leaves
    /// the set before it is reaped, so its pid cannot have been reused.
    running: Mutex<BTreeSet<u32>>,
    /// Held while a lost grant is logged in again; the number of logins since the start.
    relogins: Mutex<usize>,
    ok: AtomicUsize,
    interrupted: AtomicUsize,
    lost: AtomicUsize,
    failed: Mutex<Vec<String>>,
    signals_sent: AtomicUsize,
}

impl Run {
    /// A new login after a lost grant, unless another worker has just done it (`seen` is the
    /// login count the caller's failure happened under).
    fn relogin(&self, seen: usize) -> Result<(), String> {
        let mut relogins = self.relogins.lock().unwrap();
        if *relogins != seen {
            return Ok(());
        }
        match &self.target {
            Target::Embedded { browser, .. } => {
                let session = Session::builder(&self.url)
                    .cache_dir(&self.cache)
                    .authorize_hook(browser.hook())
                    .build()
                    .map_err(|e| e.to_string())?;
                session.login().map_err(|e| e.to_string())?;
            }
            Target::External => {
                let status = Command::new(&self.cli)
                    .args(["login", &self.url, "--cache-dir"])
                    .arg(&self.cache)
                    .stdin(Stdio::null())
                    .status()
                    .map_err(|e| e.to_string())?;
                if !status.success() {
                    return Err(format!("mcp-oauth login: {status}"));
                }
            }
        }
        *relogins += 1;
        Ok(())
    }

    /// `mcp-oauth token URL --no-login` on the shared cache, stdin and stdout closed.
    fn token_command(&self) -> Command {
        let mut cmd = Command::new(&self.cli);
        cmd.args(["token", &self.url, "--no-login", "--cache-dir"])
            .arg(&self.cache)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        cmd
    }

    /// One `mcp-oauth token --no-login`, its outcome counted.
    fn call(&self) -> Result<(), String> {
        let seen = *self.relogins.lock().unwrap();
        let mut child = self
            .token_command()
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", self.cli.display()))?;
        let pid = child.id();
        self.running.lock().unwrap().insert(pid);
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        wait_without_reaping(pid);
        self.running.lock().unwrap().remove(&pid);
        let status = child.wait().map_err(|e| e.to_string())?;
        if status.signal().is_some() {
            self.interrupted.fetch_add(1, Ordering::Relaxed);
        } else if status.success() {
            self.ok.fetch_add(1, Ordering::Relaxed);
        } else if status.code() == Some(LOGIN_REQUIRED) {
            self.lost.fetch_add(1, Ordering::Relaxed);
            self.relogin(seen)?;
        } else {
            let line = stderr.lines().last().unwrap_or_default().to_owned();
            self.failed
                .lock()
                .unwrap()
                .push(format!("{status}: {line}"));
        }
        Ok(())
    }

    /// Sends one of `signals` to a random running call.
    fn strike(&self, signals: &[i32]) {
        let running = self.running.lock().unwrap();
        if running.is_empty() {
            return;
        }
        let pick = random() as usize;
        let Some(&pid) = running.iter().nth(pick % running.len()) else {
            return;
        };
        let signal = signals[(pick / 7) % signals.len()];
        // SAFETY: kill(2) with a pid this process spawned and has not reaped (it is still in
        // `running`, under the lock), so it names that child and no other process.
        if unsafe { libc::kill(pid as libc::pid_t, signal) } == 0 {
            self.signals_sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Waits until `pid` (a child) has exited, leaving it to be reaped.
fn wait_without_reaping(pid: u32) {
    loop {
        // SAFETY: waitid(2) on our own child with a zeroed siginfo_t it fills in; WNOWAIT
        // leaves the child a zombie, so its pid stays ours until `Child::wait`.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return;
        }
    }
}

fn random() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("OS randomness");
    u64::from_le_bytes(b)
}

/// What the cache directory holds after the run.
#[derive(Default)]
struct Files {
    total: usize,
    corrupt: Vec<String>,
    open_to_others: Vec<String>,
    half_written: Vec<String>,
}

fn check_files(dir: &Path) -> Files {
    let mut f = Files::default();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        f.total += 1;
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.file_type().is_file() {
            f.corrupt.push(format!("{name} (not a regular file)"));
            continue;
        }
        if meta.permissions().mode() & 0o077 != 0 {
            f.open_to_others.push(name.clone());
        }
        if name.starts_with('.') && name.ends_with(".tmp") {
            f.half_written.push(name);
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        let parsed = if name.ends_with("_tokens.json") {
            parse_stored_tokens(&bytes).map(drop)
        } else if name.ends_with("_client_info.json") {
            parse_stored_client(&bytes).map(drop)
        } else if name.ends_with("_refreshing.json") {
            parse_refresh_mark(&bytes).map(drop)
        } else {
            Ok(())
        };
        if let Err(e) = parsed {
            f.corrupt.push(format!("{name}: {e}"));
        }
    }
    f
}

pub fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("interrupts: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&o) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("interrupts: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(o: &Options) -> Result<bool, String> {
    let temp;
    let (url, cache, target) = match (&o.url, &o.cache_dir) {
        (Some(url), Some(dir)) => (url.clone(), dir.clone(), Target::External),
        (None, None) => {
            let server = TestServer::start_with(ServerConfig {
                strict_refresh_reuse: true,
                ..ServerConfig::default()
            })
            .map_err(|e| e.to_string())?;
            server.set_access_token_lifetime(o.lifetime);
            temp = std::env::temp_dir().join(format!("mcp-oauth-interrupts-{}", random()));
            std::fs::create_dir(&temp).map_err(|e| e.to_string())?;
            let browser = HeadlessBrowser::new();
            Session::builder(server.mcp_url().as_str())
                .cache_dir(&temp)
                .authorize_hook(browser.hook())
                .build()
                .and_then(|s| s.login())
                .map_err(|e| format!("the first login: {e:#}"))?;
            if !o.slow_token.is_zero() {
                server.set_fault(Route::Token, Fault::slow(o.slow_token));
            }
            (
                server.mcp_url().to_string(),
                temp.clone(),
                Target::Embedded { server, browser },
            )
        }
        _ => return Err("--url and --cache-dir go together".into()),
    };
    let names: Vec<&str> = o.signals.iter().map(|&s| signal_name(s)).collect();
    println!(
        "{} at random, one every {} ms, to {} processes x {} calls of `mcp-oauth token \
         --no-login` on one cache",
        names.join(" and "),
        o.every.as_millis(),
        o.processes,
        o.calls
    );
    match &target {
        Target::Embedded { .. } => println!(
            "server: the embedded one, strict refresh-reuse detection, access tokens live {} s, \
             token endpoint answering {} ms late",
            o.lifetime,
            o.slow_token.as_millis()
        ),
        Target::External => println!("server: {url}"),
    }
    let run = Arc::new(Run {
        url,
        cache: cache.clone(),
        cli: o.cli.clone(),
        target,
        running: Mutex::new(BTreeSet::new()),
        relogins: Mutex::new(0),
        ok: AtomicUsize::new(0),
        interrupted: AtomicUsize::new(0),
        lost: AtomicUsize::new(0),
        failed: Mutex::new(Vec::new()),
        signals_sent: AtomicUsize::new(0),
    });
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let striker = {
        let (run, done, signals, every) = (
            Arc::clone(&run),
            Arc::clone(&done),
            o.signals.clone(),
            o.every,
        );
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(every);
                run.strike(&signals);
            }
        })
    };
    let workers: Vec<_> = (0..o.processes)
        .map(|_| {
            let (run, calls) = (Arc::clone(&run), o.calls);
            std::thread::spawn(move || (0..calls).try_for_each(|_| run.call()))
        })
        .collect();
    let mut error = None;
    for w in workers {
        if let Err(e) = w.join().unwrap_or_else(|_| Err("a worker panicked".into())) {
            error.get_or_insert(e);
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = striker.join();
    let elapsed = started.elapsed();
    if let Some(e) = error {
        return Err(e);
    }
    // The grant is alive at the end: one more call, left alone, succeeds.
    let last = run
        .token_command()
        .stderr(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    let files = check_files(&cache);

    let failed = run.failed.lock().unwrap().clone();
    let relogins = *run.relogins.lock().unwrap();
    let lost = run.lost.load(Ordering::Relaxed);
    println!(
        "calls: {} in {:.1} s; succeeded {}, ended by a signal {}, refused for want of a login \
         {lost}, failed otherwise {}",
        o.processes * o.calls,
        elapsed.as_secs_f64(),
        run.ok.load(Ordering::Relaxed),
        run.interrupted.load(Ordering::Relaxed),
        failed.len()
    );
    println!("signals sent: {}", run.signals_sent.load(Ordering::Relaxed));
    if let Target::Embedded { server, .. } = &run.target {
        let requests = server.requests();
        let grant_of = |g: &str| {
            requests
                .iter()
                .filter(|r| r.route == Some(Route::Token))
                .filter(|r| r.form_param("grant_type").as_deref() == Some(g))
                .count()
        };
        println!(
            "server: {} refreshes, {} grants revoked for a spent refresh token presented again, \
             {} code exchanges (the first login included)",
            grant_of("refresh_token"),
            server.family_revocations(),
            grant_of("authorization_code")
        );
    }
    println!("authorizations the signals cost (new logins after the first): {relogins}");
    println!(
        "cache files: {}; corrupt {}, half-written {}, open to others {}; a last call {}",
        files.total,
        files.corrupt.len(),
        files.half_written.len(),
        files.open_to_others.len(),
        if last.success() { "succeeds" } else { "FAILS" }
    );
    for line in failed.iter().take(5) {
        println!("  failed: {line}");
    }
    for line in files.corrupt.iter().chain(&files.open_to_others).take(5) {
        println!("  file: {line}");
    }
    if o.url.is_none() {
        let _ = std::fs::remove_dir_all(&cache);
    }
    // SIGKILL: figures only (what no handler can hold costs what it costs), but no file may
    // be corrupt or open to others even then.
    let files_sound = files.corrupt.is_empty() && files.open_to_others.is_empty();
    if o.signals.contains(&libc::SIGKILL) {
        return Ok(files_sound && failed.is_empty());
    }
    let clean = files_sound && files.half_written.is_empty();
    // A run whose signals never landed proves nothing.
    let struck = run.interrupted.load(Ordering::Relaxed) > 0;
    if !struck {
        println!("  no call was ended by a signal: nothing was tested");
    }
    Ok(struck && relogins == 0 && lost == 0 && failed.is_empty() && clean && last.success())
}
