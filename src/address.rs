//! Where a server may send the client: the defence against server-side request forgery (MCP
//! security best practices, "Server-Side Request Forgery"; RFC 9700 §4.11; the special-purpose
//! address registries of RFC 6890).
//!
//! Every URL the flow reaches comes from the MCP server or its authorization server: the
//! challenge's `resource_metadata`, the resource metadata's authorization server, the
//! authorization server's endpoints. A remote server could name a service on the user's
//! machine or network and have the client POST a registration, a code or a refresh token to it.
//! The rules, checked before any connection:
//! - The MCP server's own origin is always allowed: the user chose it; so are origins the user
//!   configured (an enterprise identity provider's token endpoint).
//! - A server on loopback may name anything [`require_secure`] allows
//!   (HTTPS, or plain HTTP to loopback): local servers and their local authorization servers.
//! - A remote server may name HTTPS URLs only, and none whose host is, or resolves to, a
//!   loopback, unspecified, link-local (cloud metadata services live there), multicast or
//!   reserved address; private addresses (RFC 1918, shared address space, IPv6 unique local)
//!   only with [`SessionBuilder::allow_private_network`](crate::SessionBuilder::allow_private_network).
//!
//! Literal addresses are checked when the URL is met; host names on the addresses they resolve
//! to, by the session's agent, right before it connects (so a name that changes its answer
//! between a check and the connection gains nothing). The authorization endpoint, which only
//! the browser opens, is also refused when named `localhost`.
//!
//! Through a proxy (`HTTPS_PROXY` and the like, or the caller's agent's), the proxy resolves
//! host names, so the rules hold for literal addresses only; the proxy itself may be anywhere,
//! loopback included: the user chose it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use url::Url;

use crate::error::{Error, ErrorKind, Result, Step};

/// True for hosts that never leave the machine: `localhost`, 127.0.0.0/8 and `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Refuses any URL that is not HTTPS, except plain HTTP to a loopback host.
///
/// # Errors
/// [`ErrorKind::Refused`] naming the URL.
#[doc(hidden)]
pub fn require_secure(url: &Url, step: Step) -> Result<()> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        other => Err(Error::new(
            ErrorKind::Refused,
            step,
            format!("refusing a {other}: URL; only https (or http on loopback) is allowed"),
        )
        .with_url(url)),
    }
}

/// What kind of address an IP is, for the rules above.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// A global unicast address.
    Public,
    /// 127.0.0.0/8, `::1`: this machine.
    Loopback,
    /// RFC 1918, 100.64.0.0/10 (shared address space), `fc00::/7` (unique local).
    Private,
    /// 169.254.0.0/16, `fe80::/10`: the link, where cloud metadata services answer
    /// (169.254.169.254); also `fd00:ec2::254`, AWS's IPv6 metadata address.
    LinkLocal,
    /// `0.0.0.0/8`, `::` (which reach this machine on Linux), multicast, broadcast, reserved.
    Special,
}

/// Classifies an address. IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible and NAT64
/// (`64:ff9b::/96`) IPv6 addresses are classified by the IPv4 address they carry.
///
/// ```
/// use mcp_oauth_client::address::{AddressClass, classify_address};
/// assert_eq!(classify_address("169.254.169.254".parse().unwrap()), AddressClass::LinkLocal);
/// assert_eq!(classify_address("::ffff:127.0.0.1".parse().unwrap()), AddressClass::Loopback);
/// assert_eq!(classify_address("10.1.2.3".parse().unwrap()), AddressClass::Private);
/// assert_eq!(classify_address("93.184.215.14".parse().unwrap()), AddressClass::Public);
/// ```
pub fn classify_address(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        AddressClass::Private
    } else if a == 0 || a >= 224 || ip.is_broadcast() {
        AddressClass::Special
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    const AWS_METADATA: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    let first = ip.segments()[0];
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_unspecified() || ip.is_multicast() {
        AddressClass::Special
    } else if first & 0xffc0 == 0xfe80 || ip == AWS_METADATA {
        AddressClass::LinkLocal
    } else if first & 0xfe00 == 0xfc00 {
        AddressClass::Private
    } else {
        AddressClass::Public
    }
}

/// The IPv4 address inside a mapped, compatible or NAT64 IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, ..] => Some(v4()),
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(v4()),
        // IPv4-compatible (deprecated), but not `::` and `::1`.
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(v4()),
        _ => None,
    }
}

/// The address rules of one session: see the [module documentation](self).
#[derive(Debug, Clone)]
pub(crate) struct AddressRules {
    /// The MCP server's origin, always allowed.
    server: url::Origin,
    /// Other origins the user configured (an identity provider's token endpoint), allowed
    /// like the server's own.
    trusted: Vec<url::Origin>,
    /// The proxies the user configured (`HTTPS_PROXY` and the like), as host and port: the
    /// agent connects to them, whatever their address (a corporate proxy often listens on
    /// loopback).
    proxies: Vec<(String, u16)>,
    /// The MCP server is on loopback: only [`require_secure`] applies.
    local_server: bool,
    /// Private addresses are allowed (the opt-in).
    private_network: bool,
}

impl AddressRules {
    /// The rules for a session with the MCP server at `server_url`.
    pub(crate) fn new(server_url: &Url, private_network: bool) -> AddressRules {
        AddressRules {
            server: server_url.origin(),
            trusted: Vec::new(),
            proxies: Vec::new(),
            local_server: is_loopback(server_url),
            private_network,
        }
    }

    /// The same rules trusting `url`'s origin too: the user named it, no server did.
    pub(crate) fn trusting(mut self, url: &Url) -> AddressRules {
        self.trusted.push(url.origin());
        self
    }

    /// The same rules letting the agent connect to `proxy` (host and port).
    pub(crate) fn with_proxy(mut self, proxy: &ureq::Proxy) -> AddressRules {
        self.proxies
            .push((proxy.host().to_ascii_lowercase(), proxy.port()));
        self
    }

    /// True for a configured proxy.
    fn is_proxy(&self, uri: &ureq::http::Uri) -> bool {
        let (Some(host), Some(port)) = (uri.host(), uri.port_u16()) else {
            return false;
        };
        self.proxies
            .iter()
            .any(|(h, p)| *p == port && h.eq_ignore_ascii_case(host))
    }

    /// True for the origins the user chose: the server's and the configured ones.
    fn chosen(&self, origin: &url::Origin) -> bool {
        *origin == self.server || self.trusted.contains(origin)
    }

    /// The rules of a remote server, applied to a server on loopback (for tests that need a
    /// remote server and have only loopback).
    #[cfg(feature = "test-server")]
    pub(crate) fn remote_for_tests(mut self) -> AddressRules {
        self.local_server = false;
        self
    }

    /// Checks a URL a server named for the client to connect to, before anything connects:
    /// the scheme, and the address when the host is an IP literal. A host name is checked on
    /// what it resolves to, by the session's resolver when it connects.
    pub(crate) fn check_url(&self, url: &Url, step: Step) -> Result<()> {
        self.check(url, step, false)
    }

    /// Checks the authorization endpoint, which only the browser opens: as
    /// [`check_url`](Self::check_url), and `localhost` names too, since the client never
    /// resolves this host itself.
    pub(crate) fn check_browser_url(&self, url: &Url, step: Step) -> Result<()> {
        self.check(url, step, true)
    }

    fn check(&self, url: &Url, step: Step, localhost_names: bool) -> Result<()> {
        require_secure(url, step)?;
        if self.local_server || self.chosen(&url.origin()) {
            return Ok(());
        }
        if url.scheme() != "https" {
            return Err(refused(url, step, "plain HTTP"));
        }
        let class = match url.host() {
            Some(url::Host::Ipv4(ip)) => classify_address(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => classify_address(IpAddr::V6(ip)),
            Some(url::Host::Domain(d)) if localhost_names && is_localhost_name(d) => {
                AddressClass::Loopback
            }
            _ => AddressClass::Public,
        };
        match self.refusal(class) {
            Some(what) => Err(refused(url, step, what)),
            None => Ok(()),
        }
    }

    /// Why an address of `class` may not be reached, or `None` when it may.
    fn refusal(&self, class: AddressClass) -> Option<&'static str> {
        match class {
            AddressClass::Public => None,
            AddressClass::Private if self.private_network => None,
            AddressClass::Private => Some("a private network address"),
            AddressClass::Loopback => Some("a loopback address"),
            AddressClass::LinkLocal => Some("a link-local or cloud metadata address"),
            AddressClass::Special => Some("a special-purpose address"),
        }
    }

    /// Checks the addresses `host` resolved to, right before a connection to `origin`; the
    /// first refused address, with why.
    fn check_resolved(
        &self,
        origin: &url::Origin,
        addrs: &[SocketAddr],
    ) -> Option<(SocketAddr, &'static str)> {
        if self.local_server || self.chosen(origin) {
            return None;
        }
        addrs.iter().find_map(|addr| {
            self.refusal(classify_address(addr.ip()))
                .map(|what| (*addr, what))
        })
    }
}

/// `localhost`, `*.localhost` (RFC 6761 §6.3), with or without the final dot.
fn is_localhost_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

fn refused(url: &Url, step: Step, what: &str) -> Error {
    Error::new(
        ErrorKind::Refused,
        step,
        format!(
            "refusing {what}: a server that is not on this machine may not send the client \
             there (see SessionBuilder::allow_private_network for private networks)"
        ),
    )
    .with_url(url)
}

/// The refusal the session's resolver gives ureq, found again in the error it returns.
#[derive(Debug)]
pub(crate) struct ResolvedRefusal {
    /// The host name that was resolved.
    pub host: String,
    /// The address it resolved to that the rules refuse.
    pub addr: IpAddr,
    /// Why.
    pub what: &'static str,
}

impl std::fmt::Display for ResolvedRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves to {} ({}), which a server that is not on this machine may not send \
             the client to",
            crate::error::sanitize(&self.host, 255),
            self.addr,
            self.what
        )
    }
}

impl std::error::Error for ResolvedRefusal {}

/// The session's resolver: ureq's, then the rules on what it found.
#[derive(Debug)]
pub(crate) struct GuardedResolver {
    rules: Arc<AddressRules>,
    inner: ureq::unversioned::resolver::DefaultResolver,
}

impl GuardedResolver {
    pub(crate) fn new(rules: Arc<AddressRules>) -> GuardedResolver {
        GuardedResolver {
            rules,
            inner: Default::default(),
        }
    }
}

impl ureq::unversioned::resolver::Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> std::result::Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let addrs = self.inner.resolve(uri, config, timeout)?;
        if self.rules.is_proxy(uri) {
            return Ok(addrs);
        }
        let origin = Url::parse(&uri.to_string()).map(|u| u.origin());
        let Ok(origin) = origin else {
            return Ok(addrs);
        };
        match self.rules.check_resolved(&origin, &addrs) {
            None => Ok(addrs),
            Some((addr, what)) => Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                ResolvedRefusal {
                    host: uri.host().unwrap_or_default().to_owned(),
                    addr: addr.ip(),
                    what,
                },
            ))),
        }
    }
}

/// Parses an endpoint URL a server named (in metadata, a cache file, a challenge).
///
/// # Errors
/// [`ErrorKind::InvalidResponse`] in `step`, quoting the start of the text.
pub(crate) fn parse_endpoint(endpoint: &str, step: Step) -> Result<Url> {
    Url::parse(endpoint).map_err(|e| {
        Error::new(
            ErrorKind::InvalidResponse,
            step,
            format!("invalid endpoint URL {:?}", crate::error::shorten(endpoint)),
        )
        .with_source(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for (u, want) in [
            ("http://127.0.0.1:8080/", true),
            ("http://127.5.0.1/", true),
            ("http://[::1]:9/", true),
            ("http://LOCALHOST/", true),
            ("http://localhost.evil.example/", false),
            ("http://10.0.0.1/", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(u).unwrap()), want, "{u}");
        }
    }

    #[test]
    fn secure_urls() {
        let ok = |u: &str| require_secure(&Url::parse(u).unwrap(), Step::Refresh).is_ok();
        assert!(ok("https://as.example/token"));
        assert!(ok("http://127.0.0.1:1/token"));
        assert!(!ok("http://as.example/token"));
        assert!(!ok("ftp://127.0.0.1/x"));
    }

    fn class(ip: &str) -> AddressClass {
        classify_address(ip.parse().unwrap())
    }

    #[test]
    fn classes() {
        use AddressClass::*;
        for (ip, want) in [
            ("8.8.8.8", Public),
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("192.168.1.1", Private),
            ("100.64.0.1", Private),
            ("100.100.100.200", Private),
            ("100.128.0.1", Public),
            ("169.254.169.254", LinkLocal),
            ("0.0.0.0", Special),
            ("0.1.2.3", Special),
            ("224.0.0.1", Special),
            ("255.255.255.255", Special),
            ("240.0.0.1", Special),
            ("::1", Loopback),
            ("::", Special),
            ("fe80::1", LinkLocal),
            ("fd00:ec2::254", LinkLocal),
            ("fd12:3456::1", Private),
            ("fc00::1", Private),
            ("ff02::1", Special),
            ("2606:4700::1111", Public),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:10.0.0.1", Private),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("::7f00:1", Loopback),
            ("::ffff:8.8.8.8", Public),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    fn check(rules: &AddressRules, url: &str) -> Result<()> {
        rules.check_url(&Url::parse(url).unwrap(), Step::Registration)
    }

    #[test]
    fn a_remote_server_may_name_public_https_only() {
        let rules = AddressRules::new(&Url::parse("https://mcp.example.com/mcp").unwrap(), false);
        assert!(check(&rules, "https://auth.example.com/token").is_ok());
        assert!(check(&rules, "https://93.184.215.14/token").is_ok());
        for bad in [
            "http://auth.example.com/token",
            "http://127.0.0.1:8080/token",
            "https://127.0.0.1:8080/token",
            "https://[::1]/token",
            "https://10.0.0.5/register",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00:ec2::254]/",
            "https://[::ffff:7f00:1]/token",
            "https://0.0.0.0/token",
            "https://2130706433/token",
        ] {
            let e = check(&rules, bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Refused, "{bad}");
        }
        // Names are for the resolver, except where only the browser goes.
        let browser =
            |u: &str| rules.check_browser_url(&Url::parse(u).unwrap(), Step::Authorization);
        for name in [
            "https://localhost/authorize",
            "https://LocalHost./authorize",
            "https://app.localhost/authorize",
        ] {
            assert!(check(&rules, name).is_ok(), "{name}");
            assert!(browser(name).is_err(), "{name}");
        }
        assert!(browser("https://auth.example.com/authorize").is_ok());
    }

    #[test]
    fn private_addresses_with_the_opt_in_but_never_loopback_or_metadata() {
        let rules = AddressRules::new(&Url::parse("https://mcp.example.com/mcp").unwrap(), true);
        assert!(check(&rules, "https://10.0.0.5/register").is_ok());
        assert!(check(&rules, "https://[fd12::5]/register").is_ok());
        assert!(check(&rules, "https://127.0.0.1/register").is_err());
        assert!(check(&rules, "https://169.254.169.254/").is_err());
    }

    #[test]
    fn a_local_server_and_the_servers_own_origin_are_trusted() {
        let local = AddressRules::new(&Url::parse("http://127.0.0.1:3000/mcp").unwrap(), false);
        assert!(check(&local, "http://127.0.0.1:3001/token").is_ok());
        assert!(check(&local, "http://localhost:3001/token").is_ok());
        assert!(check(&local, "https://10.0.0.5/token").is_ok());
        // require_secure still applies.
        assert!(check(&local, "http://auth.example.com/token").is_err());
        let remote = AddressRules::new(&Url::parse("https://10.0.0.7/mcp").unwrap(), false);
        assert!(check(&remote, "https://10.0.0.7/token").is_ok());
        assert!(check(&remote, "https://10.0.0.7:8443/token").is_err());
        // An origin the user configured is trusted like the server's, and only that origin.
        let idp = Url::parse("https://10.0.0.9/oauth2/token").unwrap();
        let trusting = remote.trusting(&idp);
        assert!(check(&trusting, "https://10.0.0.9/other").is_ok());
        assert!(check(&trusting, "https://10.0.0.9:444/token").is_err());
        assert!(
            trusting
                .check_resolved(
                    &idp.origin(),
                    &[SocketAddr::new("10.0.0.9".parse().unwrap(), 443)]
                )
                .is_none()
        );
    }

    #[test]
    fn resolved_addresses() {
        let rules = AddressRules::new(&Url::parse("https://mcp.example.com/mcp").unwrap(), false);
        let origin = Url::parse("https://auth.example.com").unwrap().origin();
        let at = |ip: &str| vec![SocketAddr::new(ip.parse().unwrap(), 443)];
        assert!(
            rules
                .check_resolved(&origin, &at("93.184.215.14"))
                .is_none()
        );
        assert!(rules.check_resolved(&origin, &at("127.0.0.1")).is_some());
        // One bad address among good ones refuses the host.
        let mixed = [at("93.184.215.14"), at("10.0.0.1")].concat();
        assert_eq!(
            rules.check_resolved(&origin, &mixed).map(|(_, w)| w),
            Some("a private network address")
        );
        let own = Url::parse("https://mcp.example.com").unwrap().origin();
        assert!(rules.check_resolved(&own, &at("10.0.0.1")).is_none());
    }
}
