//! Corporate networks (issue "What people ask of an MCP login"): proxies from the environment
//! and a CA file. The proxy is a loopback HTTP proxy that records what it carries.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_oauth_client::testing::Route;
use mcp_oauth_client::{ErrorKind, Session, Step};

use crate::common::{TempDir, World, data_file as data, ping};

/// An HTTP proxy on 127.0.0.1 that tunnels `CONNECT` requests (what ureq sends for http and
/// https targets alike) and records their targets.
struct RecordingProxy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl RecordingProxy {
    fn start() -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                std::thread::spawn(move || tunnel(stream, &log));
            }
        });
        RecordingProxy { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn tunnel(client: TcpStream, log: &Mutex<Vec<String>>) {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
    }
    let mut client = client;
    let Some(target) = line
        .strip_prefix("CONNECT ")
        .and_then(|r| r.split(' ').next())
    else {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    log.lock().unwrap().push(format!("CONNECT {target}"));
    let Ok(upstream) = TcpStream::connect(target) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .unwrap();
    let mut up_write = upstream.try_clone().unwrap();
    let mut up_read = upstream;
    let mut down_write = client;
    let leftover = reader.buffer().to_vec();
    let mut down_read = reader.into_inner();
    let _ = up_write.write_all(&leftover);
    let upward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut down_read, &mut up_write);
        let _ = up_write.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut up_read, &mut down_write);
    let _ = down_write.shutdown(std::net::Shutdown::Write);
    let _ = upward.join();
}

/// `mcp-oauth login` against `w` with `env`, the test completing the browser step; its output.
fn cli_login(w: &World, cache: &TempDir, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = crate::cli::cli(
        &[
            "login",
            w.server.mcp_url().as_str(),
            "--no-browser",
            "--timeout",
            "30",
        ],
        cache.path(),
    );
    cmd.env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("NO_PROXY")
        .env_remove("https_proxy")
        .env_remove("http_proxy")
        .env_remove("all_proxy")
        .env_remove("no_proxy")
        .envs(env.iter().copied());
    crate::cli::complete_login(cmd)
}

#[test]
fn the_cli_goes_through_the_proxy_the_environment_names_and_not_for_no_proxy_hosts() {
    let w = World::new();
    let proxy = RecordingProxy::start();
    let server = format!("127.0.0.1:{}", w.server.mcp_url().port().unwrap());
    let out = cli_login(&w, &TempDir::new(), &[("HTTPS_PROXY", &proxy.url())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = proxy.seen();
    assert!(!seen.is_empty(), "nothing went through the proxy");
    assert!(
        seen.iter().all(|s| *s == format!("CONNECT {server}")),
        "{seen:?}"
    );
    // Discovery, registration and the exchange reached the server through it.
    assert_eq!(w.requests_to(Route::Token).len(), 1);

    // NO_PROXY names the server: straight there.
    let w = World::new();
    let proxy = RecordingProxy::start();
    let out = cli_login(
        &w,
        &TempDir::new(),
        &[
            ("HTTPS_PROXY", &proxy.url()),
            ("NO_PROXY", "localhost,127.0.0.1"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
    assert_eq!(w.requests_to(Route::Token).len(), 1);
}

/// A TLS server on 127.0.0.1 with the certificate for `localhost` that `test-ca.pem` signed;
/// it answers every request 404. Returns its port.
fn tls_server() -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(data("localhost.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(data("localhost.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut head = [0u8; 4096];
                if tls.read(&mut head).is_ok() {
                    let _ = tls.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            });
        }
    });
    port
}

#[test]
fn a_ca_file_is_trusted_for_tls_and_without_it_the_certificate_is_refused() {
    let port = tls_server();
    let url = format!("https://localhost:{port}/mcp");
    let cache = TempDir::new();
    let builder = || {
        Session::builder(&url)
            .cache_dir(cache.path())
            .interactive(false)
    };
    // Without the CA: the handshake fails, a transport error on the request.
    let e = ping(&builder().build().unwrap()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport, "{e}");
    assert_eq!(e.step(), Step::Request, "{e}");
    // With it: TLS works and the server's 404 comes back.
    let trusted = builder().ca_file(data("test-ca.pem")).build().unwrap();
    assert_eq!(ping(&trusted).unwrap(), 404);
    // A file with no certificate is a configuration error naming it.
    let e = builder()
        .ca_file(data("client-es256.pem"))
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("client-es256.pem"), "{e}");
}

#[test]
fn a_proxy_on_loopback_is_reachable_for_a_remote_server() {
    // A remote server's rules refuse loopback addresses; the proxy the user configured is
    // not a server's choice, so the agent may connect to it.
    let w = World::new();
    let proxy = RecordingProxy::start();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(Some(ureq::Proxy::new(&proxy.url()).unwrap()))
        .build()
        .into();
    let session = w
        .builder()
        .address_rules_as_if_remote()
        .agent(agent)
        .build()
        .unwrap();
    assert_eq!(ping(&session).unwrap(), 200);
    assert!(
        !proxy.seen().is_empty(),
        "the OAuth requests went around the proxy"
    );
}

#[test]
fn a_proxy_variable_that_is_not_a_proxy_url_is_a_configuration_error_not_a_direct_connection() {
    let w = World::new();
    for name in ["HTTPS_PROXY", "http_proxy", "ALL_PROXY"] {
        let out = cli_login(&w, &TempDir::new(), &[(name, "http://user:pa ss@[bad")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains("not a proxy URL"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("pa ss"),
            "the value (a password) is not shown: {stderr}"
        );
    }
    assert!(w.server.requests().is_empty(), "nothing went out directly");
}
