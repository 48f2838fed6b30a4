//! The MCP endpoint's side of revision 2026-07-28 (Streamable HTTP, "Standard Request
//! Headers", "Custom Headers from Tool Parameters"; `server/discover`; `subscriptions/listen`):
//! a request naming its protocol version in `_meta` stands alone, and is refused with 400 and
//! a `HeaderMismatch` error when its headers disagree with its body, as servers on the MCP
//! Python SDK 2.x do. Requests of older revisions are the other module's.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::http::{Request, Response};
use super::util::random_token;

/// The revision this server speaks statelessly.
pub(super) const REVISION: &str = "2026-07-28";

/// JSON-RPC error codes of the revision.
const HEADER_MISMATCH: i64 = -32020;
const UNSUPPORTED_VERSION: i64 = -32022;

/// The protocol version a request's `_meta` names.
pub(super) fn version_of(params: Option<&Map<String, Value>>) -> Option<&str> {
    params?
        .get("_meta")?
        .get("io.modelcontextprotocol/protocolVersion")?
        .as_str()
}

/// Checks a stateless request's headers against its body: `MCP-Protocol-Version`,
/// `Mcp-Method`, `Mcp-Name`, and the `Mcp-Param-*` of the tools' `x-mcp-header` arguments;
/// the version must be this server's. The refusal, when there is one.
pub(super) fn check(
    req: &Request,
    id: &Value,
    method: &str,
    params: Option<&Map<String, Value>>,
) -> Option<Response> {
    let version = version_of(params).unwrap_or_default();
    let refuse = |code: i64, message: String, data: Option<Value>| {
        let mut error = json!({"code": code, "message": message});
        if let Some(data) = data {
            error["data"] = data;
        }
        Some(Response::json(
            400,
            &json!({"jsonrpc": "2.0", "id": id, "error": error}),
        ))
    };
    let header = |name: &str| req.header(name).map(decode);
    if header("mcp-protocol-version").as_deref() != Some(version) {
        return refuse(
            HEADER_MISMATCH,
            "MCP-Protocol-Version does not match the request's _meta".into(),
            None,
        );
    }
    if header("mcp-method").as_deref() != Some(method) {
        return refuse(
            HEADER_MISMATCH,
            "Mcp-Method does not match the request's method".into(),
            None,
        );
    }
    // A session id on a stateless request is ignored, as the revision asks of servers
    // (clients such as rmcp 3.11 keep sending the one an earlier `initialize` gave); the
    // recorded request keeps it for the tests that check a client sends none.
    let param = |name: &str| params.and_then(|p| p.get(name)).and_then(Value::as_str);
    let name = match method {
        "tools/call" | "prompts/get" => param("name"),
        "resources/read" => param("uri"),
        _ => None,
    };
    if name.is_some() && header("mcp-name").as_deref() != name {
        return refuse(
            HEADER_MISMATCH,
            "Mcp-Name does not match the request's params".into(),
            None,
        );
    }
    if method == "tools/call" && name == Some("region") {
        let region = params
            .and_then(|p| p.get("arguments"))
            .and_then(|a| a.get("region"))
            .and_then(Value::as_str);
        if header("mcp-param-region").as_deref() != region {
            return refuse(
                HEADER_MISMATCH,
                "Mcp-Param-Region does not match the request's region argument".into(),
                None,
            );
        }
    }
    if version != REVISION {
        return refuse(
            UNSUPPORTED_VERSION,
            format!("unsupported protocol version {version}"),
            Some(json!({"supported": [REVISION], "requested": version})),
        );
    }
    None
}

/// A header value, decoded when it is `=?base64?…?=`.
fn decode(value: &str) -> String {
    value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| value.to_owned())
}

/// `server/discover`'s result.
pub(super) fn discover() -> Value {
    json!({
        "resultType": "complete",
        "supportedVersions": [REVISION],
        "capabilities": {"tools": {"listChanged": true}},
        "_meta": {"io.modelcontextprotocol/serverInfo":
            {"name": "mcp-oauth-client test server", "version": "0.1.0"}},
    })
}

/// A tool whose `x-mcp-header` annotation breaks the rules (on a `number`): a client of the
/// revision must not offer it.
pub(super) fn misannotated_tool() -> Value {
    json!({
        "name": "misannotated",
        "description": "Its header annotation is on a number, which the transport forbids",
        "inputSchema": {"type": "object",
            "properties": {"n": {"type": "number", "x-mcp-header": "N"}}},
    })
}

/// `subscriptions/listen`: an event stream that acknowledges the subscription, sends one
/// `tools/list_changed` when asked for, and stays open (comments keep it alive) until the
/// client closes it, or 30 s.
pub(super) fn listen(id: Value, params: Option<&Map<String, Value>>) -> Response {
    let wants_tools = params
        .and_then(|p| p.get("notifications"))
        .and_then(|n| n.get("toolsListChanged"))
        == Some(&Value::Bool(true));
    let meta = json!({"io.modelcontextprotocol/subscriptionId": id});
    let acknowledged = json!({
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {"notifications": {"toolsListChanged": wants_tools}, "_meta": meta},
    });
    let changed = json!({
        "jsonrpc": "2.0",
        "method": "notifications/tools/list_changed",
        "params": {"_meta": meta},
    });
    let stream_id = random_token();
    Response::event_stream(move |out| {
        write!(out, "id: {stream_id}-0\ndata: {acknowledged}\n\n")?;
        out.flush()?;
        if wants_tools {
            std::thread::sleep(std::time::Duration::from_millis(100));
            write!(out, "data: {changed}\n\n")?;
            out.flush()?;
        }
        for _ in 0..150 {
            std::thread::sleep(std::time::Duration::from_millis(200));
            out.write_all(b": keep-alive\n\n")?;
            out.flush()?;
        }
        Ok(())
    })
}
