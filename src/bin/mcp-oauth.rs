//! `mcp-oauth`: log in to OAuth-protected MCP servers from a shell.
//!
//! Progress goes to stderr; only the token (for `token`) goes to stdout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mcp_oauth_client::testing::{HeadlessBrowser, ServerConfig, TestServer};
use mcp_oauth_client::{FileTokenStorage, Session, SessionBuilder};

const USAGE: &str = "\
mcp-oauth: log in to OAuth-protected MCP servers

USAGE:
    mcp-oauth demo [--browser]      run the whole flow against the embedded authorization server
    mcp-oauth login URL [OPTIONS]   log in (browser) and cache the tokens
    mcp-oauth token URL [OPTIONS]   print a valid access token, logging in if needed
    mcp-oauth logout URL [OPTIONS]  forget the cached tokens of URL
    mcp-oauth clear-all [OPTIONS]   forget every cached token and client

OPTIONS:
    --cache-dir DIR        token cache (default $MCP_OAUTH_CACHE_DIR, else ~/.fastmcp/oauth-mcp-client-cache)
    --scopes \"A B\"         scopes to request
    --client-id ID         a pre-registered client (no dynamic registration)
    --client-secret S      its secret
    --callback-port PORT   a fixed port for the loopback callback
    --timeout SECS         time allowed for the browser step (default 300)

EXAMPLE:
    curl -H \"Authorization: Bearer $(mcp-oauth token https://mcp.example.com/mcp)\" ...
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(msg)) => {
            eprintln!("mcp-oauth: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(CliError::Failed(msg)) => {
            eprintln!("mcp-oauth: {msg}");
            ExitCode::from(1)
        }
    }
}

enum CliError {
    Usage(String),
    Failed(String),
}

impl From<mcp_oauth_client::Error> for CliError {
    fn from(e: mcp_oauth_client::Error) -> CliError {
        CliError::Failed(e.to_string())
    }
}

/// Options shared by the commands that talk to a server.
#[derive(Default)]
struct Options {
    url: Option<String>,
    cache_dir: Option<PathBuf>,
    scopes: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    callback_port: Option<u16>,
    timeout: Option<u64>,
    browser: bool,
}

fn parse(args: &[String]) -> Result<Options, CliError> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| CliError::Usage(format!("{a} needs a value")))
        };
        match a.as_str() {
            "--cache-dir" => o.cache_dir = Some(value()?.into()),
            "--scopes" => o.scopes = Some(value()?),
            "--client-id" => o.client_id = Some(value()?),
            "--client-secret" => o.client_secret = Some(value()?),
            "--callback-port" => {
                o.callback_port =
                    Some(value()?.parse().map_err(|_| {
                        CliError::Usage("--callback-port takes a port number".into())
                    })?)
            }
            "--timeout" => {
                o.timeout = Some(
                    value()?
                        .parse()
                        .map_err(|_| CliError::Usage("--timeout takes seconds".into()))?,
                )
            }
            "--browser" => o.browser = true,
            flag if flag.starts_with('-') => {
                return Err(CliError::Usage(format!("unknown option {flag}")));
            }
            url if o.url.is_none() => o.url = Some(url.to_owned()),
            extra => return Err(CliError::Usage(format!("unexpected argument {extra}"))),
        }
    }
    Ok(o)
}

impl Options {
    fn url(&self) -> Result<&str, CliError> {
        self.url
            .as_deref()
            .ok_or_else(|| CliError::Usage("the MCP server URL is missing".into()))
    }

    fn session(&self) -> Result<Session, CliError> {
        Ok(self.builder(self.url()?).build()?)
    }

    fn builder(&self, url: &str) -> SessionBuilder {
        let mut b = Session::builder(url);
        if let Some(d) = &self.cache_dir {
            b = b.cache_dir(d);
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
        if let Some(p) = self.callback_port {
            b = b.callback_port(p);
        }
        if let Some(t) = self.timeout {
            b = b.callback_timeout(Duration::from_secs(t));
        }
        b
    }

    fn storage(&self) -> Result<FileTokenStorage, CliError> {
        let dir = match &self.cache_dir {
            Some(d) => d.clone(),
            None => FileTokenStorage::default_dir()?,
        };
        Ok(FileTokenStorage::new(dir))
    }
}

fn run(args: &[String]) -> Result<(), CliError> {
    let (command, rest) = args
        .split_first()
        .ok_or_else(|| CliError::Usage("no command given".into()))?;
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        print!("{USAGE}");
        return Ok(());
    }
    let options = parse(rest)?;
    match command.as_str() {
        "demo" => demo(&options),
        "login" => {
            StepLogger::install();
            let session = options.session()?;
            session.login()?;
            eprintln!("Logged in to {}", session.server_url());
            Ok(())
        }
        "token" => {
            let token = options.session()?.access_token()?;
            println!("{}", token.secret());
            Ok(())
        }
        "logout" => {
            let session = options.session()?;
            session.clear()?;
            eprintln!("Forgot the cached tokens of {}", session.server_url());
            Ok(())
        }
        "clear-all" => {
            let storage = options.storage()?;
            let n = storage.clear_all()?;
            eprintln!(
                "Removed {n} cached file(s) from {}",
                storage.dir().display()
            );
            Ok(())
        }
        other => Err(CliError::Usage(format!("unknown command {other}"))),
    }
}

/// Starts the embedded authorization server and runs the whole flow against it, printing
/// each step with its time.
fn demo(options: &Options) -> Result<(), CliError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| CliError::Failed(format!("{what}: {e}"));
    let server = TestServer::start_with(ServerConfig::default())
        .map_err(|e| failed("cannot start the embedded server", &e))?;
    let cache = std::env::temp_dir().join(format!(
        "mcp-oauth-demo-{}-{}",
        std::process::id(),
        mcp_oauth_client::unix_now()
    ));
    eprintln!(
        "Embedded authorization server and MCP endpoint: {}",
        server.mcp_url()
    );
    eprintln!("Token cache for this demo: {}\n", cache.display());
    StepLogger::install();

    let browser = HeadlessBrowser::new();
    let mut builder = options
        .builder(server.mcp_url().as_str())
        .cache_dir(&cache)
        .callback_timeout(Duration::from_secs(options.timeout.unwrap_or(120)));
    if !options.browser {
        builder = builder.authorize_hook(browser.hook());
    }
    let session = builder.build()?;

    eprintln!("1. First login (empty cache):");
    let started = Instant::now();
    let token = session.access_token()?;
    eprintln!("   logged in in {} ms", started.elapsed().as_millis());
    show_requests(&server);

    eprintln!("\n2. An MCP request with the token:");
    let reply = mcp_initialize(&server, token.secret()).map_err(|e| failed("MCP request", &e))?;
    eprintln!("   initialize -> {reply}");

    eprintln!("\n3. Again, from the cache:");
    server.clear_requests();
    let started = Instant::now();
    session.access_token()?;
    eprintln!(
        "   token in {} us, {} request(s) to the server",
        started.elapsed().as_micros(),
        server.requests().len()
    );

    eprintln!("\n4. After the access token expired (the cached expiry is moved to now):");
    let storage = session.storage();
    if let Some(mut stored) = storage.load_tokens(session.server_url())? {
        stored.tokens.expires_at = Some(mcp_oauth_client::unix_now());
        storage.save_tokens(session.server_url(), &stored)?;
    }
    server.clear_requests();
    let started = Instant::now();
    session.access_token()?;
    eprintln!("   refreshed in {} ms", started.elapsed().as_millis());
    show_requests(&server);

    let _ = std::fs::remove_dir_all(&cache);
    eprintln!(
        "\nDone: discovery, registration, browser login with PKCE, cache and refresh all ran."
    );
    Ok(())
}

fn show_requests(server: &TestServer) {
    let requests = server.requests();
    eprintln!("   the server received {} request(s):", requests.len());
    for r in requests {
        eprintln!("     {} {}", r.method, r.path);
    }
}

/// `initialize` on the MCP endpoint; returns the server's name.
fn mcp_initialize(server: &TestServer, token: &str) -> Result<String, String> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "mcp-oauth demo", "version": env!("CARGO_PKG_VERSION")}}
    });
    let mut response = ureq::post(server.mcp_url().as_str())
        .header("authorization", &format!("Bearer {token}"))
        .header("accept", "application/json, text/event-stream")
        .content_type("application/json")
        .send(body.to_string())
        .map_err(|e| e.to_string())?;
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    Ok(format!(
        "HTTP {} from {}",
        response.status().as_u16(),
        value["result"]["serverInfo"]["name"]
    ))
}

/// Prints the library's step messages (log level info) to stderr with the time since start.
struct StepLogger {
    start: Instant,
}

impl StepLogger {
    fn install() {
        let logger = Box::leak(Box::new(StepLogger {
            start: Instant::now(),
        }));
        if log::set_logger(logger).is_ok() {
            log::set_max_level(log::LevelFilter::Info);
        }
    }
}

impl log::Log for StepLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("mcp_oauth_client") && metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "   [{:>5} ms] {}",
                self.start.elapsed().as_millis(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}
