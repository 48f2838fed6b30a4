//! The HTTP+SSE transport of MCP revision 2024-11-05, deprecated since and still widely
//! deployed: a GET event stream whose first event, `endpoint`, names where to POST messages;
//! every message is POSTed there (answered 202) and every message of the server's, answers
//! included, comes as a `message` event on the stream. One stream is one MCP session: when it
//! ends, the requests it still owed are answered with an error, and the next message opens a
//! new one.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use url::Url;

use super::headers::content_type;
use super::sse::EventReader;
use super::{MAX_MESSAGE, Outgoing, STREAM_IDLE_TIMEOUT, Shared, UNANSWERED, lock};

/// How long a new event stream may take to name its endpoint: the messages waiting for it
/// (and the channel's lock) are held meanwhile.
const ENDPOINT_WAIT: Duration = Duration::from_secs(30);

/// An open event stream and where its messages go.
pub(super) struct Channel {
    /// The URL of the `endpoint` event, on the server's origin.
    endpoint: Url,
    /// The stream is still open.
    open: AtomicBool,
}

/// Sends a message over the channel, opening one first when there is none.
pub(super) fn forward(shared: &Arc<Shared>, outgoing: &Outgoing) {
    let channel = match channel(shared) {
        Ok(c) => c,
        Err(why) => return shared.fail(&outgoing.keys, &why),
    };
    let response = shared.send(|agent| {
        shared
            .with_static_headers(agent.post(channel.endpoint.as_str()))
            .content_type("application/json")
            .config()
            .max_redirects(0)
            .build()
            .send(&outgoing.body[..])
    });
    match response {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            let why = format!(
                "the MCP server answered HTTP {} to a message",
                r.status().as_u16()
            );
            shared.fail(&outgoing.keys, &why);
        }
        Err(e) => shared.fail(&outgoing.keys, &shared.unreached(&e)),
    }
}

/// The open channel, or a new one.
fn channel(shared: &Arc<Shared>) -> Result<Arc<Channel>, String> {
    let mut slot = lock(&shared.channel);
    if let Some(c) = slot.as_ref().filter(|c| c.open.load(Ordering::SeqCst)) {
        return Ok(Arc::clone(c));
    }
    let channel = open(shared)?;
    *slot = Some(Arc::clone(&channel));
    Ok(channel)
}

/// Opens the event stream (logging in when the server asks: a message of the client's is
/// waiting for it) and reads its `endpoint` event; the rest of the stream is read on a thread
/// of its own.
fn open(shared: &Arc<Shared>) -> Result<Arc<Channel>, String> {
    let response = shared
        .send(|agent| {
            shared
                .with_static_headers(agent.get(shared.url.as_str()))
                .header("accept", "text/event-stream")
                .config()
                .max_redirects(0)
                .timeout_per_read(Some(STREAM_IDLE_TIMEOUT))
                .build()
                .call()
        })
        .map_err(|e| shared.unreached(&e))?;
    let status = response.status().as_u16();
    if status != 200 || !content_type(&response).starts_with("text/event-stream") {
        return Err(format!(
            "the MCP server offers neither Streamable HTTP nor HTTP+SSE at this URL (its event \
             stream answered HTTP {status})"
        ));
    }
    let named = Arc::new(AtomicBool::new(false));
    let input = std::io::BufReader::new(UntilNamed {
        inner: response.into_body().into_reader(),
        deadline: Instant::now() + ENDPOINT_WAIT,
        named: Arc::clone(&named),
    });
    let mut reader = EventReader::with_budget(input, MAX_MESSAGE, Arc::clone(&shared.budget));
    let endpoint = loop {
        match reader.next_event() {
            Ok(Some(e)) if e.event == "endpoint" && e.cut.is_none() => {
                named.store(true, Ordering::SeqCst);
                break endpoint(shared, reader.data())?;
            }
            Ok(Some(_)) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(format!(
                    "the MCP server's event stream did not name its endpoint within {} s",
                    ENDPOINT_WAIT.as_secs()
                ));
            }
            Ok(None) | Err(_) => {
                return Err(
                    "the MCP server's event stream ended before naming its endpoint".into(),
                );
            }
        }
    };
    let channel = Arc::new(Channel {
        endpoint,
        open: AtomicBool::new(true),
    });
    let reading = Arc::clone(&channel);
    let worker = Arc::clone(shared);
    std::thread::Builder::new()
        .name("mcp-oauth-bridge-sse".into())
        .spawn(move || {
            worker.relay(&mut reader, Some("message"));
            reading.open.store(false, Ordering::SeqCst);
            // The session ended with its stream: what it owed will not come.
            worker.output.fail_all(
                UNANSWERED,
                "the MCP server's event stream (HTTP+SSE) ended before it answered",
            );
        })
        .map_err(|e| format!("cannot start the event stream thread: {e:#}"))?;
    Ok(channel)
}

/// The `endpoint` event's URL, resolved against the stream's, which must keep its origin: a
/// server may not send the messages, and the token with them, elsewhere.
fn endpoint(shared: &Shared, data: &[u8]) -> Result<Url, String> {
    let text = String::from_utf8_lossy(data);
    let url = shared
        .url
        .join(text.trim())
        .map_err(|_| "the MCP server's endpoint event is not a URL".to_owned())?;
    if url.origin() != shared.url.origin() {
        return Err(format!(
            "the MCP server's endpoint event names another origin ({}); not sent there",
            crate::error::printable(&url.origin().ascii_serialization())
        ));
    }
    Ok(url)
}

/// A new stream's reader: fails once its deadline has passed while the stream has not named
/// its endpoint (a server sending only comments would hold every message behind it forever;
/// the per-read timeout restarts with each one), and reads on without a bound once it has.
struct UntilNamed<R> {
    inner: R,
    deadline: Instant,
    named: Arc<AtomicBool>,
}

impl<R: Read> Read for UntilNamed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.named.load(Ordering::SeqCst) && Instant::now() > self.deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no endpoint event in time",
            ));
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that sends a comment every millisecond, forever.
    struct Pings;

    impl Read for Pings {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_millis(1));
            let ping = b": ping\n";
            let n = ping.len().min(buf.len());
            buf[..n].copy_from_slice(&ping[..n]);
            Ok(n)
        }
    }

    #[test]
    fn a_stream_of_comments_only_ends_the_wait_for_its_endpoint() {
        let named = Arc::new(AtomicBool::new(false));
        let input = std::io::BufReader::new(UntilNamed {
            inner: Pings,
            deadline: Instant::now() + Duration::from_millis(50),
            named: Arc::clone(&named),
        });
        let mut reader = EventReader::new(input, MAX_MESSAGE);
        let e = reader.next_event().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        // Once named, the same stream is read on past the deadline.
        let mut late = UntilNamed {
            inner: Pings,
            deadline: Instant::now(),
            named,
        };
        late.named.store(true, Ordering::SeqCst);
        assert!(late.read(&mut [0; 16]).is_ok());
    }
}
