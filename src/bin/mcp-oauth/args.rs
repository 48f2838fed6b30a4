//! The command line: each command and the options it takes, parsed into [`Options`] (an
//! option a command does not take is refused, naming it), and the help, the reference page and
//! the shell completions, all written from the same table.

use std::ffi::OsString;
use std::path::PathBuf;

use mcp_oauth_client::{AuthMethod, printable};

use crate::terminal::Verbosity;

/// A command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmd {
    Login,
    Token,
    Proxy,
    Status,
    Logout,
    ClearAll,
    Demo,
    Completions,
}

/// What a command takes besides options.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Positional {
    None,
    Url,
    OptionalUrl,
    Shell,
}

/// A command's description.
pub(crate) struct CommandSpec {
    pub(crate) cmd: Cmd,
    pub(crate) name: &'static str,
    positional: Positional,
    /// One line, for the command list.
    pub(crate) summary: &'static str,
    /// What it does, for its help.
    about: &'static str,
    examples: &'static str,
}

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        cmd: Cmd::Login,
        name: "login",
        positional: Positional::Url,
        summary: "log in through the browser and cache the tokens",
        about: "Logs in to the MCP server at URL through the browser (or, with --device, with a \
                code entered on another device), even when a token is cached, and stores the \
                tokens. Fails with exit code 7 when they cannot be stored.",
        examples: "mcp-oauth login https://mcp.example.com/mcp\n\
                   mcp-oauth login https://mcp.example.com/mcp --scopes \"files:read\" --no-browser\n\
                   mcp-oauth login https://mcp.example.com/mcp --device",
    },
    CommandSpec {
        cmd: Cmd::Token,
        name: "token",
        positional: Positional::Url,
        summary: "print a valid access token (logging in if needed)",
        about: "Prints a valid access token for URL on stdout: the cached one, a refreshed one, \
                or one from a new login (or, with --client-credentials or --assertion-file, a \
                grant without a browser). It is a Bearer token, for another program's \
                Authorization header; where the server takes DPoP-bound tokens only, the error \
                says to use `mcp-oauth proxy` instead.",
        examples: "curl -H \"Authorization: Bearer $(mcp-oauth token https://mcp.example.com/mcp)\" ...\n\
                   mcp-oauth token https://mcp.example.com/mcp --json | jq .expires_in\n\
                   MCP_OAUTH_CLIENT_SECRET=... mcp-oauth token https://mcp.example.com/mcp --client-credentials --client-id svc-1\n\
                   mcp-oauth token https://mcp.example.com/mcp --assertion-file /var/run/secrets/tokens/mcp-token",
    },
    CommandSpec {
        cmd: Cmd::Proxy,
        name: "proxy",
        positional: Positional::Url,
        summary: "a stdio MCP server forwarding to URL (for stdio-only MCP clients)",
        about: "A stdio MCP server for clients that only start local servers: every JSON-RPC line \
                on stdin goes to the MCP server at URL, every message from it comes out on \
                stdout, one per line; nothing else is written to stdout. Speaks each message's \
                protocol revision (2026-07-28's stateless requests, Streamable HTTP sessions, \
                HTTP+SSE). Logs in on the first 401 (the browser step on stderr), refreshes, \
                steps up; --no-login for unattended use. Ends, closing the MCP session, when \
                stdin ends.",
        examples: "mcp-oauth proxy https://mcp.example.com/mcp\n\
                   {\"mcpServers\": {\"example\": {\"command\": \"mcp-oauth\", \"args\": [\"proxy\", \"https://mcp.example.com/mcp\"]}}}\n\
                   {\"mcpServers\": {\"example\": {\"command\": \"uvx\", \"args\": [\"mcp-oauth\", \"proxy\", \"https://mcp.example.com/mcp\"]}}}",
    },
    CommandSpec {
        cmd: Cmd::Status,
        name: "status",
        positional: Positional::OptionalUrl,
        summary: "show the cached logins (never a secret)",
        about: "Shows each cached login (or the one for URL): server, issuer, client id, scopes, \
                expiry, whether a refresh token exists. Never prints a secret.",
        examples: "mcp-oauth status\nmcp-oauth status https://mcp.example.com/mcp --json",
    },
    CommandSpec {
        cmd: Cmd::Logout,
        name: "logout",
        positional: Positional::Url,
        summary: "revoke the tokens at the server and forget them",
        about: "Revokes the refresh and access tokens of URL at the authorization server (when it \
                offers RFC 7009 revocation), then forgets them and, unless another server shares \
                it, the client registration.",
        examples: "mcp-oauth logout https://mcp.example.com/mcp",
    },
    CommandSpec {
        cmd: Cmd::ClearAll,
        name: "clear-all",
        positional: Positional::None,
        summary: "forget every cached token and client",
        about: "Removes every file this tool wrote in the cache directory, and nothing else. Does \
                not revoke anything at the servers (use logout for that).",
        examples: "mcp-oauth clear-all",
    },
    CommandSpec {
        cmd: Cmd::Demo,
        name: "demo",
        positional: Positional::None,
        summary: "run the whole flow against the embedded authorization server",
        about: "Starts the embedded authorization server and MCP endpoint on 127.0.0.1 and runs \
                the whole flow against it, printing each step with its time: discovery, \
                registration, the browser step (a headless user agent, or your browser with \
                --browser), the code exchange, a cached token, a refresh. (A build with the \
                feature demo.)",
        examples: "mcp-oauth demo\nmcp-oauth demo --browser",
    },
    CommandSpec {
        cmd: Cmd::Completions,
        name: "completions",
        positional: Positional::Shell,
        summary: "print shell completions (bash, zsh or fish)",
        about: "Prints a completion script for SHELL (bash, zsh or fish) on stdout.",
        examples: "mcp-oauth completions bash > ~/.local/share/bash-completion/completions/mcp-oauth\n\
                   mcp-oauth completions zsh > \"${fpath[1]}/_mcp-oauth\"\n\
                   mcp-oauth completions fish > ~/.config/fish/completions/mcp-oauth.fish",
    },
];

use Cmd::{ClearAll, Completions, Demo, Login, Logout, Proxy, Status, Token};

/// Every command.
const ALL: &[Cmd] = &[
    Login,
    Token,
    Proxy,
    Status,
    Logout,
    ClearAll,
    Demo,
    Completions,
];
/// The commands with a token cache.
const CACHE: &[Cmd] = &[Login, Token, Proxy, Status, Logout, ClearAll, Demo];
/// The commands that talk to a server.
const NETWORK: &[Cmd] = &[Login, Token, Proxy, Logout];
/// The commands that may log in.
const LOGS_IN: &[Cmd] = &[Login, Token, Proxy];
/// The commands that may use a grant without a person.
const GRANTS: &[Cmd] = &[Token, Proxy];

/// One option.
pub(crate) struct OptSpec {
    pub(crate) long: &'static str,
    pub(crate) short: Option<char>,
    /// The value's placeholder; `None` for a switch.
    pub(crate) value: Option<&'static str>,
    pub(crate) help: &'static str,
    pub(crate) commands: &'static [Cmd],
}

pub(crate) const OPTIONS: &[OptSpec] = &[
    OptSpec {
        long: "cache-dir",
        short: None,
        value: Some("DIR"),
        commands: CACHE,
        help: "token cache (default $MCP_OAUTH_CACHE_DIR, else ~/.fastmcp/oauth-mcp-client-cache)",
    },
    OptSpec {
        long: "scopes",
        short: None,
        value: Some("\"A B\""),
        commands: LOGS_IN,
        help: "scopes to request (default: what the server asks for)",
    },
    OptSpec {
        long: "client-id",
        short: None,
        value: Some("ID"),
        commands: NETWORK,
        help: "a pre-registered client (no dynamic registration)",
    },
    OptSpec {
        long: "client-secret-file",
        short: None,
        value: Some("FILE"),
        commands: NETWORK,
        help: "its secret, read from FILE (- reads standard input to its end), or from \
               $MCP_OAUTH_CLIENT_SECRET; never on the command line, where every local user can \
               read it",
    },
    OptSpec {
        long: "client-key-file",
        short: None,
        value: Some("FILE"),
        commands: NETWORK,
        help: "its private key (PEM: PKCS#8 ES256 or RS256, or RSA), for private_key_jwt",
    },
    OptSpec {
        long: "client-auth-method",
        short: None,
        value: Some("METHOD"),
        commands: NETWORK,
        help: "how that client authenticates: none, client_secret_basic, client_secret_post or \
               private_key_jwt (default: chosen from the server's metadata)",
    },
    OptSpec {
        long: "client-credentials",
        short: None,
        value: None,
        commands: GRANTS,
        help: "no browser: the client obtains tokens for itself (services, jobs)",
    },
    OptSpec {
        long: "assertion-file",
        short: None,
        value: Some("FILE"),
        commands: GRANTS,
        help: "no browser: the JWT bearer grant with the workload identity token in FILE (read \
               again each time; a Kubernetes or CI token file)",
    },
    OptSpec {
        long: "dpop",
        short: None,
        value: None,
        commands: LOGS_IN,
        help: "bind tokens to a DPoP key wherever the authorization server offers it (default: \
               where the MCP server takes DPoP too; token: never, another program cannot sign \
               the proofs)",
    },
    OptSpec {
        long: "no-dpop",
        short: None,
        value: None,
        commands: LOGS_IN,
        help: "never bind tokens to a DPoP key",
    },
    OptSpec {
        long: "callback-port",
        short: None,
        value: Some("PORT"),
        commands: LOGS_IN,
        help: "a fixed port for the loopback callback",
    },
    OptSpec {
        long: "callback-path",
        short: None,
        value: Some("PATH"),
        commands: LOGS_IN,
        help: "the redirect URI's path (default /callback), for a client registered with exactly \
               one redirect URI",
    },
    OptSpec {
        long: "callback-host",
        short: None,
        value: Some("localhost|127.0.0.1"),
        commands: LOGS_IN,
        help: "the redirect URI's host (default 127.0.0.1)",
    },
    OptSpec {
        long: "authorize-param",
        short: None,
        value: Some("NAME=VALUE"),
        commands: LOGS_IN,
        help: "one more authorization request parameter (repeatable), such as \
               access_type=offline for providers that want it for a refresh token",
    },
    OptSpec {
        long: "omit-resource",
        short: None,
        value: None,
        commands: LOGS_IN,
        help: "leave out the RFC 8707 resource parameter, for authorization servers that refuse \
               it (Microsoft Entra ID: AADSTS9010010); the tokens are then not bound to the MCP \
               server",
    },
    OptSpec {
        long: "timeout",
        short: None,
        value: Some("SECS"),
        commands: &[Login, Token, Proxy, Demo],
        help: "time allowed for the browser step (default 300)",
    },
    OptSpec {
        long: "no-browser",
        short: None,
        value: None,
        commands: LOGS_IN,
        help: "do not open a browser: print the URL (headless, SSH)",
    },
    OptSpec {
        long: "device",
        short: None,
        value: None,
        commands: LOGS_IN,
        help: "log in with a code entered on another device (RFC 8628), for machines with no \
               browser and nothing to paste into",
    },
    OptSpec {
        long: "no-login",
        short: None,
        value: None,
        commands: GRANTS,
        help: "never start a login: exit 8 when only one would help (cron, CI)",
    },
    OptSpec {
        long: "json",
        short: None,
        value: None,
        commands: &[Token, Status],
        help: "(token) print the token set, never the refresh token; (status) print JSON",
    },
    OptSpec {
        long: "refresh",
        short: None,
        value: None,
        commands: &[Token],
        help: "refresh even a valid token",
    },
    OptSpec {
        long: "header-json",
        short: None,
        value: None,
        commands: &[Token],
        help: "print {\"Authorization\": \"Bearer …\"}, for clients that take a headers helper \
               command",
    },
    OptSpec {
        long: "header",
        short: None,
        value: Some("\"Name: value\""),
        commands: &[Proxy],
        help: "one more header on every request to the server (repeatable)",
    },
    OptSpec {
        long: "transport",
        short: None,
        value: Some("auto|streamable|sse"),
        commands: &[Proxy],
        help: "how to reach a server of revisions before 2026-07-28: Streamable HTTP, HTTP+SSE \
               (2024-11-05), or auto (the default): HTTP+SSE when a POST gets 404 or 405",
    },
    OptSpec {
        long: "keyring",
        short: None,
        value: None,
        commands: CACHE,
        help: "keep tokens and client secrets in the OS keyring (a build with the feature \
               keyring); the cache directory keeps copies without them",
    },
    OptSpec {
        long: "ca-file",
        short: None,
        value: Some("FILE"),
        commands: NETWORK,
        help: "trust the certificates in FILE (PEM) instead of the system's (a TLS-inspecting \
               proxy's CA, a private CA)",
    },
    OptSpec {
        long: "allow-private-network",
        short: None,
        value: None,
        commands: NETWORK,
        help: "let a remote server's metadata name private network addresses (10/8, 172.16/12, \
               192.168/16, fc00::/7); loopback and cloud metadata addresses stay refused",
    },
    OptSpec {
        long: "browser",
        short: None,
        value: None,
        commands: &[Demo],
        help: "use your browser instead of the headless user agent",
    },
    OptSpec {
        long: "verbose",
        short: Some('v'),
        value: None,
        commands: ALL,
        help: "say more: the library's log at info (-vv: debug)",
    },
    OptSpec {
        long: "quiet",
        short: Some('q'),
        value: None,
        commands: ALL,
        help: "say nothing but errors",
    },
    OptSpec {
        long: "help",
        short: Some('h'),
        value: None,
        commands: ALL,
        help: "this help",
    },
];

/// The command line, parsed.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) url: Option<String>,
    pub(crate) shell: Option<String>,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) scopes: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret_file: Option<PathBuf>,
    pub(crate) client_key_file: Option<PathBuf>,
    pub(crate) client_auth_method: Option<AuthMethod>,
    pub(crate) client_credentials: bool,
    pub(crate) assertion_file: Option<PathBuf>,
    pub(crate) dpop: bool,
    pub(crate) no_dpop: bool,
    pub(crate) callback_port: Option<u16>,
    pub(crate) callback_path: Option<String>,
    pub(crate) callback_localhost: bool,
    pub(crate) authorize_params: Vec<(String, String)>,
    pub(crate) omit_resource: bool,
    pub(crate) timeout: Option<u64>,
    pub(crate) no_browser: bool,
    pub(crate) device: bool,
    pub(crate) no_login: bool,
    pub(crate) json: bool,
    pub(crate) refresh: bool,
    pub(crate) header_json: bool,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) transport: mcp_oauth_client::bridge::Transport,
    #[cfg_attr(not(feature = "keyring"), allow(dead_code))]
    pub(crate) keyring: bool,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) allow_private_network: bool,
    pub(crate) browser: bool,
    pub(crate) verbosity: Verbosity,
    pub(crate) help: bool,
}

/// A command line that cannot be run, with why (exit code 2).
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

impl From<lexopt::Error> for Usage {
    fn from(e: lexopt::Error) -> Usage {
        Usage(e.to_string())
    }
}

/// The command named `name`.
pub(crate) fn command(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Parses the arguments of `spec`'s command.
pub(crate) fn parse(spec: &CommandSpec, args: Vec<OsString>) -> Result<Options, Usage> {
    use lexopt::prelude::*;
    let mut o = Options::default();
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        let name = match &arg {
            Long(long) => (*long).to_owned(),
            Short(c) => match OPTIONS.iter().find(|o| o.short == Some(*c)) {
                Some(opt) => opt.long.to_owned(),
                None => return Err(arg.unexpected().into()),
            },
            Value(v) => {
                take_positional(spec, &mut o, v.clone())?;
                continue;
            }
        };
        if name == "client-secret" {
            return Err(Usage(
                "--client-secret would put the secret where every local user can read it (ps); \
                 use --client-secret-file FILE (- for standard input) or MCP_OAUTH_CLIENT_SECRET"
                    .into(),
            ));
        }
        let Some(opt) = OPTIONS.iter().find(|o| o.long == name) else {
            return Err(arg.unexpected().into());
        };
        if !opt.commands.contains(&spec.cmd) {
            return Err(Usage(format!("--{name} does not apply to {}", spec.name)));
        }
        let value = match opt.value {
            Some(_) => Some(parser.value()?.string()?),
            None => None,
        };
        set(&mut o, &name, value)?;
    }
    check(spec, &o)?;
    // A token for another program is a Bearer token: that program cannot sign DPoP proofs.
    if spec.cmd == Cmd::Token && !o.dpop {
        o.no_dpop = true;
    }
    Ok(o)
}

/// A value that is not an option.
fn take_positional(spec: &CommandSpec, o: &mut Options, v: OsString) -> Result<(), Usage> {
    let v = v
        .into_string()
        .map_err(|_| Usage("an argument is not valid Unicode".into()))?;
    match spec.positional {
        Positional::Url | Positional::OptionalUrl if o.url.is_none() => {
            o.url = Some(valid_url(&v)?);
        }
        Positional::Shell if o.shell.is_none() => o.shell = Some(v),
        _ => {
            return Err(Usage(format!(
                "{} takes no argument {}",
                spec.name,
                printable(&v)
            )));
        }
    }
    Ok(())
}

/// The MCP server URL, when it is one this tool may use: absolute http(s), plain http only to
/// loopback.
fn valid_url(text: &str) -> Result<String, Usage> {
    let url = url::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            Usage(format!(
                "{} is not an absolute http(s) URL",
                printable(text)
            ))
        })?;
    mcp_oauth_client::internals::require_secure(&url, mcp_oauth_client::Step::Configure).map_err(
        |_| {
            Usage(format!(
                "{} uses plain http to a host that is not this machine; use https",
                printable(text)
            ))
        },
    )?;
    Ok(text.to_owned())
}

/// Sets option `name` (known to take `value` when it has one).
fn set(o: &mut Options, name: &str, value: Option<String>) -> Result<(), Usage> {
    let v = || value.clone().unwrap_or_default();
    let number = |what: &str| -> Result<u64, Usage> {
        v().parse()
            .map_err(|_| Usage(format!("--{what} takes a number, not {}", printable(&v()))))
    };
    match name {
        "cache-dir" => o.cache_dir = Some(v().into()),
        "scopes" => o.scopes = Some(v()),
        "client-id" => o.client_id = Some(v()),
        "client-secret-file" => o.client_secret_file = Some(v().into()),
        "client-key-file" => o.client_key_file = Some(v().into()),
        "client-auth-method" => {
            o.client_auth_method = Some(AuthMethod::from_name(&v()).ok_or_else(|| {
                Usage(format!(
                    "--client-auth-method takes none, client_secret_basic, client_secret_post \
                     or private_key_jwt, not {}",
                    printable(&v())
                ))
            })?);
        }
        "client-credentials" => o.client_credentials = true,
        "assertion-file" => o.assertion_file = Some(v().into()),
        "dpop" => o.dpop = true,
        "no-dpop" => o.no_dpop = true,
        "callback-port" => {
            let port = number("callback-port")?;
            o.callback_port = Some(u16::try_from(port).map_err(|_| {
                Usage(format!(
                    "--callback-port takes a port (0 to 65535), not {port}"
                ))
            })?);
        }
        "callback-path" => o.callback_path = Some(v()),
        "callback-host" => {
            o.callback_localhost = match v().as_str() {
                "localhost" => true,
                "127.0.0.1" => false,
                other => {
                    return Err(Usage(format!(
                        "--callback-host takes localhost or 127.0.0.1, not {}",
                        printable(other)
                    )));
                }
            };
        }
        "authorize-param" => {
            let pair = v();
            let (name, value) = split_value(&pair, '=', "--authorize-param takes NAME=VALUE")?;
            o.authorize_params.push((name.to_owned(), value.to_owned()));
        }
        "omit-resource" => o.omit_resource = true,
        "timeout" => o.timeout = Some(number("timeout")?),
        "no-browser" => o.no_browser = true,
        "device" => o.device = true,
        "no-login" => o.no_login = true,
        "json" => o.json = true,
        "refresh" => o.refresh = true,
        "header-json" => o.header_json = true,
        "header" => {
            let header = v();
            let (name, value) = split_value(&header, ':', "--header takes \"Name: value\"")?;
            o.headers
                .push((name.trim().to_owned(), value.trim().to_owned()));
        }
        "transport" => {
            o.transport = v().parse().map_err(|_| {
                Usage(format!(
                    "--transport takes auto, streamable or sse, not {}",
                    printable(&v())
                ))
            })?;
        }
        "keyring" if cfg!(feature = "keyring") => o.keyring = true,
        "keyring" => {
            return Err(Usage(
                "this mcp-oauth was built without the keyring feature \
                 (cargo install mcp-oauth-client --features cli,keyring)"
                    .into(),
            ));
        }
        "ca-file" => o.ca_file = Some(v().into()),
        "allow-private-network" => o.allow_private_network = true,
        "browser" => o.browser = true,
        "verbose" => {
            o.verbosity = if o.verbosity >= Verbosity::Verbose {
                Verbosity::Debug
            } else {
                Verbosity::Verbose
            };
        }
        "quiet" => o.verbosity = Verbosity::Quiet,
        "help" => o.help = true,
        _ => unreachable!("every option of the table is set here"),
    }
    Ok(())
}

/// What the options of one command line must agree on.
fn check(spec: &CommandSpec, o: &Options) -> Result<(), Usage> {
    if o.help {
        return Ok(());
    }
    match spec.positional {
        Positional::Url if o.url.is_none() => {
            return Err(Usage("the MCP server URL is missing".into()));
        }
        Positional::Shell if o.shell.is_none() => {
            return Err(Usage("which shell? bash, zsh or fish".into()));
        }
        _ => {}
    }
    let pairs = [
        (
            o.client_credentials && o.assertion_file.is_some(),
            "--client-credentials and --assertion-file are two different grants; give one",
        ),
        (
            o.dpop && o.no_dpop,
            "--dpop and --no-dpop contradict each other",
        ),
        (
            o.dpop && o.header_json,
            "--header-json gives a Bearer header, which a DPoP-bound token (--dpop) cannot be",
        ),
        (
            o.device && o.no_browser,
            "--device and --no-browser: a device login opens no browser anyway; give one",
        ),
        (
            o.device && (o.client_credentials || o.assertion_file.is_some()),
            "--device is a person's login; the grants without a browser need none",
        ),
    ];
    match pairs.iter().find(|(clash, _)| *clash) {
        Some((_, why)) => Err(Usage((*why).into())),
        None => Ok(()),
    }
}

/// An option's value split at its first `sep`; else `usage`, naming the value given.
fn split_value<'a>(value: &'a str, sep: char, usage: &str) -> Result<(&'a str, &'a str), Usage> {
    value
        .split_once(sep)
        .ok_or_else(|| Usage(format!("{usage}, not {}", printable(value))))
}

/// The overview: commands, then what every command shares.
pub(crate) fn overview() -> String {
    let mut text = String::from(
        "mcp-oauth: log in to OAuth-protected MCP servers\n\nUSAGE:\n    mcp-oauth <COMMAND> \
         [URL] [OPTIONS]\n    mcp-oauth --version\n\nCOMMANDS:\n",
    );
    for c in COMMANDS {
        text.push_str(&format!("    {:<14} {}\n", c.name, c.summary));
    }
    text.push_str("    help [COMMAND] this page, or a command's options and examples\n\n");
    text.push_str("Run `mcp-oauth help <COMMAND>` for its options and examples.\n\n");
    text.push_str(REFERENCE);
    text
}

/// A command's help: what it does, its usage, its options (and only those), examples.
pub(crate) fn command_help(spec: &CommandSpec) -> String {
    let positional = match spec.positional {
        Positional::None => "",
        Positional::Url => " URL",
        Positional::OptionalUrl => " [URL]",
        Positional::Shell => " SHELL",
    };
    let mut text = format!(
        "mcp-oauth {}: {}\n\nUSAGE:\n    mcp-oauth {}{positional} [OPTIONS]\n\nOPTIONS:\n",
        spec.name,
        wrap(spec.about, 4).trim_start(),
        spec.name
    );
    for opt in OPTIONS.iter().filter(|o| o.commands.contains(&spec.cmd)) {
        let short = opt.short.map(|c| format!("-{c}, ")).unwrap_or_default();
        let head = match opt.value {
            Some(v) => format!("{short}--{} {v}", opt.long),
            None => format!("{short}--{}", opt.long),
        };
        text.push_str(&format!("    {head}\n{}", wrap(opt.help, 12)));
    }
    text.push_str("\nEXAMPLES:\n");
    for line in spec.examples.lines() {
        text.push_str(&format!("    {line}\n"));
    }
    text
}

/// `text` wrapped at 96 columns, each line indented by `indent`.
fn wrap(text: &str, indent: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = String::new();
    let mut line = String::new();
    for word in words {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > 96 {
            out.push_str(&format!("{:indent$}{line}\n", ""));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{:indent$}{line}\n", ""));
    }
    out
}

/// What a reference page says besides the commands: exit codes, signals, environment, files.
const REFERENCE: &str = "\
EXIT CODES:
    0  success
    1  other failure (configuration, browser)
    2  bad command line
    3  the authorization was denied (access_denied)
    4  timed out waiting for the browser or for another process
    5  network failure
    6  protocol error (the server's answer was refused or an OAuth error)
    7  the token cache could not be read or written
    8  a login is needed and none can be done here (--no-login, or no browser and no terminal)

SIGNALS:
    SIGINT (Ctrl-C) and SIGTERM end mcp-oauth at once, except while new tokens are on their way
    to the cache (a refresh, a code exchange): then they wait until the tokens are stored, so a
    Ctrl-C or a service stop never costs a login. Either way it ends by the signal (a shell
    shows 130, 143).

ENVIRONMENT:
    MCP_OAUTH_CACHE_DIR     the token cache directory (--cache-dir wins)
    MCP_OAUTH_CLIENT_SECRET a pre-registered client's secret
    BROWSER                 the program that opens the browser (else the desktop's)
    HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY
                            the proxy to use; one set to something that is not a proxy URL is
                            an error
    RUST_LOG                what to log: a level, or target=level pairs, comma-separated

FILES:
    ~/.fastmcp/oauth-mcp-client-cache/     the default cache directory (0700)
        <key>_tokens.json                  tokens of one MCP server (0600), with the DPoP key
                                           they are bound to, if any
        <key>_client_info.json             a client registration, per authorization server
        <key>.lock, <key>_refreshing.json  the cross-process lock, an unfinished refresh
";

/// The completion script for `shell`.
pub(crate) fn completions(shell: &str) -> Option<String> {
    let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).chain(["help"]).collect();
    let options_of = |cmd: Cmd| -> Vec<String> {
        OPTIONS
            .iter()
            .filter(|o| o.commands.contains(&cmd))
            .map(|o| format!("--{}", o.long))
            .collect()
    };
    match shell {
        "bash" => {
            let mut cases = String::new();
            for c in COMMANDS {
                cases.push_str(&format!(
                    "        {}) opts=\"{}\" ;;\n",
                    c.name,
                    options_of(c.cmd).join(" ")
                ));
            }
            Some(format!(
                "# bash completion for mcp-oauth\n_mcp_oauth() {{\n    local cur=\"${{COMP_WORDS[COMP_CWORD]}}\" opts\n    \
                 if [ \"$COMP_CWORD\" -eq 1 ]; then\n        COMPREPLY=($(compgen -W \"{} --version\" -- \"$cur\"))\n        return\n    fi\n    \
                 case \"${{COMP_WORDS[1]}}\" in\n{cases}        help) opts=\"{}\" ;;\n        *) opts=\"\" ;;\n    esac\n    \
                 case \"${{COMP_WORDS[COMP_CWORD-1]}}\" in\n        --cache-dir|--client-secret-file|--client-key-file|--assertion-file|--ca-file)\n            \
                 COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n        --transport) COMPREPLY=($(compgen -W \"auto streamable sse\" -- \"$cur\")); return ;;\n    esac\n    \
                 COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n}}\ncomplete -F _mcp_oauth mcp-oauth\n",
                names.join(" "),
                COMMANDS
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
        }
        "zsh" => {
            let mut cases = String::new();
            for c in COMMANDS {
                let specs: Vec<String> = OPTIONS
                    .iter()
                    .filter(|o| o.commands.contains(&c.cmd))
                    .map(|o| {
                        let help = o
                            .help
                            .split(['(', ',', ';', ':'])
                            .next()
                            .unwrap_or("")
                            .trim();
                        let help = help.replace(['\'', '[', ']'], "");
                        match o.value {
                            Some(v) => {
                                format!("'--{}[{help}]:{}:'", o.long, v.replace(['"', ':'], ""))
                            }
                            None => format!("'--{}[{help}]'", o.long),
                        }
                    })
                    .collect();
                cases.push_str(&format!(
                    "        {}) _arguments {} ;;\n",
                    c.name,
                    specs.join(" ")
                ));
            }
            let commands: Vec<String> = COMMANDS
                .iter()
                .map(|c| format!("'{}:{}'", c.name, c.summary.replace('\'', "")))
                .collect();
            Some(format!(
                "#compdef mcp-oauth\n_mcp_oauth() {{\n    if (( CURRENT == 2 )); then\n        \
                 local -a commands=({} 'help:show help')\n        _describe command commands\n        return\n    fi\n    \
                 local cmd=$words[2]\n    shift words; (( CURRENT-- ))\n    case $cmd in\n{cases}    esac\n}}\n_mcp_oauth \"$@\"\n",
                commands.join(" ")
            ))
        }
        "fish" => {
            let mut text =
                String::from("# fish completion for mcp-oauth\ncomplete -c mcp-oauth -f\n");
            for c in COMMANDS {
                text.push_str(&format!(
                    "complete -c mcp-oauth -n __fish_use_subcommand -a {} -d '{}'\n",
                    c.name,
                    c.summary.replace('\'', "")
                ));
                for o in OPTIONS.iter().filter(|o| o.commands.contains(&c.cmd)) {
                    let help = o.help.split(['(', ',', ';']).next().unwrap_or("").trim();
                    let needs = if o.value.is_some() { " -r" } else { "" };
                    text.push_str(&format!(
                        "complete -c mcp-oauth -n '__fish_seen_subcommand_from {}' -l {}{needs} -d '{}'\n",
                        c.name,
                        o.long,
                        help.replace('\'', "")
                    ));
                }
            }
            Some(text)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn options_apply_to_their_commands_only() {
        let clear_all = command("clear-all").unwrap();
        let e = parse(clear_all, args(&["--device"])).err().unwrap();
        assert_eq!(e.0, "--device does not apply to clear-all");
        let login = command("login").unwrap();
        assert!(parse(login, args(&["https://x.example/mcp", "--json"])).is_err());
        let token = command("token").unwrap();
        let o = parse(token, args(&["https://x.example/mcp", "--json", "-vv"])).unwrap();
        assert!(o.json && o.verbosity == Verbosity::Debug);
    }

    #[test]
    fn urls_and_values_are_checked_and_named() {
        let token = command("token").unwrap();
        for (line, says) in [
            (vec!["not a url"], "not an absolute http(s) URL"),
            (vec!["http://remote.example/mcp"], "plain http"),
            (
                vec!["https://x.example/mcp", "--timeout", "soon"],
                "--timeout takes a number",
            ),
            (
                vec!["https://x.example/mcp", "--callback-port", "70000"],
                "--callback-port",
            ),
            (vec![], "URL is missing"),
        ] {
            let e = parse(token, args(&line)).err().unwrap();
            assert!(e.0.contains(says), "{line:?}: {}", e.0);
        }
        assert!(parse(token, args(&["http://127.0.0.1:8000/mcp"])).is_ok());
    }

    #[test]
    fn each_commands_help_lists_its_own_options() {
        let clear_all = command_help(command("clear-all").unwrap());
        assert!(clear_all.contains("--cache-dir") && !clear_all.contains("--scopes"));
        let token = command_help(command("token").unwrap());
        assert!(token.contains("--json") && token.contains("--refresh"));
        for shell in ["bash", "zsh", "fish"] {
            let script = completions(shell).unwrap();
            assert!(script.contains("header-json"), "{shell}");
        }
    }
}
