//! The command line parsed into [`Options`], by the table of commands and options in `spec`:
//! an option a command does not take is refused, naming it, and every value is checked.

use std::ffi::OsString;
use std::path::PathBuf;

use mcp_oauth_client::{AuthMethod, printable};

use crate::spec::{COMMANDS, Cmd, CommandSpec, OPTIONS, Positional};
use crate::terminal::Verbosity;

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
            spec.cmd == Cmd::Proxy
                && o.client_secret_file.as_deref() == Some(std::path::Path::new("-")),
            "--client-secret-file -: proxy's standard input is the MCP client's messages; name a \
             file or set MCP_OAUTH_CLIENT_SECRET",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn every_option_of_the_table_is_parsed() {
        for opt in OPTIONS {
            let spec = COMMANDS.iter().find(|c| c.cmd == opt.commands[0]).unwrap();
            let mut line = match spec.positional {
                Positional::Url | Positional::OptionalUrl => vec!["https://x.example/mcp"],
                Positional::Shell => vec!["bash"],
                Positional::None => vec![],
            };
            let flag = format!("--{}", opt.long);
            line.push(&flag);
            if opt.value.is_some() {
                line.push(match opt.long {
                    "timeout" | "callback-port" => "8765",
                    "client-auth-method" => "client_secret_post",
                    "header" => "X-Tenant: acme",
                    "authorize-param" => "prompt=consent",
                    "transport" => "sse",
                    "callback-path" => "/cb",
                    "callback-host" => "localhost",
                    _ => "some-value",
                });
            }
            if opt.long == "keyring" && !cfg!(feature = "keyring") {
                continue;
            }
            let parsed = parse(spec, args(&line));
            assert!(parsed.is_ok(), "{line:?}: {:?}", parsed.err());
        }
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
}
