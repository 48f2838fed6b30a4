//! `status`: the cached logins, never a secret; what the cache files say came from servers
//! or from whoever wrote them, so it is made printable.

use mcp_oauth_client::internals::unix_now;
use mcp_oauth_client::storage::IN_KEYRING;
use mcp_oauth_client::{FileTokenStorage, StoredTokens, printable};

use crate::Failure;
use crate::args::Options;

pub(crate) fn status(options: &Options) -> Result<(), Failure> {
    let storage = options.storage()?;
    let wanted = match &options.url {
        Some(u) => {
            Some(url::Url::parse(u).map_err(|e| Failure::Usage(format!("{}: {e}", printable(u))))?)
        }
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
                    "mcp-oauth: skipping {}: {e:#}",
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
