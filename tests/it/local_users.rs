//! Another user of the same machine against the loopback callback: squatting the `::1` side of
//! a `localhost` redirect URI, and replaying the one-time launch URL read from the browser's
//! command line. Both would log the person in to the attacker's account (login CSRF).

use std::net::TcpListener;
use std::time::Duration;

use mcp_oauth_client::testing::{Route, follow_redirects};
use mcp_oauth_client::{BrowserStep, CallbackHost, ErrorKind};

use crate::common::World;

#[test]
fn a_localhost_callback_refuses_to_start_when_another_program_holds_its_ipv6_side() {
    let w = World::new();
    // Someone listens on [::1] at the pinned port, where browsers try `localhost` first.
    let squatter = TcpListener::bind("[::1]:0").expect("IPv6 loopback");
    let port = squatter.local_addr().unwrap().port();
    let session = w
        .builder()
        .callback_host(CallbackHost::Localhost)
        .callback_port(port)
        .build()
        .unwrap();
    let e = session.access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains(&format!("[::1]:{port}")), "{e}");
    assert_eq!(
        w.browser.opened(),
        0,
        "no browser for a listener someone else shares"
    );
}

#[test]
fn a_localhost_callback_answers_on_ipv6_too() {
    let w = World::new();
    // The browser reaches `localhost` on ::1, as Chromium and Firefox do.
    let session = w
        .builder()
        .callback_host(CallbackHost::Localhost)
        .authorize_hook(|step: &BrowserStep| {
            let launch = step.launch_url.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .max_redirects(0)
                    .http_status_as_error(false)
                    .build()
                    .new_agent();
                let mut url = launch;
                for _ in 0..5 {
                    let r = agent.get(url.as_str()).call().unwrap();
                    let Some(next) = r.headers().get("location") else {
                        return;
                    };
                    let mut next = url.join(next.to_str().unwrap()).unwrap();
                    if next.host_str() == Some("localhost") {
                        next.set_host(Some("[::1]")).unwrap();
                    }
                    url = next;
                }
            });
        })
        .build()
        .unwrap();
    if let Err(e) = session.access_token() {
        panic!("{e}: {:?}", w.request_lines());
    }
    assert!(
        w.requests_to(Route::Authorize)[0]
            .query_param("redirect_uri")
            .unwrap()
            .starts_with("http://localhost:")
    );
}

/// Requests `url` as another user (`nobody`): the HTTP status it got.
fn status_as_another_user(url: &str) -> u16 {
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args([
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            url,
        ])
        .output()
        .expect("setpriv and curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn another_user_replaying_the_launch_url_gets_nothing_and_the_login_goes_on() {
    // The attack needs a second user: this test runs as root (as CI does) to act as `nobody`.
    assert_eq!(
        std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .ok(),
        Some(0),
        "this test acts as another user through setpriv: run it as root"
    );
    let w = World::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let session = w
        .builder()
        .authorize_hook(move |step: &BrowserStep| {
            let launch = step.launch_url.clone();
            let redirect = step.redirect_uri.clone();
            let state = step
                .authorization_url
                .query_pairs()
                .find(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned())
                .unwrap();
            let tx = tx.clone();
            std::thread::spawn(move || {
                // The other user reads the launch URL off the browser's command line and opens
                // it first; then, as if it had learnt `state` anyway, delivers a code of its own.
                let launch_status = status_as_another_user(launch.as_str());
                let forged = format!("{redirect}?code=attackers-code&state={state}");
                let callback_status = status_as_another_user(&forged);
                let visit = follow_redirects(&launch).map(|v| v.status);
                let _ = tx.send((launch_status, callback_status, visit.ok()));
            });
        })
        .callback_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let token = session.access_token().unwrap();
    let (launch_status, callback_status, browser_status) =
        rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!((launch_status, callback_status), (403, 403));
    assert_eq!(browser_status, Some(200));
    assert_eq!(w.mcp_status(token.secret()), 200);
}
