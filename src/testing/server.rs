//! The accept loop, per-connection threads, shared state and request dispatch.

use std::io::BufReader;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use super::http::{self, ReadError, Request, Response};
use super::state::{Shared, not_found};
use super::{Fault, RecordedRequest, Route, legacy_sse, mcp, metadata, oauth};

/// How long a connection may stay silent (between or inside requests) before it is closed.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

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
                let keep_alive = keep_alive && response.stream.is_none();
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
        received: std::time::Instant::now(),
    });

    if let Some(fault) = route.and_then(|route| shared.take_fault(route)) {
        if let Some(delay) = fault.delay {
            thread::sleep(delay);
        }
        if !fault.then_normal {
            return fault_response(fault);
        }
    }
    answer(shared, route, request)
}

/// The answer a fault gives instead of the endpoint's.
fn fault_response(fault: Fault) -> Response {
    let mut response = Response::empty(fault.status);
    if !fault.content_type.is_empty() {
        response = response.header("Content-Type", &fault.content_type);
    }
    response.headers.extend(fault.headers);
    response.body = fault.body.into_bytes();
    response
}

/// The endpoint's own answer.
fn answer(shared: &Shared, route: Option<Route>, request: Request) -> Response {
    let path = request.path.as_str();
    match route {
        Some(Route::ResourceMetadata) => metadata::resource_metadata(shared, &request),
        Some(Route::AuthServerMetadata) => metadata::auth_server_metadata(shared, &request),
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
        Some(Route::DeviceAuthorization)
            if path == shared.endpoint_path("device_authorization") =>
        {
            super::device::device_authorization(shared, &request)
        }
        Some(Route::Device) if path == shared.endpoint_path("device") => {
            super::device::verification_page(shared, &request)
        }
        Some(Route::Mcp) if shared.config.legacy_sse => legacy_sse::handle(shared, &request),
        Some(Route::Mcp) => mcp::handle(shared, &request),
        _ => not_found(),
    }
}
