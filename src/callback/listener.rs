//! The loopback redirect listener (RFC 8252 §7.3, §8.3): binds 127.0.0.1, reads each
//! connection on its own thread, bounded in size, time and number, and hands what passes the
//! HTTP checks to the waiting thread, which decides on it.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use super::pages;
use super::request::{CallbackParseError, MAX_CALLBACK_REQUEST, head_end, parse_callback_request};
use super::response::{CallbackExpectation, CallbackOutcome, validate_callback};
use crate::error::{Error, ErrorKind, Result, Step};
use crate::secret::{Secret, constant_time_eq};

/// How long one connection may take to send its request head, in total.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// How long writing a page may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The most connections read at the same time; a new one beyond that closes the oldest.
const MAX_IN_FLIGHT: usize = 64;

/// How long a refused connection is drained before it is closed.
const LINGER: Duration = Duration::from_millis(200);

/// How long accepting pauses after a failed accept (out of file descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

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

/// The path prefix of the one-time launch URL ([`CallbackListener::launch_url`]).
const LAUNCH_PATH: &str = "/start/";

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

/// What reaches the waiting thread.
enum Event {
    /// A request that passed the HTTP checks, waiting for the verdict.
    Request(Candidate),
    /// An address pasted by the person ([`Paster::deliver`]), with where to say what came of it.
    Pasted(String, Sender<PasteOutcome>),
    /// [`Canceller::cancel`].
    Cancel,
}

/// A request that passed the HTTP checks, waiting for the verdict from the thread that holds
/// the expectation.
struct Candidate {
    stream: TcpStream,
    kind: Kind,
}

/// Which of the two paths the request was for. (No `Debug` outside tests: it holds the code.)
#[cfg_attr(test, derive(Debug, PartialEq))]
enum Kind {
    /// The redirect URI, with its query parameters.
    Callback(Vec<(String, String)>),
    /// The launch path, with the nonce it named.
    Launch(String),
}

/// Delivers the address a browser ended on to a waiting [`CallbackListener`], for a browser
/// that cannot reach the loopback listener (on another machine, over SSH, in a container): it
/// is checked exactly like a request to the redirect URI. Cheap to clone, `Send` and `Sync`.
#[derive(Debug, Clone)]
pub struct Paster {
    tx: Sender<Event>,
}

/// What became of a pasted address.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasteOutcome {
    /// It was this login's authorization response: the login goes on with it (to the code
    /// exchange, or to the error the server sent).
    Delivered,
    /// Not an address of the redirect URI (`…/callback?…`).
    NotACallback,
    /// An authorization response, but not this login's (another or no `state`): the login
    /// keeps waiting.
    NotThisLogin,
    /// No login is waiting any more.
    Over,
}

impl Paster {
    /// Delivers `address`, the full URL the browser ended on, and says what came of it.
    pub fn deliver(&self, address: &str) -> PasteOutcome {
        let (reply, outcome) = mpsc::channel();
        if self
            .tx
            .send(Event::Pasted(address.trim().to_owned(), reply))
            .is_err()
        {
            return PasteOutcome::Over;
        }
        outcome.recv().unwrap_or(PasteOutcome::Over)
    }
}

/// Ends a wait for the person (a [`CallbackListener::wait`], a device login's polling) from
/// another thread with [`ErrorKind::Cancelled`].
pub(crate) struct Canceller(Box<dyn Fn() -> bool + Send>);

impl Canceller {
    /// A canceller that runs `cancel`, which says whether the wait was still on.
    pub(crate) fn new(cancel: impl Fn() -> bool + Send + 'static) -> Canceller {
        Canceller(Box::new(cancel))
    }

    /// Cancels the wait; false when it was already over.
    pub(crate) fn cancel(&self) -> bool {
        (self.0)()
    }
}

/// The connections being read, oldest first. At most [`MAX_IN_FLIGHT`]: a new connection
/// beyond that closes the oldest, so connections that are opened and left idle (or fed a byte
/// at a time) can delay the real redirect by one eviction at most, never lock it out.
#[derive(Default)]
struct Reading {
    open: Mutex<VecDeque<(u64, TcpStream)>>,
    next_id: AtomicU64,
}

impl Reading {
    /// A slot for `stream`, closing the oldest connection being read when all are taken.
    /// `None` when the stream cannot be registered (no file descriptor for a clone).
    fn admit(self: &Arc<Self>, stream: &TcpStream) -> Option<Slot> {
        let handle = stream.try_clone().ok()?;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() >= MAX_IN_FLIGHT
            && let Some((_, oldest)) = open.pop_front()
        {
            // Its reader's read returns at once and the thread ends.
            let _ = oldest.shutdown(std::net::Shutdown::Both);
        }
        open.push_back((id, handle));
        Some(Slot {
            reading: Arc::clone(self),
            id,
        })
    }
}

/// One connection's place in [`Reading`], given back on drop.
struct Slot {
    reading: Arc<Reading>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.reading.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|(id, _)| *id != self.id);
    }
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
        let served = Served {
            port: self.port(),
            path: self.redirect_uri.path().into(),
        };
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

/// The page text for a response that arrives after the wait ended.
const FINISHED: &str = "No sign-in is waiting for this response any more.";

/// The thread that accepts connections while a wait lasts; dropping it stops the thread and
/// closes the listening socket.
struct Acceptor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Acceptor {
    fn start(listener: TcpListener, tx: Sender<Event>, served: Served) -> Result<Acceptor> {
        let addr = listener.local_addr().map_err(io_error)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("mcp-oauth-callback-accept".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || accept_loop(&listener, &tx, &served, &stop)
            })
            .map_err(io_error)?;
        Ok(Acceptor {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // accept() blocks: a connection of our own wakes it to see the flag. Should even that
        // fail, the thread ends with the next connection instead of hanging this one.
        let woke = TcpStream::connect_timeout(&self.addr, WRITE_TIMEOUT).is_ok();
        if let Some(thread) = self.thread.take()
            && woke
        {
            let _ = thread.join();
        }
    }
}

/// What the listener serves: its port (for the `Host` check) and the callback's path.
#[derive(Clone)]
struct Served {
    port: u16,
    path: Arc<str>,
}

/// How many times a free port is looked for on every address `localhost` names.
const BIND_ATTEMPTS: usize = 8;

/// Listeners on `port` (0: a free one) at 127.0.0.1, and for [`CallbackHost::Localhost`] at
/// `::1` and every other address `localhost` resolves to: a browser may try any of them first
/// (Chromium and Firefox resolve `localhost` themselves, `::1` first, whatever the hosts file
/// says), and one left to another user would receive the redirect, code and all. An address
/// taken is an error, not one left out; one the machine does not have (no IPv6) is left out.
fn bind_loopback(host: CallbackHost, port: u16) -> Result<Vec<TcpListener>> {
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
                Err(e) => log::debug!("{addr} is not available on this machine: {e}"),
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

fn check_callback_path(path: &str) -> Result<()> {
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

/// Accepts connections until `stop`, handing each to a reader thread.
fn accept_loop(listener: &TcpListener, tx: &Sender<Event>, served: &Served, stop: &AtomicBool) {
    let reading = Arc::new(Reading::default());
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match stream {
            Ok(stream) => dispatch(stream, tx, served, &reading),
            Err(e) => {
                // Out of file descriptors, say: back off instead of spinning.
                log::debug!("callback accept failed: {e}");
                std::thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// Reads one connection on its own thread (closing the oldest one being read when all slots
/// are taken), or answers `503` when it cannot be registered.
fn dispatch(mut stream: TcpStream, tx: &Sender<Event>, served: &Served, reading: &Arc<Reading>) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Some(slot) = reading.admit(&stream) else {
        respond(
            &mut stream,
            503,
            &pages::failure("Too many requests at once. Please try again."),
        );
        return;
    };
    let tx = tx.clone();
    let served = served.clone();
    let spawned = std::thread::Builder::new()
        .name("mcp-oauth-callback".into())
        .spawn(move || {
            let _slot = slot;
            read_candidate(stream, &served, &tx);
        });
    if let Err(e) = spawned {
        log::debug!("cannot start a callback reader: {e}");
    }
}

/// Reads and screens one request; a candidate goes to the waiting thread, anything else gets
/// its error page here.
fn read_candidate(mut stream: TcpStream, served: &Served, tx: &Sender<Event>) {
    let raw = read_head(&mut stream);
    match screen(&raw, served) {
        Ok(kind) => {
            if let Err(mpsc::SendError(Event::Request(mut late))) =
                tx.send(Event::Request(Candidate { stream, kind }))
            {
                respond(&mut late.stream, 400, &pages::failure(FINISHED));
            }
        }
        Err((status, message)) => {
            log::debug!("callback request refused with {status}");
            respond(&mut stream, status, &pages::failure(message));
            linger(stream);
        }
    }
}

/// Closes a connection whose request was not read to the end: the write side first, then a
/// short, bounded read of what is left, so that the client gets the page instead of a reset.
fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(LINGER));
    let _ = std::io::copy(&mut (&mut stream).take(64 * 1024), &mut std::io::sink());
}

/// The HTTP checks on one request head: well-formed, `GET`, the callback or the launch path
/// and a `Host` naming this listener. Returns what the request is for, or the status and
/// message to answer.
fn screen(raw: &[u8], served: &Served) -> Result<Kind, (u16, &'static str)> {
    let request = parse_callback_request(raw).map_err(|e| match e {
        CallbackParseError::TooLarge => (431, "The request was too large."),
        CallbackParseError::Incomplete => (408, "The request did not arrive in time."),
        CallbackParseError::Malformed => (400, "This was not a valid request."),
    })?;
    if request.method != "GET" {
        return Err((405, "Only GET is served here."));
    }
    let kind = match request.path.strip_prefix(LAUNCH_PATH) {
        Some(nonce) => Kind::Launch(nonce.to_owned()),
        None if request.path == *served.path => Kind::Callback(request.params),
        None => return Err((404, "Nothing is served at this path.")),
    };
    if !host_allowed(request.host.as_deref(), served.port) {
        return Err((400, "Unexpected Host header."));
    }
    Ok(kind)
}

/// True for `127.0.0.1:PORT`, `[::1]:PORT` and `localhost:PORT` (any case), the names this
/// listener serves.
fn host_allowed(host: Option<&str>, port: u16) -> bool {
    host.is_some_and(|h| {
        h == format!("127.0.0.1:{port}")
            || h == format!("[::1]:{port}")
            || h.eq_ignore_ascii_case(&format!("localhost:{port}"))
    })
}

fn io_error(e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Config,
        Step::Callback,
        "the callback listener failed",
    )
    .with_source(e)
}

/// Reads up to the end of the request head: at most [`MAX_CALLBACK_REQUEST`] + 1 KiB, within
/// [`READ_TIMEOUT`] in total however slowly the bytes come.
fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while buf.len() <= MAX_CALLBACK_REQUEST {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                // Only the new bytes (and the three before them) can complete the head.
                let from = buf.len().saturating_sub(3);
                buf.extend_from_slice(&chunk[..n]);
                if head_end(&buf[from..]).is_some() {
                    break;
                }
            }
        }
    }
    buf
}

/// A `302` to `location` (the launch URL's one redirect), never cached, no referrer.
fn redirect(stream: &mut TcpStream, location: &Url) {
    let head = format!(
        "HTTP/1.1 302 Found\r\n\
         Location: {location}\r\n\
         Content-Length: 0\r\n\
         Referrer-Policy: no-referrer\r\n\
         Cache-Control: no-store\r\n\
         Connection: close\r\n\r\n"
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.flush();
}

fn respond(stream: &mut TcpStream, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Bad Request",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'\r\n\
         X-Frame-Options: DENY\r\n\
         X-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\n\
         Cache-Control: no-store\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    fn served(port: u16) -> Served {
        Served {
            port,
            path: CALLBACK_PATH.into(),
        }
    }

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

    #[test]
    fn screening_answers_each_kind_of_bad_request() {
        let ok = b"GET /callback?code=c&state=s HTTP/1.1\r\nHost: 127.0.0.1:7\r\n\r\n";
        assert_eq!(
            screen(ok, &served(7)).unwrap(),
            Kind::Callback(params("code=c&state=s"))
        );
        let launch = b"GET /start/n0nce HTTP/1.1\r\nHost: 127.0.0.1:7\r\n\r\n";
        assert_eq!(
            screen(launch, &served(7)).unwrap(),
            Kind::Launch("n0nce".into())
        );
        let localhost = b"GET /callback HTTP/1.1\r\nHost: LOCALHOST:7\r\n\r\n";
        assert!(screen(localhost, &served(7)).is_ok());
        let status = |raw: &[u8]| screen(raw, &served(7)).unwrap_err().0;
        assert_eq!(
            status(b"POST /callback HTTP/1.1\r\nHost: 127.0.0.1:7\r\n\r\n"),
            405
        );
        assert_eq!(
            status(b"GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1:7\r\n\r\n"),
            404
        );
        assert_eq!(
            status(b"GET /callback HTTP/1.1\r\nHost: 127.0.0.1:8\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"GET /callback HTTP/1.1\r\nHost: evil.example:7\r\n\r\n"),
            400
        );
        assert_eq!(status(b"GET /callback HTTP/1.0\r\n\r\n"), 400);
        assert_eq!(status(b"GET /callback HTTP/1.1\r\nHo"), 408);
        assert_eq!(status(&[b'x'; MAX_CALLBACK_REQUEST + 2]), 431);
        assert_eq!(status(b"\x16\x03\x01\x02\x00\r\n\r\n"), 400);
    }
}
