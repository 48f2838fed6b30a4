//! A minimal MCP client over Streamable HTTP, logged in with `mcp-oauth-client`.
//!
//! It sends `initialize`, `notifications/initialized`, `tools/list` and `tools/call` (the first
//! tool, with example values for its required arguments), reading JSON or `text/event-stream`
//! answers, with the `Mcp-Session-Id` and `MCP-Protocol-Version` headers (the version the server
//! agreed to in its `initialize` result). Every request goes through `Session::send`, so a 401
//! starts the login and a 403 `insufficient_scope` a step-up, and the request is sent again.
//! From protocol revision 2026-07-28 on there is no `initialize`: every request carries its
//! protocol version and capabilities in `_meta`.
//!
//! ```sh
//! cargo run --example mcp_client -- https://mcp.example.com/mcp
//! ```
//!
//! It is also the client the MCP conformance suite drives (`tests/conformance/run.sh`): the
//! suite appends the server URL, may pass credentials (and for the grants without a browser
//! what they need) in `MCP_CONFORMANCE_CONTEXT`, and names the protocol revision in
//! `MCP_CONFORMANCE_PROTOCOL_VERSION`. With `MCP_OAUTH_HEADLESS=1` (and the `test-server`
//! feature) the browser is replaced by a redirect follower, for servers that approve at once.

use std::process::ExitCode;

use serde_json::{Value, json};

use mcp_oauth_client::{Error, Session};

/// The protocol revision spoken unless the environment names another.
const DEFAULT_PROTOCOL_VERSION: &str = "2025-11-25";
/// The first revision without `initialize` (stateless requests with `_meta`).
const STATELESS_FROM: &str = "2026-07-28";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp_client: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .next_back()
        .filter(|a| a.contains("://"))
        .ok_or("usage: mcp_client URL")?;
    let version = std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION")
        .unwrap_or_else(|_| DEFAULT_PROTOCOL_VERSION.into());
    let session = session(&url)?;
    let mut client = Client {
        session: &session,
        version,
        session_id: None,
        next_id: 1,
    };
    if !client.stateless() {
        let init = client.request(
            "initialize",
            json!({
                "protocolVersion": client.version,
                "capabilities": {},
                "clientInfo": client_info(),
            }),
        )?;
        eprintln!("initialized: {}", init["serverInfo"]["name"]);
        // Later requests carry the version the server agreed to, which may be older than the
        // one asked for (servers answer 400 to a version they do not speak).
        if let Some(agreed) = init["protocolVersion"].as_str()
            && !agreed.is_empty()
            && agreed.bytes().all(|b| b.is_ascii_graphic())
        {
            client.version = agreed.to_owned();
        }
        client.notify("notifications/initialized")?;
    }
    let tools = client.request("tools/list", json!({}))?;
    let tools = tools["tools"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    eprintln!("tools: {names:?}");
    if let Some(tool) = tools.first() {
        let name = tool["name"].as_str().unwrap_or_default();
        let arguments = example_arguments(&tool["inputSchema"]);
        let result = client.request("tools/call", json!({"name": name, "arguments": arguments}))?;
        eprintln!("{name}: {}", result["content"]);
    }
    Ok(())
}

/// Example values for a tool's required arguments, by their JSON Schema type.
fn example_arguments(schema: &Value) -> Value {
    let mut arguments = serde_json::Map::new();
    for name in schema["required"].as_array().into_iter().flatten() {
        let Some(name) = name.as_str() else { continue };
        let value = match schema["properties"][name]["type"].as_str() {
            Some("string") => json!("hello"),
            Some("number" | "integer") => json!(0),
            Some("boolean") => json!(false),
            Some("array") => json!([]),
            Some("object") => json!({}),
            _ => Value::Null,
        };
        arguments.insert(name.to_owned(), value);
    }
    Value::Object(arguments)
}

fn client_info() -> Value {
    json!({"name": "mcp-oauth-client example", "version": env!("CARGO_PKG_VERSION")})
}

/// The session, with pre-registered credentials and a client metadata document URL when the
/// environment provides them, and the grant the suite's context calls for.
fn session(url: &str) -> Result<Session, Error> {
    let mut builder = Session::builder(url).client_name("mcp-oauth-client example");
    if let Ok(context) = std::env::var("MCP_CONFORMANCE_CONTEXT")
        && let Ok(context) = serde_json::from_str::<Value>(&context)
    {
        builder = with_context(builder, &context)?;
    }
    if let Ok(cimd) = std::env::var("MCP_CLIENT_METADATA_URL") {
        builder = builder.client_metadata_url(cimd);
    }
    #[cfg(feature = "test-server")]
    if std::env::var_os("MCP_OAUTH_HEADLESS").is_some() {
        let browser = mcp_oauth_client::testing::HeadlessBrowser::new();
        builder = builder.authorize_hook(browser.hook());
    }
    builder.build()
}

/// The conformance suite's context (`MCP_CONFORMANCE_CONTEXT`): the client's credentials, and
/// what the grants without a browser need.
/// - `private_key_pem`: client credentials with `private_key_jwt`;
/// - `idp_id_token` and `idp_token_endpoint`: enterprise-managed authorization (the ID token
///   exchanged at the identity provider, the ID-JAG redeemed with the client's secret);
/// - `valid_jwt`: the JWT bearer grant with that workload identity token;
/// - `client_id` with `client_secret` alone: a pre-registered client for the browser login,
///   or client credentials. The two contexts have the same shape, so the scenario name tells
///   them apart (`auth/client-credentials-*`).
fn with_context(
    mut builder: mcp_oauth_client::SessionBuilder,
    context: &Value,
) -> Result<mcp_oauth_client::SessionBuilder, Error> {
    use mcp_oauth_client::registration::ClientRegistration;
    use mcp_oauth_client::{Assertion, AuthMethod, IdentityAssertion, Secret, SigningKey, Step};
    let text = |key: &str| context[key].as_str();
    if let Some(id) = text("client_id") {
        builder = builder.client_id(id);
    }
    if let Some(secret) = text("client_secret") {
        builder = builder.client_secret(secret);
    }
    let name = text("name").unwrap_or_default();
    if let Some(pem) = text("private_key_pem") {
        builder = builder
            .client_key(SigningKey::from_pem(pem, Step::Configure)?)
            .client_credentials();
    } else if let (Some(id_token), Some(endpoint)) =
        (text("idp_id_token"), text("idp_token_endpoint"))
    {
        let mut assertion =
            IdentityAssertion::new(endpoint, Assertion::Token(Secret::new(id_token)));
        if let Some(idp_client) = text("idp_client_id") {
            assertion = assertion.with_idp_client(ClientRegistration::configured(
                text("idp_issuer").unwrap_or_default(),
                idp_client,
                None,
                AuthMethod::None,
            ));
        }
        builder = builder.identity_assertion(assertion);
    } else if let Some(jwt) = text("valid_jwt") {
        builder = builder.jwt_bearer(Assertion::Token(Secret::new(jwt)));
    } else if name.starts_with("auth/client-credentials") {
        builder = builder.client_credentials();
    }
    Ok(builder)
}

struct Client<'a> {
    session: &'a Session,
    version: String,
    session_id: Option<String>,
    next_id: u64,
}

impl Client<'_> {
    fn stateless(&self) -> bool {
        self.version.as_str() >= STATELESS_FROM
    }

    /// Adds the per-request `_meta` of stateless revisions.
    fn params(&self, mut params: Value) -> Value {
        if self.stateless() {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": self.version,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": client_info(),
            });
        }
        params
    }

    /// Sends a JSON-RPC request and returns its `result`.
    fn request(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<Value, Box<dyn std::error::Error>> {
        let id = self.next_id;
        self.next_id += 1;
        let body =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": self.params(params)});
        let mut response = self.post(&body)?;
        if let Some(sid) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            self.session_id = Some(sid.to_owned());
        }
        let status = response.status().as_u16();
        let sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        let text = response
            .body_mut()
            .with_config()
            .limit(10 << 20)
            .read_to_string()?;
        let message = if sse {
            sse_response(&text, id)
        } else {
            serde_json::from_str(&text).ok()
        };
        let message =
            message.ok_or_else(|| format!("{method}: HTTP {status}, no JSON-RPC response"))?;
        if let Some(error) = message.get("error") {
            return Err(format!("{method}: HTTP {status}: {error}").into());
        }
        Ok(message["result"].clone())
    }

    /// Sends a JSON-RPC notification (answered 202, no body).
    fn notify(&mut self, method: &str) -> Result<(), Box<dyn std::error::Error>> {
        let body = json!({"jsonrpc": "2.0", "method": method});
        let status = self.post(&body)?.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(format!("{method}: HTTP {status}").into());
        }
        Ok(())
    }

    fn post(&self, body: &Value) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let text = body.to_string();
        self.session.send(|agent| {
            let mut req = agent
                .post(self.session.server_url().as_str())
                .header("accept", "application/json, text/event-stream")
                .content_type("application/json");
            if self.stateless() || self.session_id.is_some() {
                req = req.header("mcp-protocol-version", &self.version);
            }
            if let Some(sid) = &self.session_id {
                req = req.header("mcp-session-id", sid);
            }
            req.send(&text)
        })
    }
}

/// The JSON-RPC response with `id` among the events of a `text/event-stream` body.
fn sse_response(text: &str, id: u64) -> Option<Value> {
    text.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            serde_json::from_str::<Value>(&data.join("\n")).ok()
        })
        .find(|m| m["id"] == id)
}
