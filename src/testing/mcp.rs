//! The protected MCP endpoint: access token checks (Bearer, or DPoP with a proof), then a
//! little JSON-RPC 2.0: `initialize`, `ping`, `tools/list`, and two tools: `echo`, and
//! `confirm`, which asks the client back (an `elicitation/create` request in its answer's event
//! stream) and answers with what the client said.

use std::time::Instant;

use serde_json::{Map, Value, json};

use super::dpop::{Endpoint, Refusal};
use super::http::{Request, Response};
use super::state::{Shared, method_not_allowed};
use super::util::{has_scopes, random_token};

/// The protocol version answered when the client does not ask for one.
const DEFAULT_PROTOCOL_VERSION: &str = "2025-06-18";

/// `/mcp`: checks the bearer token, then serves `POST` (JSON-RPC) and `DELETE` (end session).
pub(super) fn handle(s: &Shared, req: &Request) -> Response {
    if let Err(response) = check_token(s, req) {
        return response;
    }
    match req.method.as_str() {
        "POST" => rpc(s, req),
        // Session termination: there is nothing to clean up.
        "DELETE" => Response::empty(200),
        // No server-initiated SSE stream (allowed by the Streamable HTTP transport).
        _ => method_not_allowed(&["POST", "DELETE"]),
    }
}

/// Accepts a request with a live, unexpired token for this resource carrying the required
/// scopes, presented with its scheme (a DPoP-bound token with `DPoP` and a valid proof by its
/// key); otherwise builds the 401 or 403 challenge.
pub(super) fn check_token(s: &Shared, req: &Request) -> Result<(), Response> {
    let Some(authorization) = req.header("authorization") else {
        return Err(unauthorized(s, None, "no access token"));
    };
    let takes_dpop = s.config.dpop && s.config.mcp_dpop.takes_dpop();
    let takes_bearer = !s.config.dpop || s.config.mcp_dpop.takes_bearer();
    let (dpop_scheme, token) = match authorization.split_once(' ') {
        Some((scheme, token)) if takes_bearer && scheme.eq_ignore_ascii_case("bearer") => {
            (false, token.trim())
        }
        Some((scheme, token)) if takes_dpop && scheme.eq_ignore_ascii_case("dpop") => {
            (true, token.trim())
        }
        _ if takes_bearer => {
            return Err(unauthorized(s, Some("invalid_token"), "not a Bearer token"));
        }
        _ => return Err(unauthorized(s, Some("invalid_token"), "not a DPoP token")),
    };
    let mut state = s.lock();
    let Some(grant) = state.access_tokens.get(token).cloned() else {
        return Err(unauthorized(
            s,
            Some("invalid_token"),
            "unknown or revoked access token",
        ));
    };
    match (&grant.jkt, dpop_scheme) {
        (Some(_), false) => {
            return Err(unauthorized(
                s,
                Some("invalid_token"),
                "a DPoP-bound token must be presented with the DPoP scheme and a proof",
            ));
        }
        (None, true) => {
            return Err(unauthorized(
                s,
                Some("invalid_token"),
                "the token is not DPoP-bound",
            ));
        }
        (Some(jkt), true) => {
            let proof = super::dpop::check(s, &mut state, req, Endpoint::Mcp, Some(token));
            match proof {
                Ok(Some(key)) if key == *jkt => {}
                Ok(Some(_)) => {
                    let why = "the proof is not by the key the token is bound to";
                    return Err(unauthorized(s, Some("invalid_dpop_proof"), why));
                }
                Ok(None) => {
                    let why = "a DPoP-bound token needs a DPoP proof";
                    return Err(unauthorized(s, Some("invalid_dpop_proof"), why));
                }
                Err(Refusal::Invalid(why)) => {
                    return Err(unauthorized(s, Some("invalid_dpop_proof"), &why));
                }
                Err(Refusal::Nonce(nonce)) => {
                    let why = "a DPoP nonce is required";
                    return Err(
                        unauthorized(s, Some("use_dpop_nonce"), why).header("DPoP-Nonce", &nonce)
                    );
                }
            }
        }
        (None, false) => {}
    }
    if Instant::now() >= grant.expires {
        return Err(unauthorized(
            s,
            Some("invalid_token"),
            "the access token expired",
        ));
    }
    // RFC 8707 audience check: a token bound to another resource is not for us.
    let trim = |r: &str| r.trim_end_matches('/').to_owned();
    if let Some(resource) = &grant.resource {
        let ours = [trim(s.mcp_url.as_str()), trim(&s.advertised_resource())];
        if !ours.contains(&trim(resource)) {
            return Err(unauthorized(
                s,
                Some("invalid_token"),
                "the access token is for another resource",
            ));
        }
    }
    if let Some(required) = &state.required_scope
        && !has_scopes(grant.scope.as_deref(), required)
    {
        let challenge = challenge(s, Some("insufficient_scope"), Some(required));
        let body = json!({
            "error": "insufficient_scope",
            "error_description": format!("this endpoint requires scope {required}"),
        });
        return Err(Response::json(403, &body).header("WWW-Authenticate", &challenge));
    }
    Ok(())
}

/// A `401` with a Bearer challenge (RFC 6750 §3, RFC 9728 §5.1).
fn unauthorized(s: &Shared, error: Option<&str>, description: &str) -> Response {
    let challenge = challenge(s, error, s.config.challenge_scope.as_deref());
    Response::json(
        401,
        &json!({ "error": "unauthorized", "error_description": description }),
    )
    .header("WWW-Authenticate", &challenge)
}

/// `Bearer error="...", scope="...", resource_metadata="..."`, each part only when relevant;
/// an endpoint that takes DPoP-bound tokens offers the `DPoP` scheme with its `algs` first,
/// and `Bearer` after it unless it takes bound tokens only (RFC 9449 §7.1).
fn challenge(s: &Shared, error: Option<&str>, scope: Option<&str>) -> String {
    let dpop = s.config.dpop && s.config.mcp_dpop.takes_dpop();
    let bearer = !s.config.dpop || s.config.mcp_dpop.takes_bearer();
    let mut schemes = Vec::new();
    if dpop {
        schemes.push(scheme_challenge(
            s,
            "DPoP",
            Some("ES256 RS256"),
            error,
            scope,
        ));
    }
    if bearer {
        // The DPoP errors (a proof refused, a nonce wanted) are the DPoP scheme's.
        let error = error.filter(|e| !e.contains("dpop"));
        schemes.push(scheme_challenge(s, "Bearer", None, error, scope));
    }
    schemes.join(", ")
}

/// One scheme's challenge: `algs`, `error`, `scope` and `resource_metadata` when relevant.
fn scheme_challenge(
    s: &Shared,
    scheme: &str,
    algs: Option<&str>,
    error: Option<&str>,
    scope: Option<&str>,
) -> String {
    let quote = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    let mut params = Vec::new();
    if let Some(algs) = algs {
        params.push(format!("algs=\"{algs}\""));
    }
    if let Some(error) = error {
        params.push(format!("error=\"{}\"", quote(error)));
    }
    if let Some(scope) = scope {
        params.push(format!("scope=\"{}\"", quote(scope)));
    }
    if s.config.serve_resource_metadata && s.config.resource_metadata_in_challenge {
        let url = s.resource_metadata_url();
        params.push(format!("resource_metadata=\"{}\"", quote(&url)));
    }
    if params.is_empty() {
        scheme.to_owned()
    } else {
        format!("{scheme} {}", params.join(", "))
    }
}

/// Answers one JSON-RPC message.
pub(super) fn rpc(s: &Shared, req: &Request) -> Response {
    let Ok(message) = serde_json::from_slice::<Value>(&req.body) else {
        return Response::json(400, &error_message(&Value::Null, -32700, "Parse error"));
    };
    let Some(message) = message.as_object() else {
        // Batches were removed from MCP in 2025-06-18.
        return Response::json(400, &error_message(&Value::Null, -32600, "Invalid Request"));
    };
    let method = message.get("method");
    if let Some(versions) = &s.config.protocol_versions
        && let Some(asked) = req.header("mcp-protocol-version")
        && !versions.iter().any(|v| v == asked)
    {
        let text = format!("Bad Request: Unsupported protocol version: {asked}");
        return Response::json(400, &error_message(&Value::Null, -32600, &text));
    }
    let strict = s.config.mcp_strict_initialization;
    let Some(id) = message.get("id") else {
        // A notification: accepted, nothing to answer.
        if strict && method == Some(&json!("notifications/initialized")) {
            // Processed a moment after it arrived, as a server's message loop does.
            std::thread::sleep(std::time::Duration::from_millis(50));
            if let Some(session) = req.header("mcp-session-id") {
                s.lock().mcp_sessions.insert(session.to_owned(), true);
            }
        }
        return accepted(strict);
    };
    if method.is_none() && (message.contains_key("result") || message.contains_key("error")) {
        // A response to a request of ours: to the `confirm` call waiting for it.
        let waiting = id
            .as_str()
            .and_then(|id| s.lock().client_answers.remove(id));
        if let Some(answer) = waiting {
            let _ = answer.send(Value::Object(message.clone()));
        }
        return accepted(strict);
    }
    if strict
        && !matches!(method.and_then(Value::as_str), Some("initialize" | "ping"))
        && req
            .header("mcp-session-id")
            .is_none_or(|session| s.lock().mcp_sessions.get(session) != Some(&true))
    {
        let text = "Invalid request parameters: request before initialization was complete";
        return Response::json(200, &error_message(id, -32602, text));
    }
    let (Some("2.0"), Some(Value::String(method))) =
        (message.get("jsonrpc").and_then(Value::as_str), method)
    else {
        return Response::json(400, &error_message(id, -32600, "Invalid Request"));
    };
    let params = message.get("params").and_then(Value::as_object);
    if super::stateless::version_of(params).is_some() {
        return stateless_rpc(s, req, id, method, params);
    }
    if method == "tools/call" && params.and_then(|p| p.get("name")) == Some(&json!("confirm")) {
        return confirm(s, id.clone());
    }
    let (reply, session) = match call(method, params, s.config.protocol_versions.as_deref()) {
        Ok(result) => {
            let session = (method == "initialize").then(random_token);
            if strict && let Some(session) = &session {
                s.lock().mcp_sessions.insert(session.clone(), false);
            }
            (
                json!({ "jsonrpc": "2.0", "id": id, "result": result }),
                session,
            )
        }
        Err((code, text)) => (error_message(id, code, &text), None),
    };
    let mut response = if wants_sse(req) || s.config.mcp_sse_answers {
        let event = format!("event: message\ndata: {reply}\n\n");
        Response::with_body(200, "text/event-stream", event).header("Cache-Control", "no-cache")
    } else {
        Response::json(200, &reply)
    };
    if let Some(session) = session {
        response = response.header("Mcp-Session-Id", &session);
    }
    response
}

/// A 202 for a notification or a response: with an empty JSON body when `python_style`, as
/// the MCP Python SDK's servers send it.
fn accepted(python_style: bool) -> Response {
    if python_style {
        Response::with_body(202, "application/json", Vec::new())
    } else {
        Response::empty(202)
    }
}

/// Answers a request of revision 2026-07-28: its headers checked, no session.
fn stateless_rpc(
    s: &Shared,
    req: &Request,
    id: &Value,
    method: &str,
    params: Option<&Map<String, Value>>,
) -> Response {
    use super::stateless;
    if let Some(refusal) = stateless::check(req, id, method, params) {
        return refusal;
    }
    let result = match method {
        "server/discover" => Ok(stateless::discover()),
        "subscriptions/listen" => return stateless::listen(id.clone(), params),
        other => call(other, params, None).map(|mut result| {
            if other == "tools/list"
                && let Some(tools) = result["tools"].as_array_mut()
            {
                tools.push(stateless::misannotated_tool());
            }
            result["resultType"] = json!("complete");
            result
        }),
    };
    let reply = match result {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err((code, text)) => error_message(id, code, &text),
    };
    if wants_sse(req) || s.config.mcp_sse_answers {
        let event = format!("event: message\ndata: {reply}\n\n");
        return Response::with_body(200, "text/event-stream", event);
    }
    Response::json(200, &reply)
}

/// Runs a method; the error is a JSON-RPC error code and message. `versions`: the protocol
/// revisions spoken, newest last, when not whatever the client asks.
fn call(
    method: &str,
    params: Option<&Map<String, Value>>,
    versions: Option<&[String]>,
) -> Result<Value, (i64, String)> {
    let param = |name: &str| params.and_then(|p| p.get(name));
    match method {
        "initialize" => Ok(json!({
            "protocolVersion": param("protocolVersion")
                .and_then(Value::as_str)
                .filter(|asked| versions.is_none_or(|v| v.iter().any(|v| v == asked)))
                .or_else(|| versions.and_then(|v| v.last()).map(String::as_str))
                .unwrap_or(DEFAULT_PROTOCOL_VERSION),
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "mcp-oauth-client test server", "version": "0.1.0" },
        })),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({
            "tools": [{
                "name": "echo",
                "description": "Echoes its text argument",
                "inputSchema": {
                    "type": "object",
                    "properties": { "text": { "type": "string" } },
                    "required": ["text"],
                },
            }, {
                "name": "confirm",
                "description": "Asks the client to confirm, then says what it answered",
                "inputSchema": { "type": "object" },
            }, {
                "name": "region",
                "description": "Says which region it ran in; the region goes in a header too",
                "inputSchema": {
                    "type": "object",
                    "properties": { "region": { "type": "string", "x-mcp-header": "Region" } },
                    "required": ["region"],
                },
            }],
        })),
        "tools/call" => match param("name").and_then(Value::as_str) {
            Some("echo") => {
                let text = param("arguments")
                    .and_then(|a| a.get("text"))
                    .and_then(Value::as_str)
                    .ok_or((-32602, "echo needs a string argument text".to_owned()))?;
                Ok(json!({ "content": [{ "type": "text", "text": text }] }))
            }
            Some("region") => {
                let region = param("arguments")
                    .and_then(|a| a.get("region"))
                    .and_then(Value::as_str)
                    .ok_or((-32602, "region needs a string argument region".to_owned()))?;
                Ok(json!({ "content": [{ "type": "text", "text": format!("ran in {region}") }] }))
            }
            Some(other) => Err((-32602, format!("Unknown tool: {other}"))),
            None => Err((-32602, "tools/call needs a tool name".to_owned())),
        },
        _ => Err((-32601, "Method not found".to_owned())),
    }
}

/// `tools/call confirm`: an event stream whose first event asks the client to confirm (an
/// `elicitation/create` request), and whose second, once the client's answer came (within ten
/// seconds), is the tool's result quoting it.
fn confirm(s: &Shared, call_id: Value) -> Response {
    let ask_id = format!("srv-{}", random_token());
    let (answer, answered) = std::sync::mpsc::channel();
    s.lock().client_answers.insert(ask_id.clone(), answer);
    let ask = json!({
        "jsonrpc": "2.0", "id": ask_id, "method": "elicitation/create",
        "params": {
            "message": "Go ahead?",
            "requestedSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
        },
    });
    Response::event_stream(move |out| {
        write!(out, "event: message\ndata: {ask}\n\n")?;
        out.flush()?;
        let said = answered
            .recv_timeout(std::time::Duration::from_secs(10))
            .map_or_else(|_| "no answer".to_owned(), |a| a.to_string());
        let result = json!({
            "jsonrpc": "2.0", "id": call_id,
            "result": {"content": [{"type": "text", "text": format!("the client said: {said}")}]},
        });
        write!(out, "event: message\ndata: {result}\n\n")
    })
}

fn error_message(id: &Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// Whether the client accepts only an event stream, not JSON.
fn wants_sse(req: &Request) -> bool {
    let accept = req
        .header("accept")
        .unwrap_or_default()
        .to_ascii_lowercase();
    accept.contains("text/event-stream") && !accept.contains("application/json")
}
