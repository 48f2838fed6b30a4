//! The request headers of MCP revision 2026-07-28's Streamable HTTP transport ("Standard
//! Request Headers", "Custom Headers from Tool Parameters"): `MCP-Protocol-Version` from the
//! request's `_meta`, `Mcp-Method`, `Mcp-Name`, and `Mcp-Param-{Name}` for the tool arguments
//! a tool's input schema marks with `x-mcp-header`. Servers refuse a request whose headers
//! are missing or disagree with its body. Also the content type of the server's answers.
//! Pure; fuzzed.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::message::Message;

/// Where one argument of a tool goes: its path in `arguments` and its header's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    /// The property names from the `arguments` object down to the value.
    pub path: Vec<String>,
    /// The header name, `Mcp-Param-` and the annotation.
    pub header: String,
}

/// The headers a request of revision 2026-07-28 or later carries beside its body: the
/// protocol version its `_meta` names, its method, its `Mcp-Name` (the tool or prompt name,
/// the resource URI, the task id), and for `tools/call` the `Mcp-Param-*` headers of
/// `params` (the tool's, from its listing). Empty for a message that names no version.
///
/// ```
/// use mcp_oauth_client::bridge::{headers::routing_headers, message::Message};
/// let m = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo",
///     "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#).unwrap();
/// assert_eq!(routing_headers(&m, &[]), [
///     ("mcp-protocol-version".to_owned(), "2026-07-28".to_owned()),
///     ("mcp-method".to_owned(), "tools/call".to_owned()),
///     ("mcp-name".to_owned(), "echo".to_owned()),
/// ]);
/// ```
pub fn routing_headers(message: &Message<'_>, params: &[ParamHeader]) -> Vec<(String, String)> {
    let (Some(version), Some(method)) = (message.protocol_version(), message.method.as_deref())
    else {
        return Vec::new();
    };
    let mut headers = vec![
        ("mcp-protocol-version".to_owned(), version),
        ("mcp-method".to_owned(), encode_value(method)),
    ];
    let name = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    };
    if let Some(name) = name.and_then(|n| message.param_str(n)) {
        headers.push(("mcp-name".to_owned(), encode_value(&name)));
    }
    if method == "tools/call" && !params.is_empty() {
        let arguments: Option<Value> = message
            .param("arguments")
            .and_then(|a| serde_json::from_str(a.get()).ok());
        for p in params {
            let value = arguments
                .as_ref()
                .and_then(|a| p.path.iter().try_fold(a, |v, key| v.get(key)));
            if let Some(text) = value.and_then(header_text) {
                headers.push((p.header.to_ascii_lowercase(), encode_value(&text)));
            }
        }
    }
    headers
}

/// A parameter value as header text: a string as is, an integer in decimal, a boolean as
/// `true` or `false`; nothing for other values (and for `null`: the header is left out).
fn header_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// A header value as the transport carries it: as is when it is visible ASCII and spaces,
/// not starting or ending with a space; else, and for a value that looks encoded already,
/// `=?base64?…?=` around the standard, padded Base64 of its UTF-8.
///
/// ```
/// use mcp_oauth_client::bridge::headers::encode_value;
/// assert_eq!(encode_value("us-west1"), "us-west1");
/// assert_eq!(encode_value("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
/// assert_eq!(encode_value(" padded"), "=?base64?IHBhZGRlZA==?=");
/// ```
pub fn encode_value(value: &str) -> String {
    let visible = value.bytes().all(|b| (0x20..=0x7e).contains(&b));
    let padded = value.starts_with(' ') || value.ends_with(' ');
    let looks_encoded = value.starts_with("=?base64?") && value.ends_with("?=");
    let plain = visible && !padded && !looks_encoded;
    if plain {
        value.to_owned()
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
        format!("=?base64?{encoded}?=")
    }
}

/// The `x-mcp-header` annotations of a tool's input schema, or why the tool must be left out
/// of the listing (the transport's rules: a non-empty HTTP token without CR or LF, unique
/// whatever its case, on a `string`, `integer` or `boolean` property reached through
/// `properties` alone).
///
/// # Errors
/// What is wrong with an annotation.
pub fn tool_param_headers(input_schema: &Value) -> Result<Vec<ParamHeader>, String> {
    let mut found = Vec::new();
    walk(input_schema, &mut Vec::new(), &mut found, 0)?;
    let mut seen = std::collections::HashSet::new();
    for p in &found {
        if !seen.insert(p.header.to_ascii_lowercase()) {
            return Err(format!("{} is declared twice", p.header));
        }
    }
    Ok(found)
}

/// Nesting deeper than this in an input schema is not followed.
const MAX_SCHEMA_DEPTH: usize = 32;

fn walk(
    schema: &Value,
    path: &mut Vec<String>,
    found: &mut Vec<ParamHeader>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_SCHEMA_DEPTH {
        return Ok(());
    }
    if let Some(annotation) = schema.get("x-mcp-header") {
        if path.is_empty() {
            return Err("x-mcp-header on the schema itself".into());
        }
        let name = annotation
            .as_str()
            .filter(|n| !n.is_empty() && n.bytes().all(is_tchar))
            .ok_or_else(|| format!("x-mcp-header {annotation} is not a header name"))?;
        let allowed = ["string", "integer", "boolean"];
        if !schema["type"]
            .as_str()
            .is_some_and(|t| allowed.contains(&t))
        {
            return Err(format!(
                "x-mcp-header {name} is on a {} property",
                schema["type"]
            ));
        }
        found.push(ParamHeader {
            path: path.clone(),
            header: format!("Mcp-Param-{name}"),
        });
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (key, property) in properties {
            path.push(key.clone());
            walk(property, path, found, depth + 1)?;
            path.pop();
        }
    }
    // Annotations reached otherwise (items, combinators, references) are not allowed.
    for key in [
        "items", "oneOf", "anyOf", "allOf", "not", "if", "then", "else", "$defs",
    ] {
        if schema
            .get(key)
            .is_some_and(|s| s.to_string().contains("\"x-mcp-header\""))
        {
            return Err(format!("x-mcp-header under {key}"));
        }
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What [`screen_tools`] found in a `tools/list` response.
#[derive(Debug, Default)]
pub struct Screened {
    /// The response to forward instead, when tools were dropped from it.
    pub rewritten: Option<Vec<u8>>,
    /// The argument headers of the tools kept, by tool name; a tool with none has an empty
    /// list, so one that lost its annotations since an earlier listing loses its headers too.
    pub headers: HashMap<String, Vec<ParamHeader>>,
    /// The tools dropped, with why.
    pub dropped: Vec<(String, String)>,
}

/// Takes a `tools/list` response as sent: each tool whose `x-mcp-header` annotations break the
/// rules is dropped (the transport says such a tool must not be offered), the others' argument
/// headers are returned. Each tool is read on its own, its input schema the only part of it
/// made a tree; the rest of the response is kept as sent.
pub fn screen_tools(response: &[u8]) -> Screened {
    type Members<'a> = BTreeMap<Cow<'a, str>, &'a RawValue>;
    #[derive(Deserialize)]
    struct Tool {
        #[serde(default)]
        name: String,
        #[serde(rename = "inputSchema", default)]
        input_schema: Value,
    }
    let mut screened = Screened::default();
    let Ok(mut top) = serde_json::from_slice::<Members<'_>>(response) else {
        return screened;
    };
    let Some(mut result) = top
        .get("result")
        .and_then(|r| serde_json::from_str::<Members<'_>>(r.get()).ok())
    else {
        return screened;
    };
    let Some(tools) = result
        .get("tools")
        .and_then(|t| serde_json::from_str::<Vec<&RawValue>>(t.get()).ok())
    else {
        return screened;
    };
    let mut kept = Vec::with_capacity(tools.len());
    for raw in tools {
        let Ok(tool) = serde_json::from_str::<Tool>(raw.get()) else {
            kept.push(raw);
            continue;
        };
        match tool_param_headers(&tool.input_schema) {
            Ok(params) => {
                screened.headers.insert(tool.name, params);
                kept.push(raw);
            }
            Err(why) => screened.dropped.push((tool.name, why)),
        }
    }
    if screened.dropped.is_empty() {
        return screened;
    }
    let rebuilt = serde_json::to_string(&kept)
        .ok()
        .and_then(|t| RawValue::from_string(t).ok());
    let rebuilt_result = rebuilt.as_deref().and_then(|tools| {
        result.insert(Cow::Borrowed("tools"), tools);
        serde_json::to_string(&result)
            .ok()
            .and_then(|r| RawValue::from_string(r).ok())
    });
    if let Some(new_result) = &rebuilt_result {
        top.insert(Cow::Borrowed("result"), new_result);
        screened.rewritten = serde_json::to_vec(&top).ok();
    }
    screened
}

/// A response's content type, lower case.
pub(super) fn content_type(response: &ureq::http::Response<ureq::Body>) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(arguments: Value) -> Vec<(String, String)> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "deploy", "arguments": arguments,
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}})
        .to_string();
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "options": {"type": "object", "properties": {
                "priority": {"type": "integer", "x-mcp-header": "Priority"},
                "dry": {"type": "boolean", "x-mcp-header": "Dry"}}}}});
        let params = tool_param_headers(&schema).unwrap();
        routing_headers(&Message::parse(body.as_bytes()).unwrap(), &params)
            .into_iter()
            .filter(|(k, _)| k.starts_with("mcp-param-"))
            .collect()
    }

    #[test]
    fn tool_arguments_become_headers() {
        let mut got = call(json!({"region": "日本", "options": {"priority": 5, "dry": true}}));
        got.sort();
        assert_eq!(
            got,
            [
                ("mcp-param-dry".to_owned(), "true".to_owned()),
                ("mcp-param-priority".to_owned(), "5".to_owned()),
                (
                    "mcp-param-region".to_owned(),
                    "=?base64?5pel5pys?=".to_owned()
                ),
            ]
        );
        // Absent or null: no header.
        assert!(call(json!({"region": null})).is_empty());
        assert!(call(json!({})).is_empty());
    }

    #[test]
    fn names_of_other_methods_and_no_headers_without_a_version() {
        let headers = |body: Value| {
            routing_headers(&Message::parse(body.to_string().as_bytes()).unwrap(), &[])
        };
        let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"});
        let read = headers(json!({"id": 1, "method": "resources/read",
            "params": {"uri": "file:///a b", "_meta": meta}}));
        assert_eq!(read[2], ("mcp-name".to_owned(), "file:///a b".to_owned()));
        let discover = headers(json!({"id": 1, "method": "server/discover",
            "params": {"_meta": meta}}));
        assert_eq!(discover.len(), 2);
        assert!(
            headers(json!({"id": 1, "method": "tools/call", "params": {"name": "x"}})).is_empty()
        );
    }

    #[test]
    fn values_that_look_encoded_are_encoded() {
        assert_eq!(
            encode_value("=?base64?abc?="),
            "=?base64?PT9iYXNlNjQ/YWJjPz0=?="
        );
        assert_eq!(encode_value("tab\there"), "=?base64?dGFiCWhlcmU=?=");
        assert_eq!(encode_value(""), "");
    }

    #[test]
    fn bad_annotations_drop_their_tool() {
        let response = json!({"jsonrpc": "2.0", "id": 1, "result": {"nextCursor": "c2", "tools": [
            {"name": "ok", "inputSchema": {"type": "object",
                "properties": {"a": {"type": "string", "x-mcp-header": "A"}}}},
            {"name": "plain", "inputSchema": {"type": "object"}},
            {"name": "number", "inputSchema": {"type": "object",
                "properties": {"n": {"type": "number", "x-mcp-header": "N"}}}},
            {"name": "twice", "inputSchema": {"type": "object", "properties": {
                "a": {"type": "string", "x-mcp-header": "Id"},
                "b": {"type": "string", "x-mcp-header": "id"}}}},
            {"name": "space", "inputSchema": {"type": "object",
                "properties": {"a": {"type": "string", "x-mcp-header": "A B"}}}},
            {"name": "items", "inputSchema": {"type": "object", "properties": {"l": {
                "type": "array", "items": {"type": "string", "x-mcp-header": "L"}}}}},
        ]}});
        let screened = screen_tools(response.to_string().as_bytes());
        let rewritten: Value = serde_json::from_slice(&screened.rewritten.unwrap()).unwrap();
        let names: Vec<&str> = rewritten["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["ok", "plain"]);
        assert_eq!(
            (
                rewritten["id"].clone(),
                rewritten["result"]["nextCursor"].clone()
            ),
            (json!(1), json!("c2"))
        );
        assert_eq!(screened.headers["ok"][0].header, "Mcp-Param-A");
        // Listed without annotations: an empty list replaces what an earlier listing said.
        assert!(screened.headers["plain"].is_empty());
        let dropped: Vec<&str> = screened.dropped.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(dropped, ["number", "twice", "space", "items"]);
        // Nothing to drop: the response goes as it came.
        let fine = json!({"id": 2, "result": {"tools": [{"name": "plain", "inputSchema": {}}]}});
        assert!(
            screen_tools(fine.to_string().as_bytes())
                .rewritten
                .is_none()
        );
    }
}
