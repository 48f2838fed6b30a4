//! [`SessionBuilder`]: a session's options, checked and put together by
//! [`build`](SessionBuilder::build).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::address::AddressRules;
use crate::browser::{AuthorizeHook, BrowserStep};
use crate::callback::CallbackHost;
use crate::client::AuthMethod;
use crate::device::{DeviceHook, DeviceStep};
use crate::error::{Error, ErrorKind, Result, Step};
use crate::grant::{Assertion, Grant, IdentityAssertion};
use crate::jwt::SigningKey;
use crate::registration::ConfiguredClient;
use crate::scope::Scopes;
use crate::secret::Secret;
use crate::storage::{FileTokenStorage, TokenStore};

use super::flow::{self, Config, Inner};
use super::{CriticalSection, Progress, Session, binding, critical, progress, request};

/// The default client name sent on dynamic registration.
pub const DEFAULT_CLIENT_NAME: &str = "mcp-oauth-client";

/// The default time the user has to finish the authorization in the browser.
pub const DEFAULT_CALLBACK_TIMEOUT: Duration = Duration::from_secs(300);

/// Builds a [`Session`]; see [`Session::builder`].
#[must_use]
pub struct SessionBuilder {
    server_url: String,
    scopes: Option<Scopes>,
    client_name: String,
    cache_dir: Option<PathBuf>,
    store: Option<Arc<dyn TokenStore>>,
    client_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    callback_port: Option<u16>,
    callback_host: CallbackHost,
    callback_path: String,
    callback_timeout: Duration,
    authorize_params: Vec<(String, String)>,
    omit_resource: bool,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    client_auth_method: Option<AuthMethod>,
    client_metadata_url: Option<String>,
    authorize_hook: Option<AuthorizeHook>,
    device_hook: Option<DeviceHook>,
    interactive: bool,
    agent: Option<ureq::Agent>,
    private_network: bool,
    ca_file: Option<PathBuf>,
    grant: Grant,
    dpop: binding::Policy,
    client_key: Option<ClientKey>,
    critical: Option<Arc<dyn CriticalSection>>,
    progress: Option<progress::ProgressHook>,
    #[cfg(feature = "test-server")]
    as_if_remote: bool,
}

/// Where the configured client's private key comes from.
enum ClientKey {
    Key(Arc<SigningKey>),
    File(PathBuf),
}

impl SessionBuilder {
    /// Every option at its default; see [`Session::builder`].
    pub(super) fn new(server_url: String) -> SessionBuilder {
        SessionBuilder {
            server_url,
            scopes: None,
            client_name: DEFAULT_CLIENT_NAME.into(),
            cache_dir: None,
            store: None,
            client_metadata: None,
            callback_port: None,
            callback_host: CallbackHost::default(),
            callback_path: crate::callback::CALLBACK_PATH.into(),
            authorize_params: Vec::new(),
            omit_resource: false,
            callback_timeout: DEFAULT_CALLBACK_TIMEOUT,
            client_id: None,
            client_secret: None,
            client_auth_method: None,
            client_metadata_url: None,
            authorize_hook: None,
            device_hook: None,
            interactive: true,
            agent: None,
            private_network: false,
            ca_file: None,
            grant: Grant::default(),
            dpop: binding::Policy::Auto,
            client_key: None,
            critical: None,
            progress: None,
            #[cfg(feature = "test-server")]
            as_if_remote: false,
        }
    }

    /// Scopes to request: a space-separated string or a list. Without them the scopes come
    /// from the server (challenge `scope`, then resource metadata `scopes_supported`).
    pub fn scopes(mut self, scopes: impl Into<Scopes>) -> Self {
        self.scopes = Some(scopes.into());
        self
    }

    /// The client name for dynamic registration (default `mcp-oauth-client`).
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    /// The token cache directory (default: `$MCP_OAUTH_CACHE_DIR`, else
    /// `~/.fastmcp/oauth-mcp-client-cache`).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Keeps tokens and client registrations in `store` instead of files (a keyring, a
    /// database); [`cache_dir`](Self::cache_dir) is then unused. See [`TokenStore`] for what
    /// the session relies on.
    pub fn token_store(mut self, store: impl TokenStore + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Extra client metadata merged into the registration request (RFC 7591 §2), for example
    /// `{"logo_uri": "…"}`. Anything but a JSON object is ignored.
    pub fn client_metadata(mut self, metadata: serde_json::Value) -> Self {
        if let serde_json::Value::Object(map) = metadata {
            self.client_metadata = Some(map);
        }
        self
    }

    /// A fixed callback port (default: a cached client's registered port if free, else any
    /// free port).
    pub fn callback_port(mut self, port: u16) -> Self {
        self.callback_port = Some(port);
        self
    }

    /// The host name in the redirect URI (default `127.0.0.1`).
    pub fn callback_host(mut self, host: CallbackHost) -> Self {
        self.callback_host = host;
        self
    }

    /// The path of the redirect URI (default `/callback`), for a client registered with
    /// exactly one redirect URI such as `http://localhost:3118/oauth/callback` (with
    /// [`callback_port`](Self::callback_port) and [`callback_host`](Self::callback_host)).
    pub fn callback_path(mut self, path: impl Into<String>) -> Self {
        self.callback_path = path.into();
        self
    }

    /// Adds a parameter to the authorization request, for providers that want one of their
    /// own (`access_type=offline` for a refresh token, `prompt=select_account`); repeatable. A
    /// parameter the request sets itself (`state`, `redirect_uri`, `scope`, …) is refused
    /// when the session is built. It goes only in the authorization URL, never in token
    /// requests.
    pub fn authorize_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.authorize_params.push((name.into(), value.into()));
        self
    }

    /// Leaves out the RFC 8707 `resource` parameter from the authorization and token
    /// requests (default: sent, as the MCP specification requires). For authorization
    /// servers that refuse it, such as Microsoft Entra ID (AADSTS9010010); the tokens are
    /// then not bound to the MCP server, and each login logs a warning saying so.
    pub fn omit_resource(mut self, omit: bool) -> Self {
        self.omit_resource = omit;
        self
    }

    /// How long to wait for the user to finish in the browser (default 300 s).
    pub fn callback_timeout(mut self, timeout: Duration) -> Self {
        self.callback_timeout = timeout;
        self
    }

    /// A pre-registered client identifier: no dynamic registration is attempted.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The secret of the pre-registered client.
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(Secret::new(secret));
        self
    }

    /// How the pre-registered client authenticates at the token and revocation endpoints
    /// (default: chosen from the server's metadata, see
    /// [`choose_auth_method`](crate::client_auth::choose_auth_method)). For servers that accept only the
    /// method the client was registered with.
    pub fn client_auth_method(mut self, method: AuthMethod) -> Self {
        self.client_auth_method = Some(method);
        self
    }

    /// The pre-registered client's private key, for `private_key_jwt` client authentication
    /// (RFC 7523 §2.2): each token request carries an assertion signed with it, `aud` the
    /// authorization server's issuer. Sets the method unless
    /// [`client_auth_method`](Self::client_auth_method) says otherwise.
    pub fn client_key(mut self, key: SigningKey) -> Self {
        self.client_key = Some(ClientKey::Key(Arc::new(key)));
        self
    }

    /// As [`client_key`](Self::client_key), read from a PEM file (PKCS#8 `PRIVATE KEY`, an
    /// ES256 or RS256 key; or an RSA `RSA PRIVATE KEY`) when the session is built.
    pub fn client_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_key = Some(ClientKey::File(path.into()));
        self
    }

    /// How the session obtains tokens when it has none to use or refresh (default: the
    /// browser login). The grants without a browser never bind a port or open anything; they
    /// run again when the token expires. See the shortcuts
    /// [`client_credentials`](Self::client_credentials), [`jwt_bearer`](Self::jwt_bearer) and
    /// [`identity_assertion`](Self::identity_assertion).
    pub fn grant(mut self, grant: Grant) -> Self {
        self.grant = grant;
        self
    }

    /// The client credentials grant (RFC 6749 §4.4): the configured client
    /// ([`client_id`](Self::client_id) with [`client_secret`](Self::client_secret) or
    /// [`client_key`](Self::client_key)) obtains tokens for itself. For services and jobs.
    pub fn client_credentials(self) -> Self {
        self.grant(Grant::ClientCredentials)
    }

    /// The JWT bearer grant (RFC 7523 §2.1) with a workload identity token (a Kubernetes
    /// service account token, a CI job's OIDC token): read from its file each time the grant
    /// runs. A refused assertion is not retried.
    pub fn jwt_bearer(self, assertion: Assertion) -> Self {
        self.grant(Grant::JwtBearer(assertion))
    }

    /// Enterprise-managed authorization: the person's ID token is exchanged at the enterprise
    /// identity provider for an ID-JAG (RFC 8693), which the JWT bearer grant redeems at the
    /// MCP server's authorization server with the configured client. The identity provider's
    /// token endpoint is trusted like the MCP server's origin.
    pub fn identity_assertion(self, assertion: IdentityAssertion) -> Self {
        self.grant(Grant::IdentityAssertion(assertion))
    }

    /// Whether to bind tokens to a DPoP key (RFC 9449): `true` wherever the authorization
    /// server advertises `dpop_signing_alg_values_supported` with ES256; `false` never (an MCP
    /// server that takes bound tokens only is then refused with
    /// [`ErrorKind::ProofRequired`]). Bound tokens are sent with the `DPoP` scheme and a fresh
    /// proof per request by the session's [`agent`](Session::agent); the key is stored with
    /// the tokens.
    ///
    /// By default tokens are bound only where the whole deployment takes DPoP: the
    /// authorization server advertises it, and the MCP server does too, in its resource
    /// metadata (`dpop_signing_alg_values_supported` or `dpop_bound_access_tokens_required`,
    /// RFC 9728 §2) or by offering the `DPoP` scheme in its 401. A bound token that the MCP
    /// server refuses while offering `Bearer` alone is replaced by a Bearer token, once, with
    /// a warning in the log.
    pub fn dpop(mut self, enabled: bool) -> Self {
        self.dpop = if enabled {
            binding::Policy::Always
        } else {
            binding::Policy::Never
        };
        self
    }

    /// An HTTPS URL of a client ID metadata document, used as the `client_id` when the
    /// authorization server advertises `client_id_metadata_document_supported`.
    pub fn client_metadata_url(mut self, url: impl Into<String>) -> Self {
        self.client_metadata_url = Some(url.into());
        self
    }

    /// Replaces the system browser: `hook` receives the [`BrowserStep`] (the authorization URL
    /// to show, a one-time launch URL for a browser on this machine, the redirect URI, the
    /// deadline, and a [`Paster`](crate::callback::Paster) for an address copied from a
    /// browser elsewhere) once the callback listener is ready. It must return promptly (drive
    /// a login from another thread). Without a hook the launch URL is opened in the system
    /// browser and nothing is printed.
    pub fn authorize_hook(mut self, hook: impl FnMut(&BrowserStep) + Send + 'static) -> Self {
        self.authorize_hook = Some(Box::new(hook));
        self
    }

    /// Logs in with the device authorization grant (RFC 8628) instead of the browser, for
    /// machines with no browser and nothing to paste into (plain SSH, containers): `hook`
    /// receives the [`DeviceStep`] (the code and where to enter it) and must show it; the
    /// session then polls the token endpoint until the person has approved on another device,
    /// as long as the code lives or the callback timeout, whichever is shorter.
    /// [`cancel_login`](Session::cancel_login) stops the polling. The server must advertise a
    /// `device_authorization_endpoint`.
    pub fn device_login(mut self, hook: impl FnMut(&DeviceStep) + Send + 'static) -> Self {
        self.device_hook = Some(Box::new(hook));
        self.grant(Grant::DeviceCode)
    }

    /// Tells `hook` when a critical section begins and ends: from a token request leaving
    /// (a refresh, a code exchange, a grant, a device login's poll) to its new tokens durably
    /// stored. A process stopped inside one can lose tokens the server has already rotated,
    /// and with them the grant; a front end that handles SIGINT or SIGTERM defers them while
    /// a section is open (the `mcp-oauth` CLI does). See [`CriticalSection`].
    pub fn critical_section(mut self, hook: impl CriticalSection + 'static) -> Self {
        self.critical = Some(Arc::new(hook));
        self
    }

    /// Tells `hook` each step of a login, refresh or grant as it happens ([`Progress`]), for
    /// a front end that shows what is going on; the same steps are logged at `info`. It must
    /// return promptly; it may be called from any thread that uses the session.
    pub fn on_progress(mut self, hook: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(hook));
        self
    }

    /// Whether the session may start a login (default `true`). A non-interactive session
    /// (a daemon, a job) never opens a browser or binds a port: when only a login would help,
    /// it fails at once with [`ErrorKind::LoginRequired`]. Cached tokens and refreshes work
    /// as usual.
    pub fn interactive(mut self, interactive: bool) -> Self {
        self.interactive = interactive;
        self
    }

    /// An agent for the OAuth requests (proxy, TLS or timeout settings, say). By default the
    /// session's own agent carries them, sharing its connections with the MCP requests. Step
    /// functions apply the transport rules per request, so any agent is safe. Its
    /// configuration is kept; its connections go through the session's address rules (see
    /// [`allow_private_network`](Self::allow_private_network)), so a custom resolver or
    /// connector it had is not used.
    pub fn agent(mut self, agent: ureq::Agent) -> Self {
        self.agent = Some(agent);
        self
    }

    /// Trusts the certificates of a PEM file for TLS, in place of the built-in roots (as
    /// curl's `--cacert`): for servers behind a TLS-inspecting proxy or with a private CA.
    /// Read when the session is built. (With the feature `platform-verifier` the operating
    /// system's trust store is used otherwise, which often knows such a CA already.) An agent
    /// of the caller's ([`agent`](Self::agent)) keeps its own TLS settings.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Lets a remote MCP server's metadata name private network addresses (RFC 1918, shared
    /// address space, IPv6 unique local) for its authorization server and endpoints, for
    /// deployments inside a private network. Loopback, link-local and cloud metadata
    /// addresses stay refused. Off by default: a server on the Internet could otherwise have
    /// the client send requests, with codes and tokens, to services on the user's network.
    pub fn allow_private_network(mut self, allow: bool) -> Self {
        self.private_network = allow;
        self
    }

    /// Applies a remote server's address rules to a server on loopback (plain HTTP to the
    /// server's own origin stays allowed). For tests that need a remote server.
    #[cfg(feature = "test-server")]
    #[doc(hidden)]
    pub fn address_rules_as_if_remote(mut self) -> Self {
        self.as_if_remote = true;
        self
    }

    /// Builds the session. Nothing is requested yet.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the server URL is not an absolute http(s) URL or no cache
    /// directory can be found; [`ErrorKind::Refused`] for plain HTTP to a non-loopback host.
    pub fn build(self) -> Result<Session> {
        let step = Step::Configure;
        let server_url = Url::parse(&self.server_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    step,
                    format!(
                        "{:?} is not an absolute http(s) URL",
                        crate::error::shorten(&self.server_url)
                    ),
                )
            })?;
        crate::address::require_secure(&server_url, step)?;
        let (store, file): (Arc<dyn TokenStore>, Option<FileTokenStorage>) = match self.store {
            Some(store) => (store, None),
            None => {
                let dir = match self.cache_dir {
                    Some(d) => d,
                    None => FileTokenStorage::default_dir()?,
                };
                let file = FileTokenStorage::new(dir);
                (Arc::new(file.clone()), Some(file))
            }
        };
        crate::callback::CallbackListener::check_path(&self.callback_path)?;
        if matches!(self.grant, Grant::DeviceCode) && self.device_hook.is_none() {
            return Err(Error::new(
                ErrorKind::Config,
                step,
                "a device login needs a hook that shows the code (SessionBuilder::device_login)",
            ));
        }
        for (name, _) in &self.authorize_params {
            crate::authorize::check_extra_param(name, step)?;
        }
        let key = match self.client_key {
            None => None,
            Some(ClientKey::Key(key)) => Some(key),
            Some(ClientKey::File(path)) => Some(Arc::new(read_key_file(&path)?)),
        };
        let mut rules = AddressRules::new(&server_url, self.private_network);
        if let Grant::IdentityAssertion(ia) = &self.grant {
            let idp = crate::address::parse_endpoint(&ia.idp_token_endpoint, step)?;
            crate::address::require_secure(&idp, step)?;
            rules = rules.trusting(&idp);
        }
        let config = Config {
            scopes: self.scopes,
            client_name: self.client_name,
            client_metadata: self.client_metadata,
            callback_port: self.callback_port,
            callback_host: self.callback_host,
            callback_path: self.callback_path,
            callback_timeout: self.callback_timeout,
            authorize_params: self.authorize_params,
            omit_resource: self.omit_resource,
            client: ConfiguredClient {
                client_id: self.client_id,
                client_secret: self.client_secret,
                auth_method: self.client_auth_method,
                metadata_url: self.client_metadata_url,
                key,
            },
            interactive: self.interactive,
            grant: self.grant,
            dpop: self.dpop,
            critical: critical::Critical::new(self.critical),
            progress: self.progress,
        };
        #[cfg(feature = "test-server")]
        let mut rules = if self.as_if_remote {
            rules.remote_for_tests()
        } else {
            rules
        };
        // The proxies the agents use (the environment's, the caller's agent's): the user chose
        // them, so the agent may connect to them wherever they are.
        let env_proxy = crate::http::env_proxy()?;
        let agent_proxy = self
            .agent
            .as_ref()
            .and_then(|a| a.config().proxy().cloned());
        for proxy in env_proxy.iter().chain(agent_proxy.iter()) {
            rules = rules.with_proxy(proxy);
        }
        let tls = match &self.ca_file {
            Some(path) => crate::http::tls_config(Some(&crate::http::read_ca_file(path)?)),
            None => crate::http::tls_config(None),
        };
        let rules = Arc::new(rules);
        // The caller's agent keeps its configuration (proxy, TLS, timeouts); its connections
        // go through the address rules like the session's own.
        let custom_agent = self
            .agent
            .map(|a| request::guarded_agent(a.config().clone(), Arc::clone(&rules)));
        let flow = flow::Flow {
            hook: self.authorize_hook,
            device_hook: self.device_hook,
        };
        let inner = Arc::new_cyclic(|weak| {
            // One agent for OAuth and MCP requests unless the caller brought one for OAuth.
            let agent = custom_agent.clone().unwrap_or_else(|| {
                request::bearer_agent(weak.clone(), Arc::clone(&rules), tls.clone())
            });
            Inner::new(server_url, config, store, agent, flow, Arc::clone(&rules))
        });
        let mcp_agent = match custom_agent {
            Some(_) => request::bearer_agent(Arc::downgrade(&inner), rules, tls),
            None => inner.agent().clone(),
        };
        Ok(Session {
            mcp_agent,
            inner,
            file,
        })
    }
}

/// Reads a private key from a PEM file.
fn read_key_file(path: &std::path::Path) -> Result<SigningKey> {
    let step = Step::Configure;
    let text = crate::local::read_user_file(path, "the client key", step)?;
    SigningKey::from_pem(&text, step)
        .map_err(|e| e.prefix_message(&format!("the client key {}", path.display())))
}
