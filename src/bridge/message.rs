//! One JSON-RPC 2.0 message as the bridge forwards it (MCP "Base Protocol", JSON-RPC 2.0 §4,
//! §5): its kind, its id and method, and the few members of its `params` the transport
//! headers need, read without building a tree of the message. The bytes themselves are
//! forwarded as they came, on one line. Pure; fuzzed.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// The `_meta` key of a request's protocol version, from revision 2026-07-28 on (MCP "Base
/// Protocol", per-request protocol fields).
pub const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request: a method and an id; it is answered.
    Request,
    /// A notification: a method, no id.
    Notification,
    /// A response: a `result` or an `error` for an id.
    Response,
    /// A JSON array of messages (JSON-RPC batches, of MCP revisions before 2025-06-18).
    Batch,
}

/// One message, read.
#[derive(Debug)]
pub struct Message<'a> {
    /// What it is.
    pub kind: Kind,
    /// Its id, as sent (a request's or a response's).
    pub id: Option<&'a RawValue>,
    /// Its method (requests and notifications).
    pub method: Option<Cow<'a, str>>,
    /// The top-level members of its `params`, when that is an object.
    params: HashMap<Cow<'a, str>, &'a RawValue>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// Why bytes are not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAMessage {
    /// Not JSON (JSON-RPC's parse error, -32700).
    Json,
    /// JSON, but not a JSON-RPC message (invalid request, -32600).
    Shape,
}

impl<'a> Message<'a> {
    /// Reads `bytes` as one JSON-RPC message (or a batch of them).
    ///
    /// # Errors
    /// [`NotAMessage`] saying whether `bytes` is not JSON or not a message.
    ///
    /// ```
    /// use mcp_oauth_client::bridge::message::{Kind, Message};
    /// let m = Message::parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}"#).unwrap();
    /// assert_eq!((m.kind, m.method.as_deref()), (Kind::Request, Some("tools/call")));
    /// assert_eq!(m.id_key().as_deref(), Some("7"));
    /// assert_eq!(m.param_str("name").as_deref(), Some("echo"));
    /// ```
    pub fn parse(bytes: &'a [u8]) -> Result<Message<'a>, NotAMessage> {
        let raw: &RawValue = serde_json::from_slice(bytes).map_err(|_| NotAMessage::Json)?;
        if raw.get().starts_with('[') {
            return Ok(Message {
                kind: Kind::Batch,
                id: None,
                method: None,
                params: HashMap::new(),
            });
        }
        let envelope: Envelope<'a> =
            serde_json::from_str(raw.get()).map_err(|_| NotAMessage::Shape)?;
        let kind = match (&envelope.method, envelope.id) {
            (Some(_), Some(_)) => Kind::Request,
            (Some(_), None) => Kind::Notification,
            (None, _) if envelope.result.is_some() || envelope.error.is_some() => Kind::Response,
            (None, _) => return Err(NotAMessage::Shape),
        };
        let params = envelope
            .params
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or_default();
        Ok(Message {
            kind,
            id: envelope.id,
            method: envelope.method,
            params,
        })
    }

    /// The id as a key that compares ids by value (`"1"` and `"\u0031"` are one id).
    pub fn id_key(&self) -> Option<String> {
        self.id.and_then(id_key)
    }

    /// The method, when it is `method`.
    pub fn is(&self, method: &str) -> bool {
        self.method.as_deref() == Some(method)
    }

    /// The `params` member `name`, as sent.
    pub fn param(&self, name: &str) -> Option<&'a RawValue> {
        self.params.get(name).copied()
    }

    /// The `params` member `name` when it is a string.
    pub fn param_str(&self, name: &str) -> Option<String> {
        self.param(name)
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
    }

    /// The protocol version a request names in its `_meta` (revision 2026-07-28 on): such a
    /// request stands alone, with no session.
    pub fn protocol_version(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Meta {
            #[serde(rename = "io.modelcontextprotocol/protocolVersion")]
            version: Option<String>,
        }
        let meta: Meta = serde_json::from_str(self.param("_meta")?.get()).ok()?;
        meta.version.filter(|v| could_be_revision(v))
    }
}

/// Whether `version` could name a protocol revision (a date, `2026-07-28`): what is not taken
/// from a client's request or a server's `initialize` result, so it never reaches the
/// `MCP-Protocol-Version` header.
pub(crate) fn could_be_revision(version: &str) -> bool {
    (1..=32).contains(&version.len())
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A message id as a key: equal ids, equal keys.
pub fn id_key(id: &RawValue) -> Option<String> {
    match serde_json::from_str::<Value>(id.get()).ok()? {
        Value::Null => None,
        v => Some(v.to_string()),
    }
}

/// The messages of a batch, each as sent; empty for anything that is not a JSON array.
pub fn batch_items(bytes: &[u8]) -> Vec<&RawValue> {
    serde_json::from_slice::<Vec<&RawValue>>(bytes).unwrap_or_default()
}

/// Makes valid JSON one line: a line break in JSON can only be whitespace (in strings it is
/// escaped), so each becomes a space. The stdio transport frames messages by lines.
pub fn to_one_line(json: &mut [u8]) {
    for b in json.iter_mut() {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
}

/// The `id` member of a JSON object of which only the beginning is known (a message too large
/// to take whole): its value when the object names it before `prefix` ends, so that the refusal
/// can answer the request it belongs to. Top-level members only; `None` when the prefix is not
/// the start of an object or ends first.
///
/// ```
/// use mcp_oauth_client::bridge::message::id_from_prefix;
/// assert_eq!(id_from_prefix(br#"{"jsonrpc": "2.0", "id": 42, "params": {"text": "aaa"#), Some(42.into()));
/// assert_eq!(id_from_prefix(br#"{"params": {"id": 1, "x": "a"#), None);
/// ```
pub fn id_from_prefix(prefix: &[u8]) -> Option<Value> {
    let mut s = Scanner { b: prefix, i: 0 };
    s.ws();
    s.eat(b'{')?;
    loop {
        s.ws();
        let key_start = s.i;
        s.string()?;
        let key = &prefix[key_start..s.i];
        s.ws();
        s.eat(b':')?;
        s.ws();
        let value_start = s.i;
        s.value(0)?;
        if serde_json::from_slice::<String>(key).ok()? == "id" {
            let id: Value = serde_json::from_slice(&prefix[value_start..s.i]).ok()?;
            return (id.is_string() || id.is_number()).then_some(id);
        }
        s.ws();
        s.eat(b',')?;
    }
}

/// Steps over JSON text, checking only what [`id_from_prefix`] needs.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

/// Nesting deeper than this is not scanned.
const MAX_DEPTH: usize = 64;

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
    }

    /// One value; the end of a number or literal must be seen (a following byte), else `None`.
    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string(),
            b'{' | b'[' => {
                let close = if self.peek()? == b'{' { b'}' } else { b']' };
                self.i += 1;
                loop {
                    self.ws();
                    if self.peek()? == close {
                        self.i += 1;
                        return Some(());
                    }
                    if close == b'}' {
                        self.string()?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                    }
                    self.value(depth + 1)?;
                    self.ws();
                    if self.peek()? == b',' {
                        self.i += 1;
                    }
                }
            }
            _ => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                {
                    self.i += 1;
                }
                (self.i > start && self.peek().is_some()).then_some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let kind = |s: &str| Message::parse(s.as_bytes()).map(|m| m.kind);
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#),
            Ok(Kind::Request)
        );
        assert_eq!(
            kind(r#"{"method":"notifications/initialized"}"#),
            Ok(Kind::Notification)
        );
        assert_eq!(kind(r#"{"id":1,"result":{}}"#), Ok(Kind::Response));
        assert_eq!(
            kind(r#"{"id":null,"error":{"code":1}}"#),
            Ok(Kind::Response)
        );
        assert_eq!(kind(r#"[{"id":1,"method":"ping"}]"#), Ok(Kind::Batch));
        assert_eq!(kind(r#"{"id":1}"#), Err(NotAMessage::Shape));
        assert_eq!(kind(r#"{"method":7}"#), Err(NotAMessage::Shape));
        assert_eq!(kind("{not json"), Err(NotAMessage::Json));
        assert_eq!(kind("3"), Err(NotAMessage::Shape));
    }

    #[test]
    fn ids_compare_by_value() {
        let key = |s: &str| Message::parse(s.as_bytes()).unwrap().id_key();
        assert_eq!(
            key(r#"{"id":"1","method":"x"}"#),
            key(r#"{"id":"\u0031","method":"x"}"#)
        );
        assert_ne!(
            key(r#"{"id":"1","method":"x"}"#),
            key(r#"{"id":1,"method":"x"}"#)
        );
        assert_eq!(key(r#"{"id":null,"result":1}"#), None);
    }

    #[test]
    fn the_protocol_version_of_a_stateless_request() {
        let m = Message::parse(
            br#"{"id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        )
        .unwrap();
        assert_eq!(m.protocol_version().as_deref(), Some("2026-07-28"));
        let old = Message::parse(br#"{"id":1,"method":"tools/list","params":{}}"#).unwrap();
        assert_eq!(old.protocol_version(), None);
        let odd = Message::parse(br#"{"id":1,"method":"x","params":[1,2]}"#).unwrap();
        assert!(odd.protocol_version().is_none() && odd.param("name").is_none());
        // What could not be a revision (found by fuzzing: control bytes would have gone into
        // the MCP-Protocol-Version header).
        for bad in [r"2026-\u007f07-28", r"2026-07-28\r\nX: y", "2026 07 28", ""] {
            let text = format!(
                r#"{{"id":1,"method":"x","params":{{"_meta":{{"io.modelcontextprotocol/protocolVersion":"{bad}"}}}}}}"#
            );
            let m = Message::parse(text.as_bytes()).unwrap();
            assert_eq!(m.protocol_version(), None, "{bad:?}");
        }
    }

    #[test]
    fn ids_found_at_the_start_of_a_cut_message() {
        let id = |s: &str| id_from_prefix(s.as_bytes());
        assert_eq!(id(r#" { "id" : "r-1" , "method": "x"#), Some("r-1".into()));
        assert_eq!(
            id(r#"{"method":"tools/call","params":{"a":[1,{"b":"}"}]},"id":9,"x"#),
            Some(9.into())
        );
        // Cut inside the id's value, or before it: unknown.
        assert_eq!(id(r#"{"method":"x","id":12"#), None);
        assert_eq!(id(r#"{"method":"x","params":{"t":"aaaa"#), None);
        // Only strings and numbers are ids.
        assert_eq!(id(r#"{"id":{"a":1},"x""#), None);
        assert_eq!(id(r#"[{"id":1}"#), None);
    }

    #[test]
    fn line_breaks_become_spaces() {
        let mut text = b"{\"a\":\r\n [1,\n2]}".to_vec();
        to_one_line(&mut text);
        assert_eq!(text, b"{\"a\":   [1, 2]}");
    }
}
