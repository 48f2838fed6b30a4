//! Binding the loopback listener: 127.0.0.1, and for `localhost` every loopback address the name
//! resolves to, on one port; and the checks on the callback path.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use super::CallbackHost;
use super::accept::LAUNCH_PATH;
use super::io_error;
use crate::error::{Error, ErrorKind, Result, Step};

/// How many times a free port is looked for on every address `localhost` names.
const BIND_ATTEMPTS: usize = 8;

/// Listeners on `port` (0: a free one) at 127.0.0.1, and for [`CallbackHost::Localhost`] at
/// `::1` and every other address `localhost` resolves to: a browser may try any of them first
/// (Chromium and Firefox resolve `localhost` themselves, `::1` first, whatever the hosts file
/// says), and one left to another user would receive the redirect, code and all. An address
/// taken is an error, not one left out; one the machine does not have (no IPv6) is left out.
pub(super) fn bind_loopback(host: CallbackHost, port: u16) -> Result<Vec<TcpListener>> {
    let refuse = |addr: SocketAddr, e: std::io::Error| {
        Error::new(
            ErrorKind::Config,
            Step::Callback,
            format!("cannot listen on {addr}: another program (maybe another user's) holds it"),
        )
        .with_source(e)
    };
    let ip = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    if host == CallbackHost::Ip {
        return Ok(vec![TcpListener::bind(ip).map_err(|e| refuse(ip, e))?]);
    }
    let resolved: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 0))
        .map(Iterator::collect)
        .unwrap_or_default();
    if let Some(odd) = resolved.iter().find(|a| !a.ip().is_loopback()) {
        return Err(Error::new(
            ErrorKind::Config,
            Step::Callback,
            format!("localhost resolves to {}, not a loopback address", odd.ip()),
        ));
    }
    let mut others = vec![std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)];
    for a in resolved.iter().map(SocketAddr::ip) {
        if a != ip.ip() && !others.contains(&a) {
            others.push(a);
        }
    }
    for _ in 0..BIND_ATTEMPTS {
        let first = TcpListener::bind(ip).map_err(|e| refuse(ip, e))?;
        let port = first.local_addr().map_err(io_error)?.port();
        let mut listeners = vec![first];
        let mut taken = None;
        for other in &others {
            let addr = SocketAddr::new(*other, port);
            match TcpListener::bind(addr) {
                Ok(l) => listeners.push(l),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    taken = Some((addr, e));
                    break;
                }
                // No IPv6 on this machine, say: no browser reaches it either.
                Err(e) => log::debug!("{addr} is not available on this machine: {e:#}"),
            }
        }
        match taken {
            None => return Ok(listeners),
            // A port picked at random that is taken elsewhere: another try. A pinned one: an
            // error.
            Some((addr, e)) if ip.port() != 0 => return Err(refuse(addr, e)),
            Some(_) => continue,
        }
    }
    Err(Error::new(
        ErrorKind::Config,
        Step::Callback,
        "no port is free on every address localhost names",
    ))
}

/// Refuses a callback path that is not `/` followed by visible ASCII without `?` or `#`, or
/// that the launch URL uses.
pub(super) fn check_callback_path(path: &str) -> Result<()> {
    let fine = path.starts_with('/')
        && path.len() <= 256
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
        && !path.starts_with(LAUNCH_PATH);
    if fine {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Config,
            Step::Configure,
            format!(
                "the callback path {:?} is not an absolute path of visible characters without \
                 query or fragment",
                crate::error::shorten(path)
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callback_path_is_an_absolute_path_of_visible_ascii() {
        for good in ["/callback", "/oauth/callback", "/cb-1.x_~"] {
            assert!(check_callback_path(good).is_ok(), "{good}");
        }
        for bad in [
            "callback",
            "/a b",
            "/cb?x=1",
            "/cb#f",
            "/start/x",
            "/caf\u{e9}",
            "",
        ] {
            assert!(check_callback_path(bad).is_err(), "{bad}");
        }
    }
}
