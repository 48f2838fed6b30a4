//! Fuzz targets for `mcp-oauth-client`: one function per parser the client runs on untrusted
//! input, plus two round trips, each a few lines over the crate's public parse functions.
//!
//! Every target takes the raw input bytes, must not panic on any of them, and asserts what the
//! parser promises (a refusal is typed and names its step, error text has no control
//! characters, secrets stay out of `Debug`). Targets that need context besides the bytes (a
//! server URL, an issuer, a clock, a status) read it from the first line of the input and
//! parse the rest, so the fuzzer explores both.
//!
//! `fuzz_targets/*.rs` are one macro call each: under `cargo +nightly fuzz` (which sets
//! `--cfg fuzzing`) a libFuzzer entry point; on stable a binary that replays `corpus/<target>`
//! or the files it is given. `tests/replay.rs` replays every seed of every target on stable.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mcp_oauth_client::{
    AuthMethod, Error, ErrorKind, Scopes, Secret, Step, StoredTokens,
    authorize::AuthorizationRequest, authorize::build_authorization_url,
    callback::CallbackExpectation, callback::CallbackOutcome, callback::CallbackParseError,
    callback::MAX_CALLBACK_REQUEST, callback::parse_callback_request, callback::validate_callback,
    client_auth::choose_auth_method, discovery::auth_server_metadata_urls,
    discovery::canonical_resource, discovery::parse_auth_server_metadata,
    discovery::parse_resource_metadata, discovery::resource_matches,
    discovery::resource_metadata_urls, internals::FORMAT_VERSION, internals::parse_oauth_error,
    internals::parse_refresh_mark, internals::parse_stored_client, internals::require_secure,
    registration::RegistrationRequest, registration::build_registration_request,
    registration::parse_registration_response, storage::parse_stored_tokens, token::MAX_EXPIRES_IN,
    token::parse_token_response, www_authenticate::MAX_HEADER_LEN,
    www_authenticate::bearer_challenge, www_authenticate::parse_www_authenticate,
    www_authenticate::token_challenge,
};
use mcp_oauth_client::{
    SigningKey, device::parse_device_authorization_response, dpop,
    grant::parse_token_exchange_response, jwt, storage::RefreshMark,
};
use serde_json::json;
use url::Url;

#[cfg(fuzzing)]
#[doc(hidden)]
pub use libfuzzer_sys;

/// Defines the entry point of the fuzz target `$name` (a function of this crate): libFuzzer's
/// under `cfg(fuzzing)`, else a `main` that replays seeds.
#[macro_export]
macro_rules! fuzz_target {
    ($name:ident) => {
        #[cfg(fuzzing)]
        $crate::libfuzzer_sys::fuzz_target!(|data: &[u8]| $crate::$name(data));

        #[cfg(not(fuzzing))]
        fn main() -> std::process::ExitCode {
            $crate::replay_main(stringify!($name), $crate::$name)
        }
    };
}

/// A fuzz target: takes any bytes, panics only on a broken promise.
pub type Target = fn(&[u8]);

/// Every target by name, the name being its `fuzz_targets/` file and `corpus/` directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("www_authenticate", www_authenticate),
    ("resource_metadata", resource_metadata),
    ("auth_server_metadata", auth_server_metadata),
    ("registration_response", registration_response),
    ("token_response", token_response),
    ("error_response", error_response),
    ("callback_request", callback_request),
    ("stored_tokens", stored_tokens),
    ("stored_client", stored_client),
    ("authorization_callback", authorization_callback),
    ("token_file", token_file),
    ("private_key_pem", private_key_pem),
    ("jws", jws),
    ("token_exchange_response", token_exchange_response),
    ("dpop_nonce", dpop_nonce),
    ("device_authorization", device_authorization),
    ("event_stream", event_stream),
    ("refresh_mark", refresh_mark),
    ("bridge_message", bridge_message),
];

/// The MCP server URL used when the input's first line is not one.
const DEFAULT_SERVER: &str = "https://mcp.example.com/mcp";
/// The clock used when the input's first line is not a number.
const DEFAULT_NOW: u64 = 1_700_000_000;
/// The redirect URI of the round trip and the registration requests.
const REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";
/// The issuer the round trip's callback carries.
const ISSUER: &str = "https://as.example.com";
/// The `state` the callback target expects.
const STATE: &str = "fuzz-state-4c7a";

/// `WWW-Authenticate` header values (RFC 9110 §11.6.1, RFC 6750 §3, RFC 9728 §5.1).
pub fn www_authenticate(data: &[u8]) {
    let header = String::from_utf8_lossy(data);
    let challenges = parse_www_authenticate(&header);
    if header.len() > MAX_HEADER_LEN {
        assert!(challenges.is_empty());
    }
    for c in &challenges {
        assert!(!c.scheme.is_empty());
        for (name, _) in &c.params {
            assert!(!name.is_empty() && *name == name.to_ascii_lowercase());
        }
        let _ = (c.resource_metadata(), c.scope(), c.error());
    }
    let first = challenges.iter().find(|c| c.is_bearer());
    assert_eq!(bearer_challenge(&header).as_ref(), first);
    let first_token = challenges.iter().find(|c| c.is_token_scheme());
    assert_eq!(token_challenge(&header).as_ref(), first_token);
    let _ = dpop::is_nonce_challenge(&challenges);
}

/// Private keys in PEM (RFC 7468: PKCS#8, or PKCS#1 RSA), as the builder and the CLI read a
/// client's key file. A key that parses signs, and its signature verifies.
pub fn private_key_pem(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match SigningKey::from_pem(&text, Step::Configure) {
        Ok(key) => {
            let jws = key
                .sign(json!({"typ": "JWT"}), &json!({"n": 1}), Step::Configure)
                .expect("a key that parsed signs");
            assert!(jwt::verify(&jws, &key.public_jwk()).is_some());
            assert!(!format!("{key:?}").contains("PRIVATE"));
        }
        Err(e) => {
            check_error(&e, Step::Configure);
            assert_eq!(e.kind(), ErrorKind::Config);
        }
    }
}

/// Compact JWS (RFC 7515 §7.1), decoded without verifying and verified with the key its
/// header carries, as a DPoP proof is checked.
pub fn jws(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some((header, claims, _, input)) = jwt::decode_unverified(&text) {
        assert!(header.is_object() && claims.is_object());
        assert!(text.starts_with(&input));
        if let Some((h, c)) = jwt::verify(&text, &header["jwk"]) {
            assert_eq!((h, c), (header.clone(), claims));
        }
        let _ = jwt::jwk_thumbprint(&header["jwk"]);
    }
}

/// Token exchange responses (RFC 8693 §2.2.1) from an enterprise identity provider.
pub fn token_exchange_response(data: &[u8]) {
    match parse_token_exchange_response(data) {
        Ok(issued) => {
            assert!(!issued.token.secret().is_empty());
            assert!(!issued.issued_token_type.chars().any(char::is_control));
            assert_redacted(Some(&issued.token));
        }
        Err(e) => {
            check_error(&e, Step::TokenExchange);
            assert_eq!(e.kind(), ErrorKind::InvalidResponse);
        }
    }
}

/// Server-sent event streams (the bridge reads the MCP server's): the input's lines fed one by
/// one. Every event's data stays within the limit, ids never hold NUL.
pub fn event_stream(data: &[u8]) {
    use mcp_oauth_client::bridge::sse::{EventReader, KEPT_OF_TOO_LARGE};
    const LIMIT: usize = 256;
    let mut reader = EventReader::new(data, LIMIT);
    while let Ok(Some(event)) = reader.next_event() {
        let kept = if event.cut.is_some() {
            KEPT_OF_TOO_LARGE
        } else {
            LIMIT
        };
        assert!(reader.data().len() <= kept);
        assert!(!event.event.contains('\n'));
    }
    assert!(reader.last_event_id().is_none_or(|id| !id.contains('\0')));
    let _ = reader.retry();
}

/// Device authorization responses (RFC 8628 §3.2): what the person is shown must be a web
/// address and printable.
pub fn device_authorization(data: &[u8]) {
    match parse_device_authorization_response(data) {
        Ok(d) => {
            assert!(!d.user_code.chars().any(char::is_control));
            for url in std::iter::once(&d.verification_uri).chain(&d.verification_uri_complete) {
                assert!(require_secure(url, Step::Authorization).is_ok());
                assert!(!url.as_str().chars().any(char::is_control));
            }
            assert!((1..=mcp_oauth_client::device::MAX_INTERVAL).contains(&d.interval));
            assert!((1..=mcp_oauth_client::device::MAX_EXPIRES_IN).contains(&d.expires_in));
            // (A code of a few letters may occur in any text.)
            let code = d.device_code.secret();
            assert!(code.len() < 12 || !format!("{d:?}").contains(code));
        }
        Err(e) => check_refusal(&e, Step::Authorization),
    }
}

/// A `DPoP-Nonce` header value (RFC 9449 §8, §9); the first line is the URL that sent it. The
/// next proof to that origin carries the nonce when it was taken, and is well formed.
pub fn dpop_nonce(data: &[u8]) {
    const KEY: &str = include_str!("../../tests/data/client-es256.pem");
    let (line, nonce) = split_line(data);
    let url = Url::parse(&line).unwrap_or_else(|_| Url::parse(DEFAULT_SERVER).unwrap());
    let nonce = String::from_utf8_lossy(nonce);
    let key = SigningKey::from_pem(KEY, Step::Configure).expect("the test key parses");
    let jwk = key.public_jwk();
    let proofs = dpop::Dpop::new(key);
    let taken = proofs.remember_nonce(&url, &nonce);
    let proof = proofs
        .proof("POST", &url, Some("tok"), Step::Request)
        .expect("a proof is signed");
    let (header, claims) = jwt::verify(&proof, &jwk).expect("its own proofs verify");
    assert_eq!(header["typ"], "dpop+jwt");
    if taken {
        assert_eq!(claims["nonce"], nonce.trim());
    }
    if let Some(n) = claims["nonce"].as_str() {
        assert!(!n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic()));
    }
    let htu = claims["htu"].as_str().expect("htu is a string");
    assert_eq!(htu, dpop::htu(&url));
    assert!(!htu.contains('?') && !htu.contains('#'));
}

/// Protected resource metadata (RFC 9728 §3.2); the first line is the MCP server URL.
pub fn resource_metadata(data: &[u8]) {
    let (line, body) = split_line(data);
    let server = Url::parse(&line).unwrap_or_else(|_| Url::parse(DEFAULT_SERVER).unwrap());
    let _ = (resource_metadata_urls(&server), canonical_resource(&server));
    match parse_resource_metadata(body, &server) {
        Ok(md) => {
            assert!(resource_matches(&md.resource, &server));
            assert!(!md.authorization_servers.is_empty());
        }
        Err(e) => check_refusal(&e, Step::ResourceDiscovery),
    }
}

/// Authorization server metadata (RFC 8414 §3.2); the first line is the issuer.
pub fn auth_server_metadata(data: &[u8]) {
    let (issuer, body) = split_line(data);
    let _ = auth_server_metadata_urls(&issuer);
    let md = match parse_auth_server_metadata(body, &issuer) {
        Ok(md) => md,
        Err(e) => return check_error(&e, Step::AuthServerDiscovery),
    };
    assert_eq!(md.issuer, issuer);
    let optional = [&md.registration_endpoint, &md.revocation_endpoint];
    // An empty authorization endpoint: a server without browser grants (RFC 8414 §2).
    let browser = Some(&md.authorization_endpoint).filter(|e| !e.is_empty());
    let endpoints = browser
        .into_iter()
        .chain([&md.token_endpoint])
        .chain(optional.into_iter().flatten());
    for endpoint in endpoints {
        let url = Url::parse(endpoint).expect("accepted endpoints parse");
        assert!(require_secure(&url, Step::AuthServerDiscovery).is_ok());
    }
    let _ = (md.require_s256(), choose_auth_method(&md, true));
    let scope = md.scopes_supported.as_deref().map(scopes_of);
    let request = AuthorizationRequest::new(
        &md.authorization_endpoint,
        "client",
        REDIRECT_URI,
        STATE,
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    )
    .scope(scope.as_ref())
    .resource(Some(DEFAULT_SERVER));
    let _ = build_authorization_url(&request);
}

/// Dynamic client registration responses (RFC 7591 §3.2.1); the first line is the issuer.
pub fn registration_response(data: &[u8]) {
    let (issuer, body) = split_line(data);
    for auth_method in [AuthMethod::None, AuthMethod::ClientSecretBasic] {
        let request =
            RegistrationRequest::new("fuzz", auth_method).redirect_uri(Some(REDIRECT_URI));
        let _ = build_registration_request(&request);
        match parse_registration_response(body, &issuer, &request) {
            Ok(client) => {
                assert!(!client.client_id.is_empty());
                assert_eq!(client.issuer, issuer);
                assert!(client.auth_method == AuthMethod::None || client.client_secret.is_some());
                assert_redacted(client.client_secret.as_ref());
                let _ = client.secret_expired(DEFAULT_NOW);
            }
            Err(e) => check_error(&e, Step::Registration),
        }
    }
}

/// Token responses (RFC 6749 §5.1); the first line is the clock (seconds since the epoch).
pub fn token_response(data: &[u8]) {
    let (clock, body) = split_line(data);
    let now = clock.trim().parse::<u64>().unwrap_or(DEFAULT_NOW);
    match parse_token_response(body, now, Step::CodeExchange) {
        Ok(tokens) => {
            assert!(!tokens.access_token.secret().is_empty());
            assert!(matches!(tokens.token_type.as_str(), "Bearer" | "DPoP"));
            assert_eq!(tokens.is_dpop(), tokens.token_type == "DPoP");
            if let Some(at) = tokens.expires_at {
                assert!(at >= now && at <= now.saturating_add(MAX_EXPIRES_IN));
            }
            let _ = (
                tokens.is_fresh(now, 60),
                tokens.is_fresh(u64::MAX, u64::MAX),
            );
            assert_redacted(Some(&tokens.access_token));
            assert_redacted(tokens.refresh_token.as_ref());
        }
        Err(e) => {
            check_error(&e, Step::CodeExchange);
            assert_eq!(e.kind(), ErrorKind::InvalidResponse);
        }
    }
}

/// Error responses (RFC 6749 §5.2, RFC 7591 §3.2.2); the first line is the HTTP status.
pub fn error_response(data: &[u8]) {
    let (status, body) = split_line(data);
    let status = status.trim().parse::<u16>().unwrap_or(400);
    let e = parse_oauth_error(status, body, Step::Refresh);
    check_error(&e, Step::Refresh);
    match e.kind() {
        ErrorKind::Refused => assert!((300..400).contains(&status)),
        ErrorKind::OAuth => {
            let code = e.oauth_error().expect("an OAuth error has a code");
            assert!(code.chars().count() <= 64);
            assert!(!code.chars().any(char::is_control));
        }
        ErrorKind::Status => assert!(e.oauth_error().is_none()),
        other => panic!("unexpected kind {other:?}"),
    }
}

/// Raw bytes as read from the callback socket, then the authorization response checks.
pub fn callback_request(data: &[u8]) {
    let request = match parse_callback_request(data) {
        Ok(r) => r,
        Err(CallbackParseError::TooLarge) => return assert!(data.len() > MAX_CALLBACK_REQUEST),
        Err(_) => return,
    };
    assert!(!request.method.is_empty());
    assert!(request.path.starts_with('/') && !request.path.contains('?'));
    for iss_required in [false, true] {
        let expect = CallbackExpectation::new(STATE, ISSUER, iss_required);
        match validate_callback(&request.params, &expect) {
            CallbackOutcome::Code(code) => {
                assert!(!code.secret().is_empty());
                assert!(request.params.contains(&("state".into(), STATE.into())));
            }
            CallbackOutcome::Failed(e) => {
                check_error(&e, Step::Callback);
                assert!(!format!("{e:#} {e:?}").contains(STATE));
            }
            CallbackOutcome::Ignored(_) => {}
            other => panic!("an outcome this target does not know: {other:?}"),
        }
    }
}

/// Stored token files: parse, write back as the cache does, parse again, same value.
pub fn stored_tokens(data: &[u8]) {
    let stored = match parse_stored_tokens(data) {
        Ok(t) => t,
        Err(e) => return check_storage_error(&e),
    };
    assert_eq!(stored.version, FORMAT_VERSION);
    let again = parse_stored_tokens(&cache_bytes(&stored)).expect("a written file reads back");
    assert_eq!(json(&stored), json(&again));
    let _ = stored.tokens.is_fresh(DEFAULT_NOW, 60);
}

/// Refresh mark files: parse, write back as the cache does, parse again, same value; a mark
/// matches no token but the one whose digest it holds.
pub fn refresh_mark(data: &[u8]) {
    let mark = match parse_refresh_mark(data) {
        Ok(m) => m,
        Err(e) => return check_storage_error(&e),
    };
    let again = parse_refresh_mark(&cache_bytes(&mark)).expect("a written file reads back");
    assert_eq!(mark, again);
    // A mark is of the token it was made from, and a parsed one of a token only when it is
    // that token's mark.
    let token = Secret::new(String::from_utf8_lossy(data).into_owned());
    let own = RefreshMark::new(&token, mark.started);
    assert!(own.presented(&token));
    assert_eq!(mark.presented(&token), mark == own);
}

/// Stored client files: parse, write back as the cache does, parse again, same value.
pub fn stored_client(data: &[u8]) {
    let client = match parse_stored_client(data) {
        Ok(c) => c,
        Err(e) => return check_storage_error(&e),
    };
    let file = serde_json::json!({ "version": FORMAT_VERSION, "client": client });
    let again = parse_stored_client(&cache_bytes(&file)).expect("a written file reads back");
    assert_eq!(json(&client), json(&again));
    assert_redacted(client.client_secret.as_ref());
}

/// Round trip: authorization URL → the server's redirect with the `state` it received → raw
/// callback request → parse → checks → the same code. Newline-separated fields: endpoint,
/// client id, state, scope, resource, code, and an extra parameter's name and value.
pub fn authorization_callback(data: &[u8]) {
    let mut fields = data
        .split(|&b| b == b'\n')
        .map(|f| String::from_utf8_lossy(f).into_owned());
    let mut next = |default: &str| fields.next().unwrap_or_else(|| default.to_owned());
    let endpoint = next("https://as.example.com/authorize");
    let client_id = next("client");
    let state = next(STATE);
    let scope = Scopes::parse(&next(""));
    let resource = next(DEFAULT_SERVER);
    let code = next("code");
    let extra = [(next("access_type"), next("offline"))];
    let request = AuthorizationRequest::new(
        &endpoint,
        &client_id,
        REDIRECT_URI,
        &state,
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    )
    .scope(Some(&scope))
    .resource(Some(&resource))
    .extra(&extra);
    let Ok(url) = build_authorization_url(&request) else {
        return;
    };
    // Each parameter of the request is in the URL exactly once, with the value given.
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let once = |name: &str| {
        let values: Vec<&String> = pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(values.len(), 1, "{name} in {url}");
        values[0].clone()
    };
    assert_eq!(once("client_id"), client_id);
    assert_eq!(once("redirect_uri"), REDIRECT_URI);
    assert_eq!(once("code_challenge_method"), "S256");
    assert_eq!(once("resource"), resource);
    let (name, value) = &extra[0];
    if name != "prompt" {
        assert_eq!(&once(name), value, "the extra parameter, once");
    }
    let sent_state = once("state");
    assert_eq!(sent_state, state);

    let mut redirect = Url::parse(REDIRECT_URI).unwrap();
    redirect
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &sent_state)
        .append_pair("iss", ISSUER);
    let raw = format!(
        "GET {}?{} HTTP/1.1\r\nHost: 127.0.0.1:8765\r\n\r\n",
        redirect.path(),
        redirect.query().unwrap_or_default()
    );
    let request = match parse_callback_request(raw.as_bytes()) {
        Ok(r) => r,
        Err(CallbackParseError::TooLarge) => return assert!(raw.len() > MAX_CALLBACK_REQUEST),
        Err(e) => panic!("the callback of our own URL does not parse: {e:?}"),
    };
    let expect = CallbackExpectation::new(&state, ISSUER, true);
    match validate_callback(&request.params, &expect) {
        CallbackOutcome::Code(c) => assert_eq!(c.secret(), code),
        CallbackOutcome::Failed(e) if code.is_empty() => check_error(&e, Step::Callback),
        other => panic!("the round trip lost the code: {other:?}"),
    }
}

/// Round trip: token response → token set → cache file bytes → token set, secrets intact and
/// never in `Debug`. Newline-separated fields: access token, refresh token, scope,
/// `expires_in`, clock.
pub fn token_file(data: &[u8]) {
    const MARK: char = '~'; // in every secret, in nothing else (visible ASCII, as tokens are)
    let mut fields = data
        .split(|&b| b == b'\n')
        .map(|f| String::from_utf8_lossy(f).replace(MARK, ""));
    let access = format!("{MARK}{}", fields.next().unwrap_or_default());
    let mut response = serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
    });
    if let Some(refresh) = fields.next() {
        response["refresh_token"] = format!("{MARK}{refresh}").into();
    }
    if let Some(scope) = fields.next() {
        response["scope"] = scope.into();
    }
    if let Some(expires_in) = fields.next().and_then(|t| t.trim().parse::<i64>().ok()) {
        response["expires_in"] = expires_in.into();
    }
    let now = fields.next().and_then(|t| t.trim().parse::<u64>().ok());
    let parsed = parse_token_response(
        response.to_string().as_bytes(),
        now.unwrap_or(DEFAULT_NOW),
        Step::CodeExchange,
    );
    if !access.bytes().all(|b| b.is_ascii_graphic()) {
        // No bearer token can be that: refused, without echoing it.
        let e = parsed.expect_err("an access token with invisible characters is refused");
        assert_eq!(e.kind(), ErrorKind::InvalidResponse);
        assert!(!format!("{e:#} {e:?}").contains(MARK));
        return;
    }
    let tokens = parsed.expect("a well-formed Bearer response parses");
    // StoredTokens is built the way a store other than the file one would: from its JSON.
    let stored: StoredTokens = serde_json::from_value(serde_json::json!({
        "version": FORMAT_VERSION,
        "server_url": DEFAULT_SERVER,
        "issuer": ISSUER,
        "token_endpoint": format!("{ISSUER}/token"),
        "resource": DEFAULT_SERVER,
        "requested_scope": tokens.scope,
        "client_id": "client",
        "auth_method": AuthMethod::None,
        "tokens": tokens,
    }))
    .expect("a stored token set from parts");
    let back = parse_stored_tokens(&cache_bytes(&stored)).expect("a written file reads back");
    let (a, b) = (&stored.tokens, &back.tokens);
    assert_eq!(a.access_token.secret(), b.access_token.secret());
    assert_eq!(
        a.refresh_token.as_ref().map(Secret::secret),
        b.refresh_token.as_ref().map(Secret::secret)
    );
    assert_eq!(json(&stored), json(&back));
    assert!(!format!("{back:?}").contains(MARK));
}

/// The first line of the input (lossy UTF-8) and the bytes after it; no newline: an empty
/// line and all of the input.
fn split_line(data: &[u8]) -> (String, &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (
            String::from_utf8_lossy(&data[..i]).into_owned(),
            &data[i + 1..],
        ),
        None => (String::new(), data),
    }
}

/// What every error from hostile input must be: in its step, and printable on one line
/// (server text cannot forge log lines).
fn check_error(e: &Error, step: Step) {
    assert_eq!(e.step(), step, "{e}");
    let text = e.to_string();
    assert!(
        !text.chars().any(char::is_control),
        "control character in {text:?}"
    );
}

/// A server's answer refused: invalid, or against a rule.
fn check_refusal(e: &Error, step: Step) {
    check_error(e, step);
    assert!(matches!(
        e.kind(),
        ErrorKind::InvalidResponse | ErrorKind::Refused
    ));
}

fn check_storage_error(e: &Error) {
    check_error(e, Step::TokenCheck);
    assert_eq!(e.kind(), ErrorKind::Storage);
}

fn assert_redacted(secret: Option<&Secret>) {
    if let Some(s) = secret {
        assert_eq!(format!("{s:?}"), "[redacted]");
    }
}

fn scopes_of(list: &[String]) -> Scopes {
    Scopes::parse(&list.join(" "))
}

/// The bytes the cache writes for `value`.
fn cache_bytes(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("cache values serialise")
}

fn json(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).expect("cache values serialise")
}

/// The seed directory of a target, `corpus/<name>`.
pub fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name)
}

/// `path` if it is a file, else the files directly in it, sorted; none if it does not exist.
pub fn files_under(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// The stable entry point of a target: runs it on every file named on the command line (files
/// or directories; libFuzzer-style `-flags` are skipped), or on its seed directory.
pub fn replay_main(name: &str, target: Target) -> ExitCode {
    let mut paths: Vec<PathBuf> = std::env::args_os()
        .skip(1)
        .filter(|a| !a.to_string_lossy().starts_with('-'))
        .map(PathBuf::from)
        .collect();
    if paths.is_empty() {
        paths.push(corpus_dir(name));
    }
    let mut replayed = 0;
    for file in paths.iter().flat_map(|p| files_under(p)) {
        match std::fs::read(&file) {
            Ok(bytes) => target(&bytes),
            Err(e) => {
                eprintln!("{name}: cannot read {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        }
        replayed += 1;
    }
    eprintln!("{name}: replayed {replayed} inputs without a failure");
    ExitCode::SUCCESS
}

/// One JSON-RPC message as the bridge reads it: its kind and id, the transport headers of
/// revision 2026-07-28 (every value a header can carry), the id read from any prefix of it
/// (never another than the whole message's), and a `tools/list` answer screened (what is
/// left is JSON).
pub fn bridge_message(data: &[u8]) {
    use mcp_oauth_client::bridge::{headers, message};
    if let Ok(m) = message::Message::parse(data) {
        let whole =
            m.id.and_then(|id| serde_json::from_str::<serde_json::Value>(id.get()).ok());
        for (name, value) in headers::routing_headers(&m, &[]) {
            assert!(name.bytes().all(|b| b.is_ascii_graphic()));
            assert!(
                value.bytes().all(|b| (0x20..=0x7e).contains(&b)),
                "{value:?}"
            );
        }
        for cut in [data.len() / 3, data.len() / 2, data.len()] {
            if let Some(id) = message::id_from_prefix(&data[..cut]) {
                assert_eq!(Some(&id), whole.as_ref(), "a prefix named another id");
            }
        }
    }
    let screened = headers::screen_tools(data);
    if let Some(rewritten) = screened.rewritten {
        assert!(serde_json::from_slice::<serde_json::Value>(&rewritten).is_ok());
        assert!(!screened.dropped.is_empty());
    }
}
