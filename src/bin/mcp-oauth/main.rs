//! `mcp-oauth`: log in to OAuth-protected MCP servers from a shell.
//!
//! Progress and errors go to stderr; only the requested output (a token, a status) goes to
//! stdout. Exit codes are listed in `mcp-oauth help`.

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

/// `eprint!` that never panics.
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod signals;

use mcp_oauth_client::internals::unix_now;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mcp_oauth_client::testing::{HeadlessBrowser, TestServer};
use mcp_oauth_client::{
    Assertion, BrowserStep, Error, ErrorKind, FileTokenStorage, PasteOutcome, Session,
    SessionBuilder, StoredTokens, TokenTypeHint, device::DeviceStep, printable,
    storage::IN_KEYRING,
};

const HELP: &str = "\
mcp-oauth: log in to OAuth-protected MCP servers

USAGE:
    mcp-oauth <COMMAND> [OPTIONS]

COMMANDS:
    login URL        log in through the browser and cache the tokens
    token URL        print a valid access token (logging in if needed)
    proxy URL        a stdio MCP server forwarding to URL (for stdio-only MCP clients)
    status [URL]     show the cached logins (never a secret)
    logout URL       revoke the tokens at the server and forget them
    clear-all        forget every cached token and client
    demo             run the whole flow against the embedded authorization server
    help [COMMAND]   show help for a command

Run `mcp-oauth help <COMMAND>` for its options and examples.

EXIT CODES:
    0  success
    1  other failure (configuration, browser)
    2  bad command line
    3  the authorization was denied (access_denied)
    4  timed out waiting for the browser or for another process
    5  network failure
    6  protocol error (the server's answer was refused or an OAuth error)
    7  the token cache could not be read or written
    8  a login is needed and --no-login was given

SIGINT (Ctrl-C) and SIGTERM end mcp-oauth at once, except while new tokens are on their way
to the cache (a refresh, a code exchange): then they wait until the tokens are stored, so a
Ctrl-C or a service stop never costs a login. Either way it ends by the signal (a shell
shows 130, 143).
";

const COMMON: &str = "\
OPTIONS:
    --cache-dir DIR        token cache (default $MCP_OAUTH_CACHE_DIR, else ~/.fastmcp/oauth-mcp-client-cache)
    --scopes \"A B\"         scopes to request (default: what the server asks for)
    --client-id ID         a pre-registered client (no dynamic registration)
    --client-secret-file FILE
                           its secret, read from FILE (- reads standard input to its end),
                           or from $MCP_OAUTH_CLIENT_SECRET; never on the command line,
                           where every local user can read it (ps)
    --client-auth-method METHOD
                           how that client authenticates at the token endpoint: none,
                           client_secret_basic, client_secret_post or private_key_jwt
                           (default: chosen from the server's metadata)
    --client-key-file FILE its private key (PEM: PKCS#8 ES256 or RS256, or RSA), for
                           private_key_jwt client authentication
    --client-credentials   no browser: the client obtains tokens for itself (services, jobs)
    --assertion-file FILE  no browser: the JWT bearer grant with the workload identity token
                           in FILE (read again each time; a Kubernetes or CI token file)
    --dpop                 bind tokens to a DPoP key wherever the authorization server
                           offers it (default: where the MCP server takes DPoP too; token:
                           never, since another program cannot sign the proofs)
    --no-dpop              never bind tokens to a DPoP key
    --callback-port PORT   a fixed port for the loopback callback
    --callback-path PATH   the redirect URI's path (default /callback), for a client
                           registered with exactly one redirect URI
    --callback-host localhost
                           use http://localhost:PORT in the redirect URI (default 127.0.0.1)
    --authorize-param NAME=VALUE
                           one more authorization request parameter (repeatable), such as
                           access_type=offline for providers that want it for a refresh token
    --omit-resource        leave out the RFC 8707 resource parameter, for authorization servers
                           that refuse it (Microsoft Entra ID: AADSTS9010010); the tokens are
                           then not bound to the MCP server
    --timeout SECS         time allowed for the browser step (default 300)
    --no-browser           do not open a browser: print the URL (headless, SSH)
    --device               log in with a code entered on another device (RFC 8628), for
                           machines with no browser and nothing to paste into
    --no-login             never start a login: exit 8 when only one would help (cron, CI)
    --header \"Name: value\" (proxy) one more header on every request to the server (repeatable)
    --transport auto|streamable|sse
                           (proxy) how to reach a server of protocol revisions before
                           2026-07-28: Streamable HTTP, HTTP+SSE (2024-11-05), or auto (the
                           default): Streamable HTTP, HTTP+SSE when a POST gets 404 or 405
    --header-json          (token) print {\"Authorization\": \"Bearer …\"}, for clients that
                           take a headers helper command
    --keyring              keep tokens and client secrets in the OS keyring (a build with the
                           feature keyring); the cache directory keeps copies without them
    --ca-file FILE         trust the certificates in FILE (PEM) instead of the system's
                           (a TLS-inspecting proxy's CA, a private CA)
    --allow-private-network
                           let a remote server's metadata name private network addresses
                           (10/8, 172.16/12, 192.168/16, fc00::/7); loopback and cloud
                           metadata addresses stay refused
    -h, --help             this help
";

fn command_help(command: &str) -> Option<String> {
    let (usage, about, examples) = match command {
        "login" => (
            "mcp-oauth login URL [OPTIONS]",
            "Logs in to the MCP server at URL through the browser (or, with --device, with a code\n\
             entered on another device), even when a token is cached, and stores the tokens.",
            "    mcp-oauth login https://mcp.example.com/mcp\n    \
             mcp-oauth login https://mcp.example.com/mcp --scopes \"files:read\" --no-browser\n    \
             mcp-oauth login https://mcp.example.com/mcp --device",
        ),
        "token" => (
            "mcp-oauth token URL [--json] [--refresh] [OPTIONS]",
            "Prints a valid access token for URL on stdout: the cached one, a refreshed one, or\n\
             one from a new login (or, with --client-credentials or --assertion-file, a grant\n\
             without a browser). --json prints the token set (never the refresh token);\n\
             --refresh refreshes even a valid token.",
            "    curl -H \"Authorization: Bearer $(mcp-oauth token https://mcp.example.com/mcp)\" ...\n    \
             mcp-oauth token https://mcp.example.com/mcp --json | jq .expires_in\n    \
             MCP_OAUTH_CLIENT_SECRET=... mcp-oauth token https://mcp.example.com/mcp \\\n        \
             --client-credentials --client-id svc-1\n    \
             mcp-oauth token https://mcp.example.com/mcp --assertion-file \\\n        \
             /var/run/secrets/tokens/mcp-token",
        ),
        "status" => (
            "mcp-oauth status [URL] [--json] [OPTIONS]",
            "Shows each cached login (or the one for URL): server, issuer, client id, scopes,\n\
             expiry, whether a refresh token exists. Never prints a secret.",
            "    mcp-oauth status\n    mcp-oauth status https://mcp.example.com/mcp --json",
        ),
        "logout" => (
            "mcp-oauth logout URL [OPTIONS]",
            "Revokes the refresh and access tokens of URL at the authorization server (when it\n\
             offers RFC 7009 revocation), then forgets them and, unless another server shares\n\
             it, the client registration.",
            "    mcp-oauth logout https://mcp.example.com/mcp",
        ),
        "clear-all" => (
            "mcp-oauth clear-all [--cache-dir DIR]",
            "Removes every file this tool wrote in the cache directory, and nothing else. Does\n\
             not revoke anything at the servers (use logout for that).",
            "    mcp-oauth clear-all",
        ),
        "proxy" => (
            "mcp-oauth proxy URL [--header \"Name: value\"] [OPTIONS]",
            "A stdio MCP server for clients that only start local servers: every JSON-RPC line\n\
             on stdin goes to the MCP server at URL (Streamable HTTP), every message from it\n\
             comes out on stdout, one per line; nothing else is written to stdout. Logs in on\n\
             the first 401 (the browser step on stderr), refreshes, steps up; --no-login for\n\
             unattended use. Ends, closing the MCP session, when stdin ends.",
            "    mcp-oauth proxy https://mcp.example.com/mcp\n    \
             {\"mcpServers\": {\"example\": {\"command\": \"mcp-oauth\",\n        \
             \"args\": [\"proxy\", \"https://mcp.example.com/mcp\"]}}}",
        ),
        "demo" => (
            "mcp-oauth demo [--browser]",
            "Starts the embedded authorization server and MCP endpoint on 127.0.0.1 and runs the\n\
             whole flow against it, printing each step with its time: discovery, registration,\n\
             the browser step (a headless user agent, or your browser with --browser), the code\n\
             exchange, a cached token, a refresh.",
            "    mcp-oauth demo\n    mcp-oauth demo --browser",
        ),
        _ => return None,
    };
    Some(format!(
        "mcp-oauth {command}: {about}\n\nUSAGE:\n    {usage}\n\n{COMMON}\nEXAMPLES:\n{examples}\n"
    ))
}

fn main() -> ExitCode {
    match run(std::env::args_os().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            errln!("mcp-oauth: {msg}\nRun `mcp-oauth help` for usage.");
            ExitCode::from(2)
        }
        Err(Failure::Error(e)) if e.kind() == ErrorKind::LoginRequired => {
            let url = e.url().map(printable).unwrap_or_default();
            errln!(
                "mcp-oauth: no usable token for {url}, and --no-login forbids a login: run \
                 `mcp-oauth login {url}` first"
            );
            ExitCode::from(exit_code(&e))
        }
        Err(Failure::Error(e)) if e.kind() == ErrorKind::ProofRequired => {
            let url = e.url().map(printable).unwrap_or_default();
            errln!(
                "mcp-oauth: the MCP server {url} takes DPoP-bound tokens only: each request needs \
                 a proof signed with the token's key, so no token can be handed to another \
                 program. Run `mcp-oauth proxy {url}` for an MCP client instead"
            );
            ExitCode::from(exit_code(&e))
        }
        Err(Failure::Error(e)) => {
            errln!("mcp-oauth: {e}");
            ExitCode::from(exit_code(&e))
        }
        Err(Failure::Other(msg)) => {
            errln!("mcp-oauth: {msg}");
            ExitCode::from(1)
        }
    }
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

enum Failure {
    Usage(String),
    Error(Error),
    Other(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Error(e)
    }
}

impl From<lexopt::Error> for Failure {
    fn from(e: lexopt::Error) -> Failure {
        Failure::Usage(e.to_string())
    }
}

/// The command line, parsed.
#[derive(Default)]
struct Options {
    url: Option<String>,
    cache_dir: Option<PathBuf>,
    scopes: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<PathBuf>,
    /// The secret, once read from the file, standard input or the environment.
    client_secret: Option<String>,
    client_key_file: Option<PathBuf>,
    client_auth_method: Option<mcp_oauth_client::AuthMethod>,
    client_credentials: bool,
    assertion_file: Option<PathBuf>,
    dpop: bool,
    no_dpop: bool,
    callback_port: Option<u16>,
    callback_path: Option<String>,
    callback_localhost: bool,
    authorize_params: Vec<(String, String)>,
    omit_resource: bool,
    ca_file: Option<PathBuf>,
    #[cfg_attr(not(feature = "keyring"), allow(dead_code))]
    keyring: bool,
    /// Extra headers for the bridge's requests.
    headers: Vec<(String, String)>,
    /// `token --header-json`.
    header_json: bool,
    /// `proxy --transport`.
    transport: mcp_oauth_client::bridge::Transport,
    /// The command is the bridge: stdin is JSON-RPC.
    bridge: bool,
    timeout: Option<u64>,
    no_browser: bool,
    device: bool,
    no_login: bool,
    allow_private_network: bool,
    browser: bool,
    json: bool,
    refresh: bool,
    help: bool,
}

fn parse(args: Vec<OsString>) -> Result<Options, Failure> {
    use lexopt::prelude::*;
    let mut o = Options::default();
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("cache-dir") => o.cache_dir = Some(parser.value()?.into()),
            Long("scopes") => o.scopes = Some(parser.value()?.string()?),
            Long("client-id") => o.client_id = Some(parser.value()?.string()?),
            Long("client-secret") => {
                return Err(Failure::Usage(
                    "--client-secret would put the secret where every local user can read it \
                     (ps); use --client-secret-file FILE (- for standard input) or \
                     MCP_OAUTH_CLIENT_SECRET"
                        .into(),
                ));
            }
            Long("client-secret-file") => o.client_secret_file = Some(parser.value()?.into()),
            Long("client-key-file") => o.client_key_file = Some(parser.value()?.into()),
            Long("client-auth-method") => {
                let name = parser.value()?.string()?;
                let method = mcp_oauth_client::AuthMethod::from_name(&name).ok_or_else(|| {
                    Failure::Usage(format!(
                        "--client-auth-method takes none, client_secret_basic, \
                         client_secret_post or private_key_jwt, not {}",
                        printable(&name)
                    ))
                })?;
                o.client_auth_method = Some(method);
            }
            Long("client-credentials") => o.client_credentials = true,
            Long("assertion-file") => o.assertion_file = Some(parser.value()?.into()),
            Long("dpop") => o.dpop = true,
            Long("no-dpop") => o.no_dpop = true,
            Long("callback-port") => o.callback_port = Some(parser.value()?.parse()?),
            Long("callback-path") => o.callback_path = Some(parser.value()?.string()?),
            Long("callback-host") => {
                o.callback_localhost = match parser.value()?.string()?.as_str() {
                    "localhost" => true,
                    "127.0.0.1" => false,
                    other => {
                        return Err(Failure::Usage(format!(
                            "--callback-host takes localhost or 127.0.0.1, not {}",
                            printable(other)
                        )));
                    }
                };
            }
            Long("authorize-param") => {
                let pair = parser.value()?.string()?;
                let (name, value) = split_value(&pair, '=', "--authorize-param takes NAME=VALUE")?;
                o.authorize_params.push((name.to_owned(), value.to_owned()));
            }
            Long("omit-resource") => o.omit_resource = true,
            Long("header") => {
                let header = parser.value()?.string()?;
                let (name, value) = split_value(&header, ':', "--header takes \"Name: value\"")?;
                o.headers
                    .push((name.trim().to_owned(), value.trim().to_owned()));
            }
            Long("header-json") => o.header_json = true,
            Long("transport") => {
                let name = parser.value()?.string()?;
                o.transport = name.parse().map_err(|_| {
                    Failure::Usage(format!(
                        "--transport takes auto, streamable or sse, not {}",
                        printable(&name)
                    ))
                })?;
            }
            Long("ca-file") => o.ca_file = Some(parser.value()?.into()),
            Long("keyring") if cfg!(feature = "keyring") => o.keyring = true,
            Long("keyring") => {
                return Err(Failure::Usage(
                    "this mcp-oauth was built without the keyring feature \
                     (cargo install --features cli,keyring)"
                        .into(),
                ));
            }
            Long("timeout") => o.timeout = Some(parser.value()?.parse()?),
            Long("no-browser") => o.no_browser = true,
            Long("device") => o.device = true,
            Long("no-login") => o.no_login = true,
            Long("allow-private-network") => o.allow_private_network = true,
            Long("browser") => o.browser = true,
            Long("json") => o.json = true,
            Long("refresh") => o.refresh = true,
            Short('h') | Long("help") => o.help = true,
            Value(v) if o.url.is_none() => o.url = Some(v.string()?),
            other => return Err(other.unexpected().into()),
        }
    }
    if o.dpop && o.header_json {
        return Err(Failure::Usage(
            "--header-json gives a Bearer header, which a DPoP-bound token (--dpop) cannot be"
                .into(),
        ));
    }
    if o.dpop && o.no_dpop {
        return Err(Failure::Usage(
            "--dpop and --no-dpop contradict each other".into(),
        ));
    }
    o.client_secret = client_secret(o.client_secret_file.as_deref())?;
    if o.client_credentials && o.assertion_file.is_some() {
        return Err(Failure::Usage(
            "--client-credentials and --assertion-file are two different grants; give one".into(),
        ));
    }
    Ok(o)
}

/// An option's value split at its first `sep`; else `usage`, naming the value given.
fn split_value<'a>(value: &'a str, sep: char, usage: &str) -> Result<(&'a str, &'a str), Failure> {
    value
        .split_once(sep)
        .ok_or_else(|| Failure::Usage(format!("{usage}, not {}", printable(value))))
}

/// The client secret: from `file` (`-`: standard input), else `MCP_OAUTH_CLIENT_SECRET`. One
/// final line break is dropped.
fn client_secret(file: Option<&std::path::Path>) -> Result<Option<String>, Failure> {
    use std::io::Read;
    let text = match file {
        Some(path) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut text)
                .map_err(|e| Failure::Other(format!("cannot read the client secret: {e}")))?;
            text
        }
        Some(path) => mcp_oauth_client::files::read_user_file(
            path,
            "the client secret",
            mcp_oauth_client::Step::Configure,
        )?,
        None => match std::env::var("MCP_OAUTH_CLIENT_SECRET") {
            Ok(secret) => secret,
            Err(_) => return Ok(None),
        },
    };
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    Ok((!secret.is_empty()).then(|| secret.to_owned()))
}

impl Options {
    fn url(&self) -> Result<&str, Failure> {
        self.url
            .as_deref()
            .ok_or_else(|| Failure::Usage("the MCP server URL is missing".into()))
    }

    fn session(&self) -> Result<Session, Failure> {
        Ok(self.builder(self.url()?).build()?)
    }

    /// A session whose browser step talks to the person at the terminal.
    fn interactive_session(&self, done: &Arc<AtomicBool>) -> Result<Session, Failure> {
        Ok(self.interactive(self.url()?, done).build()?)
    }

    fn builder(&self, url: &str) -> SessionBuilder {
        let mut b = Session::builder(url);
        if let Some(d) = &self.cache_dir {
            b = b.cache_dir(d);
        }
        #[cfg(feature = "keyring")]
        if self.keyring
            && let Ok(storage) = self.storage()
        {
            b = b.token_store(mcp_oauth_client::storage::KeyringTokenStore::new(
                storage.dir(),
            ));
        }
        if let Some(s) = &self.scopes {
            b = b.scopes(s.as_str());
        }
        if let Some(id) = &self.client_id {
            b = b.client_id(id);
        }
        if let Some(s) = &self.client_secret {
            b = b.client_secret(s);
        }
        if let Some(f) = &self.client_key_file {
            b = b.client_key_file(f);
        }
        if let Some(m) = self.client_auth_method {
            b = b.client_auth_method(m);
        }
        if self.client_credentials {
            b = b.client_credentials();
        }
        if let Some(f) = &self.assertion_file {
            b = b.jwt_bearer(Assertion::File(f.clone()));
        }
        if let Some(p) = self.callback_port {
            b = b.callback_port(p);
        }
        if let Some(p) = &self.callback_path {
            b = b.callback_path(p);
        }
        if self.callback_localhost {
            b = b.callback_host(mcp_oauth_client::CallbackHost::Localhost);
        }
        for (name, value) in &self.authorize_params {
            b = b.authorize_param(name, value);
        }
        if let Some(f) = &self.ca_file {
            b = b.ca_file(f);
        }
        if let Some(t) = self.timeout {
            b = b.callback_timeout(Duration::from_secs(t));
        }
        // SIGINT and SIGTERM wait while a token request's answer is on its way to the cache.
        if let Some(deferral) = signals::install() {
            b = b.critical_section(deferral.clone());
        }
        if self.dpop || self.no_dpop {
            b = b.dpop(self.dpop);
        }
        b.allow_private_network(self.allow_private_network)
            .interactive(!self.no_login)
            .omit_resource(self.omit_resource)
    }

    /// The builder with the interactive browser step: the URL to copy, the system browser
    /// started with the one-time launch URL (never the authorization URL: a command line is
    /// readable by other users), the paste prompt when no browser started or with
    /// --no-browser, and a countdown while waiting. `done` stops the countdown.
    fn interactive(&self, url: &str, done: &Arc<AtomicBool>) -> SessionBuilder {
        let no_browser = self.no_browser;
        // For the bridge, stdin carries JSON-RPC and logins come and go while it runs: no
        // paste prompt, no countdown.
        let bridge = self.bridge;
        let done = Arc::clone(done);
        if self.device {
            return self.builder(url).device_login(move |step: &DeviceStep| {
                show_device_step(step, (!bridge).then(|| Arc::clone(&done)));
            });
        }
        self.builder(url).authorize_hook(move |step: &BrowserStep| {
            let opened = if no_browser {
                errln!(
                    "Open this URL in a browser to authorize:\n  {}",
                    step.authorization_url
                );
                false
            } else {
                errln!(
                    "Opening your browser to authorize. If it does not open, visit:\n  {}",
                    step.authorization_url
                );
                match mcp_oauth_client::browser::open_browser(&step.launch_url) {
                    Ok(()) => true,
                    Err(e) => {
                        errln!("mcp-oauth: {e}; open the URL above by hand.");
                        false
                    }
                }
            };
            if bridge {
                return;
            }
            if !opened {
                paste_prompt(step);
            }
            countdown(
                &format!(
                    "Waiting for the authorization response at {}",
                    step.redirect_uri
                ),
                step.deadline,
                Arc::clone(&done),
            );
        })
    }

    /// The record of a non-secret copy, read from the keyring with `--keyring`.
    fn read_keyring(&self, storage: &FileTokenStorage, copy: StoredTokens) -> Option<StoredTokens> {
        #[cfg(feature = "keyring")]
        if self.keyring {
            let url = url::Url::parse(&copy.server_url).ok()?;
            let store = mcp_oauth_client::storage::KeyringTokenStore::new(storage.dir());
            return mcp_oauth_client::TokenStore::load_tokens(&store, &url)
                .ok()
                .flatten();
        }
        let _ = (storage, copy);
        None
    }

    fn storage(&self) -> Result<FileTokenStorage, Failure> {
        let dir = match &self.cache_dir {
            Some(d) => d.clone(),
            None => FileTokenStorage::default_dir()?,
        };
        Ok(FileTokenStorage::new(dir))
    }
}

fn run(args: Vec<OsString>) -> Result<(), Failure> {
    let Some((command, rest)) = args.split_first() else {
        err!("{HELP}");
        return Err(Failure::Usage("no command given".into()));
    };
    let command = command.to_string_lossy().into_owned();
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        match rest.first().map(|c| c.to_string_lossy()) {
            Some(c) => out!(
                "{}",
                command_help(&c).ok_or_else(|| Failure::Usage(format!("unknown command {c}")))?
            ),
            None => out!("{HELP}"),
        }
        return Ok(());
    }
    let help = command_help(&command)
        .ok_or_else(|| Failure::Usage(format!("unknown command {command}")))?;
    let mut options = parse(rest.to_vec())?;
    options.bridge = command == "proxy";
    // A token for another program is a Bearer token: that program cannot sign DPoP proofs.
    if command == "token" && !options.dpop {
        options.no_dpop = true;
    }
    if options.help {
        out!("{help}");
        return Ok(());
    }
    StepLogger::install(matches!(command.as_str(), "login" | "demo"));
    match command.as_str() {
        "login" => login(&options),
        "token" => token(&options),
        "status" => status(&options),
        "logout" => logout(&options),
        "clear-all" => {
            let storage = options.storage()?;
            let n = storage.clear_all()?;
            errln!(
                "Removed {n} cached file(s) from {}",
                storage.dir().display()
            );
            Ok(())
        }
        "demo" => demo(&options),
        "proxy" => proxy(options),
        _ => unreachable!("command_help knows every command"),
    }
}

fn login(options: &Options) -> Result<(), Failure> {
    let done = Arc::new(AtomicBool::new(false));
    let session = options.interactive_session(&done)?;
    let result = session.login();
    done.store(true, Ordering::SeqCst);
    result?;
    errln!("Logged in to {}", session.server_url());
    Ok(())
}

fn token(options: &Options) -> Result<(), Failure> {
    let done = Arc::new(AtomicBool::new(false));
    let session = options.interactive_session(&done)?;
    let token = if options.refresh {
        session.refresh()
    } else {
        session.access_token()
    };
    done.store(true, Ordering::SeqCst);
    let token = token?;
    if options.header_json {
        let header = session.authorization_header()?;
        outln!("{}", serde_json::json!({ "Authorization": header }));
        return Ok(());
    }
    let stored = session
        .store()
        .load_tokens(session.server_url())
        .ok()
        .flatten();
    let tokens = stored.as_ref().map(|s| &s.tokens);
    if tokens.is_some_and(|t| t.is_dpop()) {
        errln!(
            "mcp-oauth: this token is bound to a DPoP key (--dpop): a server takes it only with \
             a proof signed by that key; without --dpop, token gives a Bearer token"
        );
    }
    if !options.json {
        outln!("{}", token.secret());
        return Ok(());
    }
    let expires_at = tokens.and_then(|t| t.expires_at);
    let json = serde_json::json!({
        "access_token": token.secret(),
        "token_type": tokens.map_or("Bearer", |t| t.token_type.as_str()),
        "expires_at": expires_at,
        "expires_in": expires_at.map(|t| t.saturating_sub(unix_now())),
        "scope": tokens.and_then(|t| t.scope.as_deref()).map(printable),
        "issuer": stored.as_ref().map(|s| printable(&s.issuer)),
    });
    outln!("{json:#}");
    Ok(())
}

/// `proxy`: the stdio bridge. Stdout carries JSON-RPC only; progress, prompts and errors go
/// to stderr.
fn proxy(options: Options) -> Result<(), Failure> {
    let done = Arc::new(AtomicBool::new(false));
    let session = Arc::new(options.interactive_session(&done)?);
    let bridge =
        mcp_oauth_client::bridge::Bridge::new(session, std::io::stdout(), options.headers.clone())?
            .transport(options.transport);
    let result = bridge.run(std::io::stdin().lock());
    // A request the bridge stopped waiting for may be inside a refresh: its tokens first.
    if let Some(deferral) = signals::install() {
        deferral.wait_closed(Duration::from_secs(60));
    }
    result?;
    Ok(())
}

fn status(options: &Options) -> Result<(), Failure> {
    let storage = options.storage()?;
    let wanted = match &options.url {
        Some(u) => Some(options.builder(u).build()?.server_url().clone()),
        None => None,
    };
    let now = unix_now();
    let mut rows = Vec::new();
    for (path, entry) in storage.entries()? {
        match entry {
            Ok(t) => {
                if wanted.as_ref().is_some_and(|w| {
                    mcp_oauth_client::discovery::canonical_resource(w) != t.server_url
                }) {
                    continue;
                }
                let in_keyring = t.tokens.access_token.secret() == IN_KEYRING;
                let t = if in_keyring {
                    options.read_keyring(&storage, t)
                } else {
                    Some(t)
                };
                match t {
                    Some(t) => rows.push(status_json(&t, now, unfinished_refresh(&storage, &t))),
                    None => errln!(
                        "mcp-oauth: {} keeps its tokens in the OS keyring: add --keyring",
                        printable(&path.display().to_string())
                    ),
                }
            }
            Err(e) if wanted.is_none() => {
                // A file name in the cache directory is anyone's choice: printable only.
                errln!(
                    "mcp-oauth: skipping {}: {e}",
                    printable(&path.display().to_string())
                )
            }
            Err(_) => {}
        }
    }
    if options.json {
        outln!("{:#}", serde_json::Value::Array(rows));
        return Ok(());
    }
    if rows.is_empty() {
        outln!("No cached logins in {}", storage.dir().display());
    }
    for r in rows {
        let expires = match r["expires_at"].as_u64() {
            Some(at) if at <= now => format!("expired {} ({})", relative(at, now), utc(at)),
            Some(at) => format!("{} ({})", relative(at, now), utc(at)),
            None => "unknown (no expires_in)".into(),
        };
        outln!("{}", r["server_url"].as_str().unwrap_or(""));
        outln!("  issuer:        {}", r["issuer"].as_str().unwrap_or(""));
        outln!("  client id:     {}", r["client_id"].as_str().unwrap_or(""));
        outln!(
            "  scopes:        {}",
            r["scope"].as_str().unwrap_or("(none granted)")
        );
        outln!("  expires:       {expires}");
        let refresh = match (
            r["refresh_token"] == true,
            r["unfinished_refresh_started"].as_u64(),
        ) {
            (true, Some(at)) => format!(
                "yes, but a refresh with it began {} and never finished: if the server had \
                 replaced it, the next refresh fails and a login is needed",
                relative(at, now)
            ),
            (true, None) => "yes".into(),
            (false, _) => "no".into(),
        };
        outln!("  refresh token: {refresh}");
    }
    Ok(())
}

/// When a refresh with `t`'s refresh token began and never finished (a process stopped in
/// between), if the cache records one.
fn unfinished_refresh(storage: &FileTokenStorage, t: &StoredTokens) -> Option<u64> {
    let url = url::Url::parse(&t.server_url).ok()?;
    let mark = storage.load_refresh_mark(&url).ok()??;
    let refresh_token = t.tokens.refresh_token.as_ref()?;
    mark.presented(refresh_token).then_some(mark.started)
}

/// One login's public facts. What the cache file says came from servers (or from whoever
/// wrote the file): it is made printable.
fn status_json(t: &StoredTokens, now: u64, unfinished_refresh: Option<u64>) -> serde_json::Value {
    let scope = t.tokens.scope.as_ref().or(t.requested_scope.as_ref());
    serde_json::json!({
        "server_url": printable(&t.server_url),
        "issuer": printable(&t.issuer),
        "client_id": printable(&t.client_id),
        "scope": scope.map(|s| printable(s)),
        "expires_at": t.tokens.expires_at,
        "expired": t.tokens.expires_at.is_some_and(|at| at <= now),
        "refresh_token": t.tokens.refresh_token.is_some(),
        "unfinished_refresh_started": unfinished_refresh,
    })
}

/// `in 5 min` or `5 min ago`.
fn relative(at: u64, now: u64) -> String {
    let human = |s: u64| match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} days", s / 86400),
    };
    if at > now {
        format!("in {}", human(at - now))
    } else {
        format!("{} ago", human(now - at))
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since the epoch (civil-from-days).
fn utc(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn logout(options: &Options) -> Result<(), Failure> {
    let session = options.session()?;
    let report = session.logout()?;
    if !report.had_tokens {
        errln!("No cached login for {}", session.server_url());
        return Ok(());
    }
    let names: Vec<&str> = report
        .revoked
        .iter()
        .map(|h| match h {
            TokenTypeHint::RefreshToken => "the refresh token",
            _ => "the access token",
        })
        .collect();
    if names.is_empty() {
        errln!("Nothing revoked (the server offers no revocation, or it failed).");
    } else {
        errln!(
            "Revoked {} at the authorization server.",
            names.join(" and ")
        );
    }
    for e in &report.errors {
        errln!("mcp-oauth: {e}");
    }
    errln!("Forgot the cached tokens of {}", session.server_url());
    Ok(())
}

/// Reads the address a browser elsewhere ended on from standard input, line by line, and
/// hands it to the waiting login, until one is taken or the login is over.
fn paste_prompt(step: &BrowserStep) {
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
/// a web address, visible characters), then the countdown.
fn show_device_step(step: &DeviceStep, done: Option<Arc<AtomicBool>>) {
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

/// Shows the callback address and the time left while the browser step runs: a line updated
/// every second on a terminal, a line every 30 s otherwise.
fn countdown(what: &str, deadline: Instant, done: Arc<AtomicBool>) {
    use std::io::{IsTerminal, Write};
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

/// Starts the embedded authorization server and runs the whole flow against it, printing
/// each step with its time.
fn demo(options: &Options) -> Result<(), Failure> {
    let server = TestServer::start()
        .map_err(|e| Failure::Other(format!("cannot start the embedded server: {e}")))?;
    let cache = std::env::temp_dir().join(format!(
        "mcp-oauth-demo-{}-{}",
        std::process::id(),
        unix_now()
    ));
    errln!(
        "Embedded authorization server and MCP endpoint: {}",
        server.mcp_url()
    );
    errln!("Token cache for this demo: {}\n", cache.display());

    let browser = HeadlessBrowser::new();
    let mut builder = options
        .builder(server.mcp_url().as_str())
        .cache_dir(&cache)
        .callback_timeout(Duration::from_secs(options.timeout.unwrap_or(120)));
    if !options.browser {
        builder = builder.authorize_hook(browser.hook());
    }
    let session = builder.build()?;
    let result = demo_steps(&server, &session);
    let _ = std::fs::remove_dir_all(&cache);
    result?;
    errln!("\nDone: discovery, registration, browser login with PKCE, cache and refresh all ran.");
    Ok(())
}

fn demo_steps(server: &TestServer, session: &Session) -> Result<(), Failure> {
    errln!("1. An MCP request with no token: the 401 starts the login");
    let started = Instant::now();
    let reply = mcp_initialize(session)?;
    errln!(
        "   initialize -> {reply} after {} ms",
        started.elapsed().as_millis()
    );
    show_requests(server);

    errln!("\n2. Again, from the cache:");
    server.clear_requests();
    let started = Instant::now();
    session.access_token()?;
    errln!(
        "   token in {} us, {} request(s) to the server",
        started.elapsed().as_micros(),
        server.requests().len()
    );

    errln!("\n3. After the access token expired (the cached expiry is moved to now):");
    let storage = session.store();
    if let Some(mut stored) = storage.load_tokens(session.server_url())? {
        stored.tokens.expires_at = Some(unix_now());
        storage.save_tokens(session.server_url(), &stored)?;
    }
    server.clear_requests();
    let started = Instant::now();
    session.access_token()?;
    errln!("   refreshed in {} ms", started.elapsed().as_millis());
    show_requests(server);
    Ok(())
}

fn show_requests(server: &TestServer) {
    let requests = server.requests();
    errln!("   the server received {} request(s):", requests.len());
    for r in requests {
        errln!("     {} {}", r.method, r.path);
    }
}

/// `initialize` on the MCP endpoint through the session; returns a one-line summary.
fn mcp_initialize(session: &Session) -> Result<String, Failure> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "mcp-oauth demo", "version": env!("CARGO_PKG_VERSION")}}
    })
    .to_string();
    let mut response = session.send(|agent| {
        agent
            .post(session.server_url().as_str())
            .header("accept", "application/json, text/event-stream")
            .content_type("application/json")
            .send(&body)
    })?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| Failure::Other(format!("reading the MCP answer: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    Ok(format!(
        "HTTP {status} from {}",
        value["result"]["serverInfo"]["name"]
    ))
}

/// Prints the library's warnings to stderr (a refused callback, a cache that cannot be
/// written), and with `progress` its step messages (log level info) with the time since start.
struct StepLogger {
    start: Instant,
    progress: bool,
}

impl StepLogger {
    fn install(progress: bool) {
        let logger = Box::leak(Box::new(StepLogger {
            start: Instant::now(),
            progress,
        }));
        if log::set_logger(logger).is_ok() {
            log::set_max_level(if progress {
                log::LevelFilter::Info
            } else {
                log::LevelFilter::Warn
            });
        }
    }
}

impl log::Log for StepLogger {
    /// This crate's own lines only: the HTTP layers (`ureq`, `ureq_proto`, `rustls`) never
    /// reach the terminal, whatever their level (ureq's protocol layer logs request and
    /// response bytes, tokens included, at trace).
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let level = if self.progress {
            log::Level::Info
        } else {
            log::Level::Warn
        };
        metadata.target().starts_with("mcp_oauth_client") && metadata.level() <= level
    }

    fn log(&self, record: &log::Record<'_>) {
        use std::io::IsTerminal;
        if !self.enabled(record.metadata()) {
            return;
        }
        // On a terminal the countdown may hold the line: clear it first.
        let clear = if std::io::stderr().is_terminal() {
            "\r\x1b[K"
        } else {
            ""
        };
        let text = record.args().to_string();
        let text = printable(&text);
        if record.level() <= log::Level::Warn {
            errln!("{clear}mcp-oauth: {text}");
        } else {
            errln!(
                "{clear}   [{:>5} ms] {text}",
                self.start.elapsed().as_millis()
            );
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_684_758), "2026-11-26 09:19:18 UTC");
    }

    #[test]
    fn relative_times() {
        assert_eq!(relative(100, 40), "in 1 min");
        assert_eq!(relative(40, 100), "1 min ago");
        assert_eq!(relative(10_000, 0), "in 2 h 46 min");
    }
}
