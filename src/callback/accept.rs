//! The listener's connections while a wait lasts: one thread accepts, each connection is read
//! on its own thread (bounded in size, time and number: the oldest one being read is closed for
//! a new one beyond [`MAX_IN_FLIGHT`]), screened (well-formed `GET` of a served path with this
//! listener's `Host`), and either handed to the waiting thread or answered with an error page.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use super::events::{Candidate, Event, Kind};
use super::io_error;
use super::pages;
use super::request::{CallbackParseError, MAX_CALLBACK_REQUEST, head_end, parse_callback_request};
use crate::error::Result;

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

/// The path prefix of the one-time launch URL ([`CallbackListener::launch_url`](super::CallbackListener::launch_url)).
pub(super) const LAUNCH_PATH: &str = "/start/";

/// The page text for a response that arrives after the wait ended.
pub(super) const FINISHED: &str = "No sign-in is waiting for this response any more.";

/// The connections being read, oldest first, on every address of the listener. At most
/// [`MAX_IN_FLIGHT`]: a new connection beyond that closes the oldest, so connections that are
/// opened and left idle (or fed a byte at a time) can delay the real redirect by one eviction
/// at most, never lock it out.
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

/// The thread that accepts connections while a wait lasts; dropping it stops the thread and
/// closes the listening socket.
pub(super) struct Acceptor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Acceptor {
    pub(super) fn start(
        listener: TcpListener,
        tx: Sender<Event>,
        served: Served,
    ) -> Result<Acceptor> {
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

/// What the listener serves: its port (for the `Host` check) and the callback's path; and the
/// connections being read, shared by the acceptors of every address it listens on.
#[derive(Clone)]
pub(super) struct Served {
    pub(super) port: u16,
    pub(super) path: Arc<str>,
    reading: Arc<Reading>,
}

impl Served {
    pub(super) fn new(port: u16, path: &str) -> Served {
        Served {
            port,
            path: path.into(),
            reading: Arc::default(),
        }
    }
}

/// Accepts connections until `stop`, handing each to a reader thread.
fn accept_loop(listener: &TcpListener, tx: &Sender<Event>, served: &Served, stop: &AtomicBool) {
    let reading = &served.reading;
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match stream {
            Ok(stream) => dispatch(stream, tx, served, reading),
            Err(e) => {
                // Out of file descriptors, say: back off instead of spinning.
                log::debug!("callback accept failed: {e:#}");
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
        log::debug!("cannot start a callback reader: {e:#}");
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
pub(super) fn redirect(stream: &mut TcpStream, location: &Url) {
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

/// Answers with `status` and an HTML page.
pub(super) fn respond(stream: &mut TcpStream, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        403 => "Forbidden",
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
    use crate::callback::CALLBACK_PATH;
    use crate::callback::test_params as params;

    fn served(port: u16) -> Served {
        Served::new(port, CALLBACK_PATH)
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
