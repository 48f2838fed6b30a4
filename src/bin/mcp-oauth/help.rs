//! What the command line says of itself, from the table in `args`: the overview with the
//! reference sections a manual page has, each command's help, the shell completions.

use crate::spec::{COMMANDS, Cmd, CommandSpec, OPTIONS, Positional};

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
        "mcp-oauth {}\n{}\nUSAGE:\n    mcp-oauth {}{positional} [OPTIONS]\n\nOPTIONS:\n",
        spec.name,
        wrap(spec.about, 4),
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
            // Options that take a path complete file names; those with a few values, those.
            let paths: Vec<String> = OPTIONS
                .iter()
                .filter(|o| matches!(o.value, Some("FILE" | "DIR")))
                .map(|o| format!("--{}", o.long))
                .collect();
            let paths = paths.join("|");
            let choices: String = OPTIONS
                .iter()
                .filter_map(|o| {
                    let values = o.value.filter(|v| v.contains('|'))?;
                    Some(format!(
                        "        --{}) COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")); return ;;\n",
                        o.long,
                        values.replace('|', " ")
                    ))
                })
                .collect();
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
                 case \"${{COMP_WORDS[COMP_CWORD-1]}}\" in\n        {paths})\n            \
                 COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n{choices}    esac\n    \
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
    use crate::args::command;

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
