//! The accept loop, per-connection threads, shared state and request dispatch.

use std::collections::HashMap;
use std::io::BufReader;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use url::Url;

use super::http::{self, ReadError, Request, Response};
use super::oauth::{AccessGrant, Client, CodeGrant, RefreshGrant};
use super::{Fault, RecordedRequest, Route, ServerConfig, mcp, oauth};

/// How long a connection may stay silent (between or inside requests) before it is closed.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

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
    next_connection: AtomicU64,
    /// Clones of the open connections, so that stopping can shut them down.
    connections: Mutex<HashMap<u64, TcpStream>>,
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

    fn stopped(&self) -> bool {
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
    fn take_fault(&self, route: Route) -> Option<Fault> {
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

/// Accepts connections until the server is stopped, serving each on its own thread.
pub(super) fn accept_loop(listener: &TcpListener, shared: &std::sync::Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopped() {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                log::warn!("test server: accept failed: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let id = shared.next_connection.fetch_add(1, Ordering::SeqCst);
        let worker = std::sync::Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name(format!("test-server-conn-{id}"))
            .spawn(move || serve_connection(stream, id, &worker));
        if let Err(e) = spawned {
            log::warn!("test server: cannot spawn a connection thread: {e}");
        }
    }
}

/// Serves the requests of one connection until it closes, goes idle, misbehaves, or the server
/// stops.
fn serve_connection(stream: TcpStream, id: u64, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_nodelay(true);
    if let Ok(clone) = stream.try_clone() {
        shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, clone);
    }
    let mut conn = BufReader::new(stream);
    while !shared.stopped() {
        match http::read_request(&mut conn) {
            Ok(request) => {
                let keep_alive = request.keep_alive;
                let response = handle(shared, id, request);
                if response.write_to(conn.get_mut(), keep_alive).is_err() || !keep_alive {
                    break;
                }
            }
            Err(ReadError::Reject(response)) => {
                log::debug!("test server: rejected a request ({})", response.status);
                let _ = response.write_to(conn.get_mut(), false);
                break;
            }
            Err(ReadError::Closed) => break,
        }
    }
    let _ = conn.get_ref().shutdown(Shutdown::Both);
    shared
        .connections
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);
}

/// Records a request, then answers it: with a fault if one is set for its route, otherwise
/// with the route's handler.
fn handle(shared: &Shared, connection: u64, request: Request) -> Response {
    let route = Route::of_path(&request.path);
    log::debug!(
        "test server: {} {} (connection {connection})",
        request.method,
        request.path
    );
    shared.lock().log.push(RecordedRequest {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        headers: request.headers.clone(),
        body: String::from_utf8_lossy(&request.body).into_owned(),
        connection,
        route,
    });

    if let Some(fault) = route.and_then(|route| shared.take_fault(route)) {
        if let Some(delay) = fault.delay {
            thread::sleep(delay);
        }
        let mut response = Response::empty(fault.status);
        if !fault.content_type.is_empty() {
            response = response.header("Content-Type", &fault.content_type);
        }
        response.headers.extend(fault.headers);
        response.body = fault.body.into_bytes();
        return response;
    }

    let path = request.path.as_str();
    match route {
        Some(Route::ResourceMetadata) => oauth::resource_metadata(shared, &request),
        Some(Route::AuthServerMetadata) => oauth::auth_server_metadata(shared, &request),
        Some(Route::Register) if path == shared.endpoint_path("register") => {
            oauth::register(shared, &request)
        }
        Some(Route::Authorize) if path == shared.endpoint_path("authorize") => {
            oauth::authorize(shared, &request)
        }
        Some(Route::Token) if path == shared.endpoint_path("token") => {
            oauth::token(shared, &request)
        }
        Some(Route::Revoke) if path == shared.endpoint_path("revoke") => {
            oauth::revoke(shared, &request)
        }
        Some(Route::Mcp) => mcp::handle(shared, &request),
        _ => not_found(),
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
