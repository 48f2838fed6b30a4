//! The commands and the options each takes: the one table the parser, the help, the
//! reference page and the shell completions are written from.

/// A command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmd {
    /// Logs in (again) and caches the tokens.
    Login,
    /// Prints an access token for another program, logging in only as needed.
    Token,
    /// The stdio bridge an MCP client starts.
    Proxy,
    /// What the cache holds.
    Status,
    /// Revokes and forgets a server's tokens.
    Logout,
    /// Forgets everything the cache holds.
    ClearAll,
    /// A whole login against the embedded server.
    Demo,
    /// Shell completions.
    Completions,
}

/// What a command takes besides options.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Positional {
    None,
    Url,
    OptionalUrl,
    Shell,
}

/// A command's description.
pub(crate) struct CommandSpec {
    pub(crate) cmd: Cmd,
    pub(crate) name: &'static str,
    pub(crate) positional: Positional,
    /// One line, for the command list.
    pub(crate) summary: &'static str,
    /// What it does, for its help.
    pub(crate) about: &'static str,
    pub(crate) examples: &'static str,
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
                not revoke anything at the servers (use logout for that), and leaves the OS \
                keyring alone (`logout URL --keyring` forgets a login kept there).",
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
                --browser), the code exchange, a cached token, a refresh. Its cache is a \
                temporary directory, removed at the end, unless --cache-dir names one; its \
                --timeout is 120 s. (A build with the feature demo.)",
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
#[rustfmt::skip]
const ALL: &[Cmd] = &[Login, Token, Proxy, Status, Logout, ClearAll, Demo, Completions];
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
        commands: &[Login, Token, Proxy, Status, Logout],
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
