//! What the test server's threads share: the configuration, the request log, the faults and
//! the OAuth tables (clients, codes, tokens), and the small responses every handler uses.

use std::collections::{HashMap, HashSet};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use url::Url;

use super::http::{Request, Response};
use super::{Fault, RecordedRequest, Route, ServerConfig};

/// A registered client.
#[derive(Clone, Debug)]
pub(super) struct Client {
    /// `None` for public clients (`token_endpoint_auth_method` `none`).
    pub secret: Option<String>,
    pub auth_method: String,
    pub redirect_uris: Vec<String>,
    /// The public key of a `private_key_jwt` client.
    pub jwk: Option<serde_json::Value>,
}

/// What an authorization code was issued for.
#[derive(Clone, Debug)]
pub(super) struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: Option<String>,
    pub resource: Option<String>,
    pub expires: Instant,
}

/// A live access token.
#[derive(Clone, Debug)]
pub(super) struct AccessGrant {
    pub scope: Option<String>,
    /// The token is expired from this instant on.
    pub expires: Instant,
    pub resource: Option<String>,
    pub client_id: String,
    /// The authorization it descends from.
    pub grant: u64,
    /// The thumbprint of the DPoP key it is bound to.
    pub jkt: Option<String>,
}

/// A live refresh token.
#[derive(Clone, Debug)]
pub(super) struct RefreshGrant {
    pub client_id: String,
    pub scope: Option<String>,
    pub resource: Option<String>,
    pub grant: u64,
    /// The thumbprint of the DPoP key it is bound to.
    pub jkt: Option<String>,
}

/// Everything the server threads share with the [`TestServer`](super::TestServer) handle.
pub(super) struct Shared {
    /// `http://127.0.0.1:PORT/`.
    pub base: Url,
    /// `http://127.0.0.1:PORT/mcp`.
    pub mcp_url: Url,
    /// The issuer identifier (not the override).
    pub issuer: String,
    /// The configuration, with a normalised `issuer_path`.
    pub config: ServerConfig,
    /// Set when the handle is dropped.
    pub stop: AtomicBool,
    state: Mutex<State>,
    pub(super) next_connection: AtomicU64,
    /// Clones of the open connections, so that stopping can shut them down.
    pub(super) connections: Mutex<HashMap<u64, TcpStream>>,
}

/// The mutable state: the log, faults, runtime settings, and the OAuth tables.
pub(super) struct State {
    pub log: Vec<RecordedRequest>,
    pub faults: HashMap<Route, Fault>,
    pub access_token_lifetime: i64,
    pub required_scope: Option<String>,
    /// Registered clients by client id.
    pub clients: HashMap<String, Client>,
    /// Unused authorization codes.
    pub codes: HashMap<String, CodeGrant>,
    /// Live (unrevoked, possibly expired) access tokens.
    pub access_tokens: HashMap<String, AccessGrant>,
    /// Live refresh tokens.
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    /// Tokens submitted to the revocation endpoint.
    pub revoked: Vec<String>,
    /// Source of grant ids, which tie the tokens of one authorization together.
    pub next_grant: u64,
    /// Refresh tokens rotated away, with their grant (for strict reuse detection).
    pub spent_refresh_tokens: HashMap<String, u64>,
    /// How many token families were revoked because a spent refresh token came back.
    pub family_revocations: usize,
    /// Every `jti` of an assertion or DPoP proof accepted so far: none is accepted twice.
    pub seen_jtis: HashSet<String>,
    /// The DPoP nonces the token endpoint and the MCP endpoint require.
    pub dpop_nonces: DpopNonces,
    /// How many `use_dpop_nonce` challenges each endpoint sent.
    pub nonce_challenges: NonceChallenges,
    /// Device codes waiting for the person, by device code.
    pub device_codes: HashMap<String, DeviceGrant>,
    /// Requests of the MCP endpoint to the client waiting for its answer, by request id.
    pub client_answers: HashMap<String, std::sync::mpsc::Sender<serde_json::Value>>,
    /// With `mcp_strict_initialization`: each MCP session, and whether the client's
    /// `notifications/initialized` was processed.
    pub mcp_sessions: HashMap<String, bool>,
    /// With `legacy_sse`: where each session's event stream takes its messages.
    pub sse_sessions: HashMap<String, std::sync::mpsc::Sender<String>>,
}

/// A device code waiting for the person.
#[derive(Clone, Debug)]
pub(super) struct DeviceGrant {
    pub client_id: String,
    pub user_code: String,
    pub scope: Option<String>,
    pub resource: Option<String>,
    pub expires: Instant,
    /// `Some(true)` approved, `Some(false)` denied, `None` not yet.
    pub decision: Option<bool>,
    /// The first poll got `slow_down` already.
    pub slowed: bool,
}

/// The nonces of [`ServerConfig::dpop_nonces`].
pub(super) struct DpopNonces {
    pub token: String,
    pub mcp: String,
}

impl DpopNonces {
    pub fn new() -> DpopNonces {
        DpopNonces {
            token: super::util::random_token(),
            mcp: super::util::random_token(),
        }
    }
}

/// How many `use_dpop_nonce` challenges the test server sent, by endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NonceChallenges {
    /// By the token endpoint (HTTP 400).
    pub token: usize,
    /// By the MCP endpoint (HTTP 401).
    pub mcp: usize,
}

impl Shared {
    pub fn new(port: u16, mut config: ServerConfig) -> Shared {
        config.issuer_path = config.normalized_issuer_path();
        let origin = format!("http://127.0.0.1:{port}");
        let base = Url::parse(&format!("{origin}/")).expect("a loopback origin is a valid URL");
        let mcp_url = base
            .join("mcp")
            .expect("a relative path joins onto a base URL");
        let state = State {
            log: Vec::new(),
            faults: HashMap::new(),
            access_token_lifetime: config.access_token_lifetime,
            required_scope: None,
            clients: HashMap::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            revoked: Vec::new(),
            spent_refresh_tokens: HashMap::new(),
            family_revocations: 0,
            next_grant: 1,
            seen_jtis: HashSet::new(),
            dpop_nonces: DpopNonces::new(),
            nonce_challenges: NonceChallenges::default(),
            device_codes: HashMap::new(),
            client_answers: HashMap::new(),
            mcp_sessions: HashMap::new(),
            sse_sessions: HashMap::new(),
        };
        Shared {
            issuer: format!("{origin}{}", config.issuer_path),
            base,
            mcp_url,
            config,
            stop: AtomicBool::new(false),
            state: Mutex::new(state),
            next_connection: AtomicU64::new(1),
            connections: Mutex::new(HashMap::new()),
        }
    }

    /// Locks the state; a panic elsewhere while it was held does not make it unusable.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The path of an authorization server endpoint, e.g. `/tenant1/token`.
    pub fn endpoint_path(&self, name: &str) -> String {
        format!("{}/{name}", self.config.issuer_path)
    }

    /// The URL of an authorization server endpoint, e.g. `http://127.0.0.1:PORT/tenant1/token`.
    pub fn endpoint_url(&self, name: &str) -> String {
        format!("{}/{name}", self.issuer)
    }

    /// The Protected Resource Metadata URL of the MCP endpoint.
    pub fn resource_metadata_url(&self) -> String {
        format!("{}.well-known/oauth-protected-resource/mcp", self.base)
    }

    /// The `resource` the Protected Resource Metadata advertises.
    pub fn advertised_resource(&self) -> String {
        self.config
            .prm_resource_override
            .clone()
            .unwrap_or_else(|| self.mcp_url.to_string())
    }

    /// Shuts down every open connection, waking the threads blocked reading them.
    pub fn close_connections(&self) {
        let connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for stream in connections.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Takes the fault for `route`, if one is set, counting down its uses.
    pub(super) fn take_fault(&self, route: Route) -> Option<Fault> {
        let mut state = self.lock();
        let fault = state.faults.get_mut(&route)?;
        let remaining = match fault.times {
            None => return Some(fault.clone()),
            Some(n) => n.saturating_sub(1),
        };
        let taken = (fault.times != Some(0)).then(|| fault.clone());
        if remaining == 0 {
            state.faults.remove(&route);
        } else {
            fault.times = Some(remaining);
        }
        taken
    }
}

/// `404 Not Found`.
pub(super) fn not_found() -> Response {
    Response::text(404, "not found")
}

/// `405 Method Not Allowed`, listing the methods that are.
pub(super) fn method_not_allowed(allowed: &[&str]) -> Response {
    Response::text(405, "method not allowed").header("Allow", &allowed.join(", "))
}

/// `405 Method Not Allowed` unless the request's method is one of `allowed`.
pub(super) fn require_method(request: &Request, allowed: &[&str]) -> Result<(), Response> {
    if allowed.contains(&request.method.as_str()) {
        Ok(())
    } else {
        Err(method_not_allowed(allowed))
    }
}
