//! What the bridge writes to its client: each message of the server's on one line, as the
//! server sent it, and exactly one answer for each request the client sent (the server's, or
//! an error saying why there is none). The requests still awaited are kept here, so a late
//! or second answer is dropped instead of written twice.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::message::{Kind, Message, batch_items, id_key, to_one_line};

/// A request of the client's that awaits its answer.
struct Awaited {
    /// Its id as the client sent it.
    id: Box<RawValue>,
    /// Set when the client cancels it (revision 2026-07-28: the stream carrying its answer is
    /// closed instead of a notification sent).
    cancelled: Arc<AtomicBool>,
    /// It named a protocol version in `_meta` (revision 2026-07-28 on).
    stateless: bool,
}

/// The client's side of the bridge.
pub(super) struct Output {
    out: Mutex<Box<dyn Write + Send>>,
    awaited: Mutex<HashMap<String, Awaited>>,
    answered: Condvar,
    /// The client is gone, or the bridge has ended: nothing more is written.
    closed: AtomicBool,
}

impl Output {
    pub(super) fn new(out: Box<dyn Write + Send>) -> Output {
        Output {
            out: Mutex::new(out),
            awaited: Mutex::new(HashMap::new()),
            answered: Condvar::new(),
            closed: AtomicBool::new(false),
        }
    }

    fn awaited(&self) -> MutexGuard<'_, HashMap<String, Awaited>> {
        self.awaited.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether nothing more is written.
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Writes no more, from now on.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Records that the request `key` (id `id`) awaits its answer; returns the flag its
    /// cancellation sets.
    pub(super) fn expect(&self, key: String, id: &RawValue, stateless: bool) -> Arc<AtomicBool> {
        let cancelled = Arc::new(AtomicBool::new(false));
        let awaited = Awaited {
            id: id.to_owned(),
            cancelled: Arc::clone(&cancelled),
            stateless,
        };
        self.awaited().insert(key, awaited);
        cancelled
    }

    /// Whether the request `key` still awaits its answer.
    pub(super) fn awaits(&self, key: &str) -> bool {
        self.awaited().contains_key(key)
    }

    /// Cancels the stateless request `key`: its answer is not awaited any more and the
    /// exchange carrying it stops. False when there is no such request (it was answered, or it
    /// is of an older revision, whose servers are told by the notification itself).
    pub(super) fn cancel_stateless(&self, key: &str) -> bool {
        let mut awaited = self.awaited();
        if !awaited.get(key).is_some_and(|a| a.stateless) {
            return false;
        }
        if let Some(a) = awaited.remove(key) {
            a.cancelled.store(true, Ordering::SeqCst);
        }
        self.answered.notify_all();
        true
    }

    /// Writes a message of the server's (valid JSON; made one line in place), or each message
    /// of a batch. An answer to a request no longer awaited is dropped. Returns the keys of the
    /// requests it answered.
    pub(super) fn write_server_message(&self, bytes: &mut [u8]) -> Vec<String> {
        to_one_line(bytes);
        let text: &[u8] = bytes;
        let items: Vec<&[u8]> = if text.trim_ascii_start().starts_with(b"[") {
            batch_items(text)
                .into_iter()
                .map(|m| m.get().as_bytes())
                .collect()
        } else {
            vec![text]
        };
        let mut answered = Vec::new();
        for item in items {
            let Ok(message) = Message::parse(item) else {
                log::debug!("bridge: the server sent something that is not a message");
                continue;
            };
            if message.kind == Kind::Response
                && let Some(key) = message.id_key()
            {
                if self.awaited().remove(&key).is_none() {
                    log::debug!("bridge: an answer to a request no longer awaited was dropped");
                    continue;
                }
                self.answered.notify_all();
                answered.push(key);
            }
            self.write_line(item);
        }
        answered
    }

    /// An error answering the request `key`, if it still awaits one.
    pub(super) fn fail(&self, key: &str, code: i64, why: &str) {
        let Some(awaited) = self.awaited().remove(key) else {
            return;
        };
        self.answered.notify_all();
        let id: Value = serde_json::from_str(awaited.id.get()).unwrap_or(Value::Null);
        self.error(&id, code, why);
    }

    /// An error for a message that was not taken as a request (not JSON, too large): with the
    /// id it could be read to have, else `null`.
    pub(super) fn error(&self, id: &Value, code: i64, why: &str) {
        let message = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": why}});
        self.write_line(message.to_string().as_bytes());
    }

    /// Errors for every request still awaited.
    pub(super) fn fail_all(&self, code: i64, why: &str) {
        let keys: Vec<String> = self.awaited().keys().cloned().collect();
        for key in keys {
            self.fail(&key, code, why);
        }
    }

    /// Waits up to `timeout` for every request to be answered; the number still awaited.
    pub(super) fn wait_answered(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut awaited = self.awaited();
        while !awaited.is_empty() && !self.is_closed() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            awaited = self
                .answered
                .wait_timeout(awaited, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        awaited.len()
    }

    /// Writes one line; a failed write means the client is gone.
    fn write_line(&self, line: &[u8]) {
        if self.is_closed() {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let written = out
            .write_all(line)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        if written.is_err() {
            self.close();
        }
    }
}

/// The keys of the requests in a message of the client's (one request, or a batch).
pub(super) fn request_keys(bytes: &[u8]) -> Vec<(String, Box<RawValue>)> {
    let one = |item: &[u8]| -> Option<(String, Box<RawValue>)> {
        let m = Message::parse(item).ok()?;
        (m.kind == Kind::Request).then_some(())?;
        let id = m.id?;
        Some((id_key(id)?, id.to_owned()))
    };
    if bytes.trim_ascii_start().starts_with(b"[") {
        batch_items(bytes)
            .into_iter()
            .filter_map(|m| one(m.get().as_bytes()))
            .collect()
    } else {
        one(bytes).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output writing into a shared buffer.
    fn output() -> (Output, Arc<Mutex<Vec<u8>>>) {
        #[derive(Clone)]
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Arc::new(Mutex::new(Vec::new()));
        (Output::new(Box::new(Shared(Arc::clone(&buf)))), buf)
    }

    fn lines(buf: &Arc<Mutex<Vec<u8>>>) -> Vec<String> {
        String::from_utf8(buf.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn each_request_gets_one_answer() {
        let (out, buf) = output();
        out.expect("1".into(), &raw("1"), false);
        out.write_server_message(&mut b"{\"jsonrpc\":\"2.0\",\n\"id\":1,\"result\":{}}".to_vec());
        // A second answer, and an error after the answer: dropped.
        out.write_server_message(&mut br#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_vec());
        out.fail("1", -32000, "late");
        // The server's own requests and notifications pass.
        out.write_server_message(
            &mut br#"{"jsonrpc":"2.0","method":"notifications/message"}"#.to_vec(),
        );
        assert_eq!(
            lines(&buf),
            [
                r#"{"jsonrpc":"2.0", "id":1,"result":{}}"#,
                r#"{"jsonrpc":"2.0","method":"notifications/message"}"#
            ]
        );
    }

    #[test]
    fn what_is_left_gets_errors_and_a_closed_output_writes_nothing() {
        let (out, buf) = output();
        out.expect("\"a\"".into(), &raw("\"a\""), false);
        out.expect("2".into(), &raw("2"), true);
        assert!(!out.cancel_stateless("\"a\""), "not stateless");
        assert!(out.cancel_stateless("2"));
        assert_eq!(out.wait_answered(Duration::from_millis(10)), 1);
        out.fail_all(-32000, "ending");
        assert_eq!(lines(&buf).len(), 1);
        assert!(lines(&buf)[0].contains(r#""id":"a""#));
        out.close();
        out.error(&Value::Null, -32700, "x");
        assert_eq!(lines(&buf).len(), 1);
    }

    #[test]
    fn request_keys_of_a_message_or_a_batch() {
        let keys = |s: &str| -> Vec<String> {
            request_keys(s.as_bytes())
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(keys(r#"{"id":"x","method":"ping"}"#), [r#""x""#]);
        assert_eq!(
            keys(r#"{"method":"notifications/initialized"}"#),
            Vec::<String>::new()
        );
        assert_eq!(
            keys(r#"[{"id":1,"method":"a"},{"method":"b"},{"id":2,"result":{}}]"#),
            ["1"]
        );
    }
}
