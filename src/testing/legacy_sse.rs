//! The MCP endpoint as a server of revision 2024-11-05 runs it (its HTTP+SSE transport,
//! [`ServerConfig::legacy_sse`](super::ServerConfig::legacy_sse)): `GET /mcp` opens an event
//! stream whose first event, `endpoint`, names `/mcp/messages?session_id=…`; messages POSTed
//! there are answered 202, and their answers come as `message` events on the stream. A POST
//! to `/mcp` itself is 405, as such servers answer a Streamable HTTP client.

use std::sync::mpsc;
use std::time::Duration;

use super::http::{Request, Response};
use super::state::{Shared, method_not_allowed};
use super::util::random_token;

/// How long a stream waits for a message before a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_millis(200);
/// A stream with nothing to send for this long ends.
const IDLE_END: Duration = Duration::from_secs(60);

/// `/mcp` and `/mcp/messages`, the token checked first.
pub(super) fn handle(s: &Shared, req: &Request) -> Response {
    if let Err(response) = super::mcp::check_token(s, req) {
        return response;
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/mcp") => open(s),
        ("POST", "/mcp/messages") => message(s, req),
        ("POST", "/mcp") => method_not_allowed(&["GET"]),
        _ => Response::empty(404),
    }
}

/// A new session's event stream.
fn open(s: &Shared) -> Response {
    let session = random_token();
    let (send, receive) = mpsc::channel::<String>();
    s.lock().sse_sessions.insert(session.clone(), send);
    Response::event_stream(move |out| {
        write!(
            out,
            "event: endpoint\ndata: /mcp/messages?session_id={session}\n\n"
        )?;
        out.flush()?;
        let mut idle = Duration::ZERO;
        while idle < IDLE_END {
            match receive.recv_timeout(KEEP_ALIVE) {
                Ok(message) => {
                    write!(out, "event: message\ndata: {message}\n\n")?;
                    idle = Duration::ZERO;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    out.write_all(b": keep-alive\n\n")?;
                    idle += KEEP_ALIVE;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
            out.flush()?;
        }
        Ok(())
    })
}

/// A message for a session: answered on its stream.
fn message(s: &Shared, req: &Request) -> Response {
    let session = req
        .query
        .iter()
        .find(|(k, _)| k == "session_id")
        .map(|(_, v)| v.clone());
    let Some(stream) = session.and_then(|id| s.lock().sse_sessions.get(&id).cloned()) else {
        return Response::with_body(404, "text/plain", "Could not find session");
    };
    let answer = super::mcp::rpc(s, req);
    if answer.status == 200 && !answer.body.is_empty() {
        let _ = stream.send(String::from_utf8_lossy(&answer.body).into_owned());
    }
    Response::with_body(202, "text/plain", "Accepted")
}
