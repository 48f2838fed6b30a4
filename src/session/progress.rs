//! What a login is doing, as typed events for a front end to show
//! ([`SessionBuilder::on_progress`](crate::SessionBuilder::on_progress)). The same steps go to
//! the log at `info`, in the words of [`Progress`]'s `Display`; a front end that shows them its
//! own way matches on the event, not on log text.

use std::sync::Arc;

use url::Url;

use crate::error::printable;

/// One step of a login, refresh or grant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// The resource metadata names this authorization server, which is looked at next.
    AuthorizationServer {
        /// Its issuer identifier, as the metadata names it.
        issuer: String,
    },
    /// Of several authorization servers, this one was passed over.
    ServerSkipped {
        /// Its issuer identifier.
        issuer: String,
        /// Why, in words.
        reason: String,
    },
    /// The MCP server has no resource metadata: its origin is tried as the authorization
    /// server (MCP 2025-03-26).
    NoResourceMetadata {
        /// The origin tried.
        origin: String,
    },
    /// The authorization server's metadata was read.
    ServerMetadata {
        /// Its issuer identifier.
        issuer: String,
    },
    /// A client was registered (RFC 7591).
    Registered {
        /// The client identifier the server gave.
        client_id: String,
        /// Where.
        issuer: String,
    },
    /// The browser step is under way: the login waits for the redirect.
    WaitingForBrowser {
        /// Where the redirect is awaited.
        redirect_uri: Url,
    },
    /// The device step is under way: the login polls while the person signs in elsewhere.
    WaitingForDevice {
        /// Where the person signs in.
        verification_uri: Url,
    },
    /// The authorization code came; it is being exchanged for tokens.
    Exchanging,
    /// The access token is being refreshed.
    Refreshing {
        /// The token endpoint asked.
        token_endpoint: String,
    },
    /// Tokens are being obtained without a browser (client credentials, JWT bearer).
    Granting {
        /// The token endpoint asked.
        token_endpoint: String,
    },
}

impl std::fmt::Display for Progress {
    /// One line, server text made [`printable`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Progress::AuthorizationServer { issuer } => write!(
                f,
                "resource metadata: authorization server {}",
                printable(issuer)
            ),
            Progress::ServerSkipped { issuer, reason } => write!(
                f,
                "authorization server {} skipped: {}",
                printable(issuer),
                printable(reason)
            ),
            Progress::NoResourceMetadata { origin } => write!(
                f,
                "no resource metadata; trying {} as the authorization server",
                printable(origin)
            ),
            Progress::ServerMetadata { issuer } => write!(
                f,
                "authorization server metadata: issuer {}",
                printable(issuer)
            ),
            Progress::Registered { client_id, issuer } => write!(
                f,
                "registered client {} with {}",
                printable(client_id),
                printable(issuer)
            ),
            Progress::WaitingForBrowser { redirect_uri } => {
                write!(f, "waiting for the browser at {redirect_uri}")
            }
            Progress::WaitingForDevice { verification_uri } => {
                write!(f, "waiting for the device login at {verification_uri}")
            }
            Progress::Exchanging => f.write_str("authorization code received; exchanging it"),
            Progress::Refreshing { token_endpoint } => {
                write!(f, "token refresh at {}", printable(token_endpoint))
            }
            Progress::Granting { token_endpoint } => {
                write!(f, "token grant at {}", printable(token_endpoint))
            }
        }
    }
}

/// The front end's progress hook, shared with the session's threads.
pub(crate) type ProgressHook = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Tells `hook` (when there is one) and the log about `event`.
pub(crate) fn report(hook: Option<&ProgressHook>, event: Progress) {
    log::info!("{event}");
    if let Some(hook) = hook {
        hook(&event);
    }
}
