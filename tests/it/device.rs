//! The device login (RFC 8628) against the embedded server: the code shown through the hook,
//! the person approving on "another device", polling with `authorization_pending` and
//! `slow_down`, and the ways it ends without tokens.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_oauth_client::device::DeviceStep;
use mcp_oauth_client::testing::{Route, ServerConfig, follow_redirects};
use mcp_oauth_client::{ErrorKind, OAuthErrorCode, Step};

use crate::common::{World, ping};

pub(crate) fn device_world(config: ServerConfig) -> World {
    World::with(ServerConfig {
        device_interval: 1,
        ..config
    })
}

/// The person: approves (or denies) `after` the code was shown, on another thread.
pub(crate) fn person(
    deny: bool,
    after: Duration,
) -> (
    impl FnMut(&DeviceStep) + Send + 'static,
    Arc<Mutex<Vec<DeviceStep>>>,
) {
    let shown = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&shown);
    let hook = move |step: &DeviceStep| {
        log.lock().unwrap().push(step.clone());
        let mut url = step.verification_uri_complete.clone().unwrap();
        if deny {
            url.query_pairs_mut().append_pair("deny", "1");
        }
        std::thread::spawn(move || {
            std::thread::sleep(after);
            follow_redirects(&url).unwrap();
        });
    };
    (hook, shown)
}

#[test]
fn a_device_login_shows_the_code_polls_until_approved_and_binds_no_port() {
    let w = device_world(ServerConfig::default());
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let (hook, shown) = person(false, Duration::from_millis(1500));
    let session = w
        .builder()
        .callback_port(port)
        .device_login(hook)
        .build()
        .unwrap();
    assert_eq!(ping(&session).unwrap(), 200);
    let shown = shown.lock().unwrap();
    assert_eq!(shown.len(), 1);
    let step = &shown[0];
    assert_eq!(step.user_code.len(), 9, "{}", step.user_code);
    assert_eq!(step.verification_uri.path(), "/device");
    assert!(w.requests_to(Route::Authorize).is_empty());
    // Registered for the device grant, without redirect URIs.
    let register: serde_json::Value =
        serde_json::from_str(&w.requests_to(Route::Register)[0].body).unwrap();
    assert!(register.get("redirect_uris").is_none());
    assert_eq!(
        register["grant_types"][0],
        mcp_oauth_client::device::DEVICE_CODE_GRANT
    );
    // Pending at least once, then the tokens; the resource on both requests.
    let polls = w.requests_to(Route::Token);
    assert!(polls.len() >= 2, "{:?}", w.request_lines());
    let mcp = w.server.mcp_url().to_string();
    for p in &polls {
        assert_eq!(
            p.form_param("grant_type").as_deref(),
            Some(mcp_oauth_client::device::DEVICE_CODE_GRANT)
        );
        assert_eq!(p.form_param("resource").as_deref(), Some(mcp.as_str()));
    }
    let device = &w.requests_to(Route::DeviceAuthorization)[0];
    assert_eq!(device.form_param("resource").as_deref(), Some(mcp.as_str()));
    // A refresh token came: the person's tokens serve the browser session too.
    let stored = crate::common::stored(&session);
    assert!(stored.tokens.refresh_token.is_some());
    assert_eq!(stored.grant.as_deref(), Some("device_code"));
    w.server.clear_requests();
    assert_eq!(ping(&w.session()).unwrap(), 200);
    assert!(
        w.requests_to(Route::Token).is_empty(),
        "{:?}",
        w.request_lines()
    );
}

#[test]
fn slow_down_adds_five_seconds_to_the_interval() {
    let w = device_world(ServerConfig {
        device_slow_down: true,
        ..ServerConfig::default()
    });
    let (hook, _) = person(false, Duration::ZERO);
    let session = w.builder().device_login(hook).build().unwrap();
    session.access_token().unwrap();
    let polls = w.requests_to(Route::Token);
    assert_eq!(
        polls.len(),
        2,
        "slow_down, then the tokens: {:?}",
        w.request_lines()
    );
    let gap = polls[1].received - polls[0].received;
    assert!(
        gap >= Duration::from_secs(6),
        "the second poll came after {gap:?}"
    );
}

#[test]
fn a_denied_or_expired_device_code_ends_the_login_with_the_servers_error() {
    // Denied.
    let w = device_world(ServerConfig::default());
    let (hook, _) = person(true, Duration::ZERO);
    let session = w.builder().device_login(hook).build().unwrap();
    let e = session.access_token().unwrap_err();
    assert!(e.is_access_denied(), "{e}");
    assert_eq!(e.step(), Step::CodeExchange);
    assert!(!w.has_cached_tokens(&session));
    // Expired at the server while the client still had time.
    let w = device_world(ServerConfig {
        device_code_lifetime: Some(2),
        ..ServerConfig::default()
    });
    let session = w
        .builder()
        .device_login(|_: &DeviceStep| {})
        .build()
        .unwrap();
    let e = session.access_token().unwrap_err();
    assert_eq!(e.oauth_code(), Some(OAuthErrorCode::ExpiredToken), "{e}");
    let polls = w.requests_to(Route::Token).len();
    assert!(
        (2..=4).contains(&polls),
        "{polls} polls in about 2 s at 1 s intervals"
    );
}

#[test]
fn a_device_login_stops_at_its_deadline_or_when_cancelled() {
    let w = device_world(ServerConfig::default());
    let session = w
        .builder()
        .callback_timeout(Duration::from_secs(3))
        .device_login(|_: &DeviceStep| {})
        .build()
        .unwrap();
    let e = session.access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");

    let session = Arc::new(
        w.builder()
            .device_login(|_: &DeviceStep| {})
            .build()
            .unwrap(),
    );
    let waiting = {
        let session = Arc::clone(&session);
        std::thread::spawn(move || session.access_token())
    };
    let started = Instant::now();
    while !session.cancel_login() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the login never waited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let e = waiting.join().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    // Without a person allowed, nothing is asked at all.
    let quiet = w
        .builder()
        .interactive(false)
        .device_login(|_: &DeviceStep| panic!("no person may be asked"))
        .build()
        .unwrap();
    w.server.clear_requests();
    assert_eq!(
        quiet.access_token().unwrap_err().kind(),
        ErrorKind::LoginRequired
    );
    assert!(w.server.requests().is_empty());
}

#[test]
fn a_device_answer_that_would_mislead_the_person_is_refused_and_nothing_is_shown() {
    let w = device_world(ServerConfig::default());
    let base = w.server.base_url().to_string();
    let answers = [
        // A link that reads as one host and leads to another.
        serde_json::json!({"device_code": "d-1", "user_code": "WDJB-MJHT",
            "verification_uri": format!("{base}device").replace("http://", "http://accounts.example@"),
            "expires_in": 600}),
        // A "code" that is a sentence for the person to act on.
        serde_json::json!({"device_code": "d-2", "user_code": "To finish, run: curl x | sh",
            "verification_uri": format!("{base}device"), "expires_in": 600}),
    ];
    for answer in answers {
        w.server.set_fault(
            Route::DeviceAuthorization,
            mcp_oauth_client::testing::Fault::json(200, answer.clone()).times(1),
        );
        let (hook, shown) = person(false, Duration::ZERO);
        let session = w.builder().device_login(hook).build().unwrap();
        let e = session.access_token().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{answer}: {e}");
        assert!(
            shown.lock().unwrap().is_empty(),
            "{answer}: shown to the person"
        );
    }
}
