//! What the person at the terminal sees and types: progress lines, warnings, the browser
//! step's URL and paste prompt, the countdown, the device step; and the logger (`-v`, `-q`,
//! `RUST_LOG`). Only the requested output (a token, a status) goes to stdout.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mcp_oauth_client::device::DeviceStep;
use mcp_oauth_client::{BrowserStep, PasteOutcome, Progress, printable};

/// How much the CLI says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) enum Verbosity {
    /// Errors only (`-q`).
    Quiet,
    /// Warnings, and the progress of a login (the default).
    #[default]
    Normal,
    /// Also the library's log at `info` (`-v`).
    Verbose,
    /// Also at `debug` (`-vv`).
    Debug,
}

/// On a terminal the countdown may hold the line: what clears it first.
fn clear() -> &'static str {
    if std::io::stderr().is_terminal() {
        "\r\x1b[K"
    } else {
        ""
    }
}

/// A progress printer: each step of a login on its own line, with the time since `start`.
pub(crate) fn progress_printer(start: Instant) -> impl Fn(&Progress) + Send + Sync + 'static {
    move |event: &Progress| {
        errln!(
            "{}   [{:>5} ms] {event}",
            clear(),
            start.elapsed().as_millis()
        );
    }
}

/// Set once by [`Logger::install`] for `-q`.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether only errors are to be shown (`-q`).
pub(crate) fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Prints log records to stderr: this crate's at the level asked (`-q`, `-v`, `-vv`, or
/// `RUST_LOG`), other crates' only when `RUST_LOG` names them. The HTTP layers (`ureq`,
/// `ureq_proto`, `rustls`) never reach the terminal below `info`: ureq's protocol layer logs
/// request and response bytes, tokens included, at `trace`.
pub(crate) struct Logger {
    /// `(target prefix, most verbose level)`, longest prefix first; `""` is every target.
    rules: Vec<(String, log::LevelFilter)>,
}

/// The targets that may carry secrets below `info`.
const HTTP_LAYERS: [&str; 3] = ["ureq", "ureq_proto", "rustls"];

impl Logger {
    /// Installs the logger for `verbosity`, or for `RUST_LOG` when it is set and valid.
    ///
    /// # Errors
    /// `RUST_LOG`'s value, when it is not a list of `level` or `target=level`.
    pub(crate) fn install(verbosity: Verbosity) -> Result<(), String> {
        QUIET.store(
            verbosity == Verbosity::Quiet,
            std::sync::atomic::Ordering::Relaxed,
        );
        let ours = match verbosity {
            Verbosity::Quiet => log::LevelFilter::Error,
            Verbosity::Normal => log::LevelFilter::Warn,
            Verbosity::Verbose => log::LevelFilter::Info,
            Verbosity::Debug => log::LevelFilter::Debug,
        };
        let mut rules = vec![("mcp_oauth_client".to_owned(), ours)];
        if let Ok(spec) = std::env::var("RUST_LOG")
            && !spec.trim().is_empty()
        {
            rules = parse_rust_log(&spec)?;
        }
        rules.sort_by_key(|(target, _)| std::cmp::Reverse(target.len()));
        let max = rules
            .iter()
            .map(|(_, l)| *l)
            .max()
            .unwrap_or(log::LevelFilter::Warn);
        let logger = Box::leak(Box::new(Logger { rules }));
        if log::set_logger(logger).is_ok() {
            log::set_max_level(max);
        }
        Ok(())
    }

    fn level_for(&self, target: &str) -> log::LevelFilter {
        let level = self
            .rules
            .iter()
            .find(|(prefix, _)| prefix.is_empty() || target.starts_with(prefix.as_str()))
            .map_or(log::LevelFilter::Off, |(_, l)| *l);
        if HTTP_LAYERS.iter().any(|h| target.starts_with(h)) {
            level.min(log::LevelFilter::Info)
        } else {
            level
        }
    }
}

/// `RUST_LOG` as env_logger reads its common forms: `level`, `target=level`, comma-separated.
pub(crate) fn parse_rust_log(spec: &str) -> Result<Vec<(String, log::LevelFilter)>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (target, level) = match part.split_once('=') {
                Some((t, l)) => (t.trim(), l.trim()),
                None if part.parse::<log::LevelFilter>().is_ok() => ("", part),
                None => (part, "trace"),
            };
            let level = level.parse::<log::LevelFilter>().map_err(|_| {
                format!(
                    "RUST_LOG: {} is not a level (error, warn, info, debug, trace, off)",
                    printable(level)
                )
            })?;
            Ok((target.to_owned(), level))
        })
        .collect()
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level_for(metadata.target())
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string();
        let text = printable(&text);
        if record.level() <= log::Level::Warn {
            errln!("{}mcp-oauth: {text}", clear());
        } else {
            errln!(
                "{}   {}: {text}",
                clear(),
                record.level().as_str().to_ascii_lowercase()
            );
        }
    }

    fn flush(&self) {}
}

/// Whether a browser can be started here: on Linux and the BSDs a graphical session
/// (`DISPLAY`, `WAYLAND_DISPLAY`, WSL's), or a `BROWSER` whose program exists; elsewhere,
/// always. (Without one, the desktop's opener is started all the same and fails later, with
/// no way to tell: a login would wait for nothing.)
pub(crate) fn browser_can_start() -> bool {
    if !cfg!(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd"
    )) {
        return true;
    }
    let set = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
    if ["DISPLAY", "WAYLAND_DISPLAY", "WSL_DISTRO_NAME"]
        .iter()
        .any(|v| set(v))
    {
        return true;
    }
    let browser = std::env::var("BROWSER").unwrap_or_default();
    browser
        .split(':')
        .filter_map(|entry| entry.split_whitespace().next())
        .any(program_exists)
}

/// Whether `program` is an existing file, by its path or in `PATH`.
fn program_exists(program: &str) -> bool {
    let path = std::path::Path::new(program);
    if path.components().count() > 1 {
        return path.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Whether the person can type into standard input.
pub(crate) fn can_paste() -> bool {
    std::io::stdin().is_terminal()
}

/// Reads the address a browser elsewhere ended on from standard input, line by line, and
/// hands it to the waiting login, until one is taken or the login is over.
pub(crate) fn paste_prompt(step: &BrowserStep) {
    let paster = step.paster();
    errln!(
        "If your browser cannot reach this machine, paste the address it ended on (starting \
         with {}) here and press Enter:",
        step.redirect_uri
    );
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { return };
            if line.trim().is_empty() {
                continue;
            }
            match paster.deliver(&line) {
                PasteOutcome::NotACallback => {
                    errln!("That is not the address of the authorization response; try again:")
                }
                PasteOutcome::NotThisLogin => {
                    errln!("That address does not belong to this login; try again:")
                }
                _ => return,
            }
        }
    });
}

/// The device login's step: where to go and the code to enter (both checked by the library:
/// a web address without user name, a short code), then the countdown.
pub(crate) fn show_device_step(step: &DeviceStep, done: Option<Arc<AtomicBool>>) {
    errln!(
        "To sign in, open {} on any device and enter the code:\n\n    {}\n",
        printable(step.verification_uri.as_str()),
        printable(&step.user_code)
    );
    if let Some(complete) = &step.verification_uri_complete {
        errln!("Or open {}", printable(complete.as_str()));
    }
    if let Some(done) = done {
        countdown(
            "Waiting for the sign-in on the other device",
            step.deadline,
            done,
        );
    }
}

/// Shows the time left while the person acts: a line updated every second on a terminal, a
/// line every 30 s otherwise. `done` stops it.
pub(crate) fn countdown(what: &str, deadline: Instant, done: Arc<AtomicBool>) {
    errln!("{what}");
    std::thread::spawn(move || {
        let tty = std::io::stderr().is_terminal();
        let start = Instant::now();
        let mut last_line = 0;
        while !done.load(Ordering::SeqCst) {
            let left = deadline.saturating_duration_since(Instant::now()).as_secs();
            if left == 0 {
                break;
            }
            let left_text = format!("{}:{:02} left", left / 60, left % 60);
            if tty {
                err!("\r  {left_text} (Ctrl-C cancels) ");
                let _ = std::io::stderr().flush();
            } else if start.elapsed().as_secs() >= last_line + 30 {
                last_line = start.elapsed().as_secs();
                errln!("  still waiting, {left_text}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        if tty {
            err!("\r{:40}\r", "");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_forms() {
        let rules = parse_rust_log("info, mcp_oauth_client::bridge=debug ,ureq=trace").unwrap();
        assert_eq!(
            rules,
            [
                (String::new(), log::LevelFilter::Info),
                ("mcp_oauth_client::bridge".into(), log::LevelFilter::Debug),
                ("ureq".into(), log::LevelFilter::Trace),
            ]
        );
        assert!(parse_rust_log("mcp=loud").unwrap_err().contains("loud"));
        let logger = Logger {
            rules: vec![("".into(), log::LevelFilter::Trace)],
        };
        assert_eq!(
            logger.level_for("ureq_proto::client"),
            log::LevelFilter::Info
        );
        assert_eq!(
            logger.level_for("mcp_oauth_client"),
            log::LevelFilter::Trace
        );
    }
}
