//! The loopback redirect listener (RFC 8252 §7.3, §8.3): binds 127.0.0.1 (see
//! [`bind`](super::bind)), has its connections read and screened (see [`accept`](super::accept))
//! while it waits, and decides on what passes: the one-time launch URL's single redirect, and
//! the authorization response of this login.

use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use url::Url;

use super::accept::{Acceptor, FINISHED, LAUNCH_PATH, Served, redirect, respond};
use super::bind::{bind_loopback, check_callback_path};
use super::events::{Canceller, Candidate, Event, Kind, PasteOutcome, Paster};
use super::pages;
use super::response::{CallbackExpectation, CallbackOutcome, validate_callback};
use crate::error::{Error, ErrorKind, Result, Step};
use crate::secret::{Secret, constant_time_eq};

/// The path of the redirect URI.
pub const CALLBACK_PATH: &str = "/callback";

/// The host name in the redirect URI. The listener binds 127.0.0.1 in both cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CallbackHost {
    /// `http://127.0.0.1:PORT/callback` (RFC 8252 §7.3 recommends the IP literal).
    #[default]
    Ip,
    /// `http://localhost:PORT/callback`, for servers that only accept that spelling.
    Localhost,
}

/// The loopback listener that receives the authorization response.
#[derive(Debug)]
pub struct CallbackListener {
    /// 127.0.0.1, and for `localhost` every loopback address the name resolves to.
    listeners: Vec<TcpListener>,
    redirect_uri: Url,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    launch: Option<Launch>,
}

/// The one-time launch: its secret path segment and where it redirects.
#[derive(Debug)]
struct Launch {
    nonce: String,
    target: Url,
}

impl CallbackListener {
    /// Binds 127.0.0.1 on `port` (0 picks a free one), serving [`CALLBACK_PATH`].
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the port cannot be bound.
    pub fn bind(host: CallbackHost, port: u16) -> Result<CallbackListener> {
        CallbackListener::bind_at(host, port, CALLBACK_PATH)
    }

    /// As [`bind`](Self::bind), serving the redirect URI's `path` instead of
    /// [`CALLBACK_PATH`]: for a client registered with exactly one redirect URI, such as
    /// `http://localhost:3118/oauth/callback`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the port cannot be bound or the path is not an absolute
    /// path of visible ASCII without query or fragment (or is the launch URL's).
    pub fn bind_at(host: CallbackHost, port: u16, path: &str) -> Result<CallbackListener> {
        CallbackListener::check_path(path)?;
        let listeners = bind_loopback(host, port)?;
        let port = listeners[0].local_addr().map(|a| a.port()).unwrap_or(port);
        let name = match host {
            CallbackHost::Ip => "127.0.0.1",
            CallbackHost::Localhost => "localhost",
        };
        let redirect_uri = Url::parse(&format!("http://{name}:{port}{path}")).map_err(|e| {
            Error::new(ErrorKind::Config, Step::Callback, "bad redirect URI").with_source(e)
        })?;
        let (tx, rx) = mpsc::channel();
        Ok(CallbackListener {
            listeners,
            redirect_uri,
            tx,
            rx,
            launch: None,
        })
    }

    /// A one-time URL on this listener, `http://127.0.0.1:PORT/start/NONCE`, that redirects
    /// once to `target` (the authorization URL). A browser on this machine is started with it
    /// instead of the authorization URL, so that `state` and the PKCE challenge never appear
    /// on a command line, which other local users can read. Opened a second time (someone
    /// read it from the browser's command line and raced the browser), it ends the wait with
    /// [`ErrorKind::Refused`]. Replaces an earlier launch URL.
    ///
    /// # Errors
    /// When no randomness is available.
    pub fn launch_url(&mut self, target: &Url) -> Result<Url> {
        let nonce = crate::secret::random_token(32, Step::Authorization)?;
        // On the literal address, whatever the redirect URI says: `localhost` may resolve to
        // an address another user could listen on.
        let mut url = self.redirect_uri.clone();
        url.set_host(Some("127.0.0.1"))
            .map_err(|_| Error::new(ErrorKind::Config, Step::Callback, "bad launch URL"))?;
        url.set_path(&format!("{LAUNCH_PATH}{nonce}"));
        self.launch = Some(Launch {
            nonce,
            target: target.clone(),
        });
        Ok(url)
    }

    /// Where addresses pasted by the person are delivered while this listener waits.
    pub fn paster(&self) -> Paster {
        Paster {
            tx: self.tx.clone(),
        }
    }

    /// What cancels the wait from another thread.
    pub(crate) fn canceller(&self) -> Canceller {
        let tx = self.tx.clone();
        Canceller::new(move || tx.send(Event::Cancel).is_ok())
    }

    /// The redirect URI this listener answers, `http://127.0.0.1:PORT/callback`.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.redirect_uri.port().unwrap_or(0)
    }

    /// Waits up to `timeout` for the authorization response, answering every request with a
    /// page, and returns the code. Connections are read concurrently (at most 64 at once, the
    /// oldest closed for a new one, each for at most two seconds), so slow, idle or junk
    /// clients cannot hold the wait. The port is
    /// released when this returns.
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`] when no valid response came in time; the OAuth error of an error
    /// response (`access_denied`, …); [`ErrorKind::Refused`] for an `iss` mismatch.
    pub fn wait(self, expect: &CallbackExpectation<'_>, timeout: Duration) -> Result<Secret> {
        let deadline = Instant::now() + timeout;
        let served = Served::new(self.port(), self.redirect_uri.path());
        let acceptors = self
            .listeners
            .into_iter()
            .map(|l| Acceptor::start(l, self.tx.clone(), served.clone()))
            .collect::<Result<Vec<_>>>()?;
        let mut waiting = Waiting {
            path: &served.path,
            expect,
            launch: self.launch,
            launched: false,
        };
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(event) => {
                    if let Some(result) = waiting.decide(event) {
                        break result;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    break Err(Error::new(
                        ErrorKind::Timeout,
                        Step::Callback,
                        format!(
                            "no authorization response reached {} within {} s",
                            self.redirect_uri,
                            timeout.as_secs()
                        ),
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    break Err(Error::new(
                        ErrorKind::Config,
                        Step::Callback,
                        "the callback listener stopped",
                    ));
                }
            }
        };
        drop(acceptors);
        drop(self.tx);
        for late in self.rx.try_iter() {
            match late {
                Event::Request(mut c) => respond(&mut c.stream, 400, &pages::failure(FINISHED)),
                Event::Pasted(_, reply) => {
                    let _ = reply.send(PasteOutcome::Over);
                }
                Event::Cancel => {}
            }
        }
        result
    }
}

/// The waiting thread's view: what a response must match, and the launch URL's state.
struct Waiting<'a, 'e> {
    /// The callback's path.
    path: &'a str,
    expect: &'a CallbackExpectation<'e>,
    launch: Option<Launch>,
    launched: bool,
}

impl Waiting<'_, '_> {
    /// The verdict on one event, answered on its connection or to its paster; `Some` ends the
    /// wait.
    fn decide(&mut self, event: Event) -> Option<Result<Secret>> {
        match event {
            // Another user of this machine (who can read the browser's command line, and so
            // the launch URL): nothing of this login is theirs to open or deliver. Asked only
            // of requests that would count, the launch and callbacks with this login's `state`.
            Event::Request(Candidate { mut stream, kind })
                if self.counts(&kind) && super::peer::same_user(&stream) == Some(false) =>
            {
                log::warn!(
                    "refused a request to the callback listener from another user's program"
                );
                respond(&mut stream, 403, &pages::failure(ANOTHER_USER));
                None
            }
            Event::Request(Candidate {
                mut stream,
                kind: Kind::Callback(params),
            }) => {
                let (status, page, end) = verdict(&params, self.expect);
                respond(&mut stream, status, &page);
                end
            }
            Event::Request(Candidate {
                mut stream,
                kind: Kind::Launch(nonce),
            }) => self.launch(&mut stream, &nonce),
            Event::Pasted(address, reply) => {
                let params = Url::parse(&address)
                    .ok()
                    .filter(|u| u.path() == self.path)
                    .map(|u| u.query_pairs().into_owned().collect::<Vec<_>>());
                let Some(params) = params else {
                    let _ = reply.send(PasteOutcome::NotACallback);
                    return None;
                };
                let (_, _, end) = verdict(&params, self.expect);
                let outcome = match end {
                    Some(_) => PasteOutcome::Delivered,
                    None => PasteOutcome::NotThisLogin,
                };
                let _ = reply.send(outcome);
                end
            }
            Event::Cancel => Some(Err(Error::new(
                ErrorKind::Cancelled,
                Step::Callback,
                "the login was cancelled",
            ))),
        }
    }

    /// Whether a request would change the login: the launch path with its nonce, or a
    /// callback carrying this login's `state`.
    fn counts(&self, kind: &Kind) -> bool {
        match kind {
            Kind::Launch(nonce) => self
                .launch
                .as_ref()
                .is_some_and(|l| constant_time_eq(l.nonce.as_bytes(), nonce.as_bytes())),
            Kind::Callback(params) => params.iter().any(|(k, v)| {
                k == "state" && constant_time_eq(v.as_bytes(), self.expect.state.as_bytes())
            }),
        }
    }

    /// A request for the launch path: the first one with the right nonce is redirected to the
    /// authorization URL; a second one ends the wait (someone else had the URL).
    fn launch(&mut self, stream: &mut TcpStream, nonce: &str) -> Option<Result<Secret>> {
        let target = self
            .launch
            .as_ref()
            .filter(|l| constant_time_eq(l.nonce.as_bytes(), nonce.as_bytes()))
            .map(|l| l.target.clone());
        let Some(target) = target else {
            respond(
                stream,
                404,
                &pages::failure("Nothing is served at this path."),
            );
            return None;
        };
        if !self.launched {
            self.launched = true;
            redirect(stream, &target);
            return None;
        }
        respond(stream, 400, &pages::opened_twice());
        Some(Err(Error::new(
            ErrorKind::Refused,
            Step::Authorization,
            "the sign-in link was opened twice: another program on this machine may have read \
             it from the browser's command line, so this login was stopped; log in again",
        )))
    }
}

/// The status and page for an authorization response, and `Some` when it ends the wait.
fn verdict(
    params: &[(String, String)],
    expect: &CallbackExpectation<'_>,
) -> (u16, String, Option<Result<Secret>>) {
    match validate_callback(params, expect) {
        CallbackOutcome::Code(code) => (200, pages::success(), Some(Ok(code))),
        CallbackOutcome::Failed(e) => {
            let reason = match e.oauth_error() {
                Some(code) => format!("The authorization server answered: {code}."),
                None => "The authorization response did not pass the security checks.".into(),
            };
            (400, pages::failure(&reason), Some(Err(e)))
        }
        CallbackOutcome::Ignored(why) => {
            // A stale tab, a second login, or a forgery: the person (and the front end) learn
            // that it was refused and that the login goes on.
            log::warn!(
                "refused an authorization response that does not belong to this login ({why}); \
                 still waiting for the browser"
            );
            (400, pages::not_this_login(), None)
        }
    }
}

/// The page text for a request of another user's program.
const ANOTHER_USER: &str = "This sign-in belongs to another user of this computer.";

impl CallbackListener {
    /// Refuses a callback path that is not `/` followed by visible ASCII without `?` or `#`,
    /// or that the launch URL uses.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the path.
    pub fn check_path(path: &str) -> Result<()> {
        check_callback_path(path)
    }
}
