//! `mcp-oauth`: log in to OAuth-protected MCP servers from a shell.
//!
//! Progress and errors go to stderr; only the requested output (a token, a status, a
//! completion script) goes to stdout. Exit codes are listed in `mcp-oauth help`.
//!
//! The files: `spec` (the commands and their options, one table), `args` (the command line
//! parsed by it), `help` (help, reference and completions from the same table), `wiring` (the options into a session), `terminal` (what the person sees and types, the logger),
//! `commands/` (one file per larger command), `signals` (SIGINT and SIGTERM held while new
//! tokens are on their way to the cache).

/// `println!` to stdout that ends the program quietly (exit 0) when stdout is closed, as with
/// `mcp-oauth status --json | head -c 0`, instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

/// `print!` to stdout, quiet on a closed stdout like [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if write!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

/// `eprintln!` that never panics: with stderr closed the line is dropped.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// A line that says what happened (not an error): to stderr, unless `-q`.
macro_rules! sayln {
    ($($arg:tt)*) => {{
        if !crate::terminal::quiet() {
            errln!($($arg)*);
        }
    }};
}

/// `eprint!` that never panics.
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod args;
mod commands;
mod help;
mod signals;
mod spec;
mod terminal;
mod wiring;

use std::ffi::OsString;
use std::process::ExitCode;

use mcp_oauth_client::{Error, ErrorKind, printable};

use args::Usage;
use spec::Cmd;

fn main() -> ExitCode {
    let failure = match run(std::env::args_os().skip(1).collect()) {
        Ok(()) => return ExitCode::SUCCESS,
        Err(f) => f,
    };
    let (code, message) = match failure {
        Failure::Usage(msg) => (2, format!("{msg}\nRun `mcp-oauth help` for usage.")),
        Failure::Error(e) if e.kind() == ErrorKind::LoginRequired => {
            let url = e.url().map(printable).unwrap_or_default();
            (
                exit_code(&e),
                format!(
                    "no usable token for {url}, and --no-login forbids a login: run \
                     `mcp-oauth login {url}` first"
                ),
            )
        }
        Failure::Error(e) if e.kind() == ErrorKind::ProofRequired => {
            let url = e.url().map(printable).unwrap_or_default();
            (
                exit_code(&e),
                format!(
                    "the MCP server {url} takes DPoP-bound tokens only: each request needs a \
                     proof signed with the token's key, so no token can be handed to another \
                     program. Run `mcp-oauth proxy {url}` for an MCP client instead"
                ),
            )
        }
        Failure::Error(e) => (exit_code(&e), format!("{e:#}")),
        Failure::Stored(msg) => (7, msg),
        Failure::LoginNeeded(msg) => (8, msg),
        Failure::Other(msg) => (1, msg),
    };
    errln!("mcp-oauth: {message}");
    ExitCode::from(code)
}

/// The documented exit code of an error.
fn exit_code(e: &Error) -> u8 {
    if e.is_access_denied() {
        return 3;
    }
    match e.kind() {
        ErrorKind::LoginRequired => 8,
        ErrorKind::Timeout => 4,
        ErrorKind::Transport => 5,
        ErrorKind::OAuth | ErrorKind::InvalidResponse | ErrorKind::Refused | ErrorKind::Status => 6,
        ErrorKind::Storage => 7,
        _ => 1,
    }
}

/// Why a command failed.
pub(crate) enum Failure {
    /// A command line that cannot be run (exit 2).
    Usage(String),
    /// The library's error (its exit code by kind).
    Error(Error),
    /// A login whose tokens the cache did not take (exit 7).
    Stored(String),
    /// A login is needed and none can be done here (exit 8).
    LoginNeeded(String),
    /// Anything else (exit 1).
    Other(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Error(e)
    }
}

impl From<Usage> for Failure {
    fn from(u: Usage) -> Failure {
        Failure::Usage(u.0)
    }
}

fn run(args: Vec<OsString>) -> Result<(), Failure> {
    let Some((first, rest)) = args.split_first() else {
        err!("{}", help::overview());
        return Err(Failure::Usage("no command given".into()));
    };
    let first = first.to_string_lossy().into_owned();
    match first.as_str() {
        "-V" | "--version" | "version" => {
            outln!("mcp-oauth {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        "-h" | "--help" | "help" => {
            match rest.first().map(|c| c.to_string_lossy()) {
                Some(name) => out!("{}", help::command_help(known(&name)?)),
                None => out!("{}", help::overview()),
            }
            return Ok(());
        }
        _ => {}
    }
    let spec = known(&first)?;
    let options = args::parse(spec, rest.to_vec())?;
    if options.help {
        out!("{}", help::command_help(spec));
        return Ok(());
    }
    terminal::Logger::install(options.verbosity).map_err(Failure::Usage)?;
    match spec.cmd {
        Cmd::Login => commands::login::login(&options),
        Cmd::Token => commands::login::token(&options),
        Cmd::Proxy => commands::proxy::proxy(&options),
        Cmd::Status => commands::status::status(&options),
        Cmd::Logout => commands::logout::logout(&options),
        Cmd::ClearAll => commands::logout::clear_all(&options),
        Cmd::Demo => demo(&options),
        Cmd::Completions => {
            let shell = options.shell.as_deref().unwrap_or_default();
            let script = help::completions(shell).ok_or_else(|| {
                Failure::Usage(format!(
                    "no completions for {}: bash, zsh or fish",
                    printable(shell)
                ))
            })?;
            out!("{script}");
            Ok(())
        }
    }
}

/// The command named `name`, or a usage error naming it.
fn known(name: &str) -> Result<&'static spec::CommandSpec, Failure> {
    args::command(name)
        .ok_or_else(|| Failure::Usage(format!("unknown command {}", printable(name))))
}

#[cfg(feature = "demo")]
fn demo(options: &args::Options) -> Result<(), Failure> {
    commands::demo::demo(options)
}

#[cfg(not(feature = "demo"))]
fn demo(_: &args::Options) -> Result<(), Failure> {
    Err(Failure::Other(
        "this mcp-oauth was built without the demo (cargo install mcp-oauth-client --features \
         demo)"
            .into(),
    ))
}
