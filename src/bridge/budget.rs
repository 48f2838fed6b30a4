//! How much of the server's answers the bridge holds at once: every buffer that receives an
//! answer (an event's data, a JSON body) reserves its capacity here first, so that a server
//! keeping many large answers in flight meets one bound, not one per answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A capacity shared by buffers.
#[derive(Debug)]
pub struct Budget {
    max: usize,
    used: AtomicUsize,
}

impl Budget {
    /// A budget of `max` bytes.
    pub fn new(max: usize) -> Budget {
        Budget {
            max,
            used: AtomicUsize::new(0),
        }
    }

    /// Takes `n` bytes if they are free.
    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(n).filter(|total| *total <= self.max)
            })
            .is_ok()
    }

    /// Gives `n` bytes back.
    fn give(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                Some(used.saturating_sub(n))
            });
    }

    /// The bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }
}

/// A buffer whose capacity is reserved from a [`Budget`] (when it has one) before it grows;
/// what it reserved goes back when it shrinks or is dropped.
#[derive(Debug, Default)]
pub struct Held {
    bytes: Vec<u8>,
    budget: Option<Arc<Budget>>,
    reserved: usize,
}

/// What a buffer keeps between messages without giving it back.
const KEEP: usize = 64 * 1024;

impl Held {
    /// An empty buffer drawing on `budget`.
    pub fn new(budget: Option<Arc<Budget>>) -> Held {
        Held {
            bytes: Vec::new(),
            budget,
            reserved: 0,
        }
    }

    /// Room for `more` bytes beyond what it holds; false when the budget has not that much
    /// left (nothing is taken then).
    pub fn make_room(&mut self, more: usize) -> bool {
        let wanted = self.bytes.len().saturating_add(more);
        if wanted <= self.bytes.capacity() {
            return true;
        }
        // Grow by doubling, as a vector does, but within what is wanted and reserved first.
        let target = wanted
            .max(self.bytes.capacity().saturating_mul(2))
            .max(KEEP);
        for size in [target, wanted] {
            let extra = size.saturating_sub(self.reserved);
            if self.budget.as_ref().is_none_or(|b| b.take(extra)) {
                self.reserved += extra;
                self.bytes.reserve_exact(size - self.bytes.len());
                return true;
            }
        }
        false
    }

    /// Empties the buffer; a large one gives its memory back.
    pub fn reset(&mut self) {
        self.bytes.clear();
        if self.bytes.capacity() > KEEP {
            self.bytes.shrink_to(KEEP);
        }
        let keep = self.bytes.capacity();
        if self.reserved > keep {
            if let Some(b) = &self.budget {
                b.give(self.reserved - keep);
            }
            self.reserved = keep;
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes, to change in place.
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.give(self.reserved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_share_one_bound_and_give_back_what_they_no_longer_hold() {
        let budget = Arc::new(Budget::new(1 << 20));
        let mut a = Held::new(Some(Arc::clone(&budget)));
        let mut b = Held::new(Some(Arc::clone(&budget)));
        assert!(a.make_room(700 * 1024));
        a.bytes_mut().resize(700 * 1024, 0);
        assert!(budget.used() >= 700 * 1024 && budget.used() <= 1 << 20);
        assert!(!b.make_room(400 * 1024), "over the shared bound");
        a.reset();
        assert!(budget.used() <= KEEP);
        assert!(b.make_room(400 * 1024));
        drop(b);
        drop(a);
        assert_eq!(budget.used(), 0);
    }
}
