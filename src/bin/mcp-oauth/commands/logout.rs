//! `logout` (revocation, then the cache entry forgotten) and `clear-all` (every cache file of
//! this tool removed, nothing revoked).

use mcp_oauth_client::TokenTypeHint;

use crate::Failure;
use crate::args::Options;

pub(crate) fn logout(options: &Options) -> Result<(), Failure> {
    let session = options.builder(options.url())?.build()?;
    let report = session.logout()?;
    if !report.had_tokens {
        sayln!("No cached login for {}", session.server_url());
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
        sayln!("Nothing revoked (the server offers no revocation, or it failed).");
    } else {
        sayln!(
            "Revoked {} at the authorization server.",
            names.join(" and ")
        );
    }
    for e in &report.errors {
        errln!("mcp-oauth: {e:#}");
    }
    sayln!("Forgot the cached tokens of {}", session.server_url());
    Ok(())
}

/// `clear-all`: removes every file this tool wrote in the cache directory.
pub(crate) fn clear_all(options: &Options) -> Result<(), Failure> {
    let storage = options.storage()?;
    let n = storage.clear_all()?;
    sayln!(
        "Removed {n} cached file(s) from {}",
        storage.dir().display()
    );
    Ok(())
}
