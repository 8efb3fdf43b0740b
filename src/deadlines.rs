//! A queue of deadlines keyed by what they wake, for the sans-IO machines that hold thousands of
//! timers: one heap, no timer per call. Re-arming a key supersedes its earlier deadline.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// Deadlines for keys of type `K`; at most one live deadline per key.
#[derive(Debug)]
pub struct Deadlines<K: Clone + Eq + Hash + Ord> {
    heap: BinaryHeap<Reverse<(Instant, u64, K)>>,
    live: HashMap<K, u64>,
    next_generation: u64,
}

impl<K: Clone + Eq + Hash + Ord> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            heap: BinaryHeap::new(),
            live: HashMap::new(),
            next_generation: 0,
        }
    }
}

impl<K: Clone + Eq + Hash + Ord> Deadlines<K> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms (or re-arms) `key` to fire at `at`.
    pub fn set(&mut self, key: K, at: Instant) {
        self.next_generation += 1;
        self.live.insert(key.clone(), self.next_generation);
        self.heap.push(Reverse((at, self.next_generation, key)));
        // Stale entries are dropped lazily; rebuild when they dominate so memory stays bounded.
        if self.heap.len() > 64 && self.heap.len() > 4 * self.live.len() {
            let live = &self.live;
            self.heap
                .retain(|Reverse((_, g, k))| live.get(k) == Some(g));
        }
    }

    /// Disarms `key`.
    pub fn clear(&mut self, key: &K) {
        self.live.remove(key);
    }

    /// The earliest live deadline.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns a key whose deadline is at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        self.drop_stale();
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                let Reverse((_, _, key)) = self.heap.pop()?;
                self.live.remove(&key);
                Some(key)
            }
            _ => None,
        }
    }

    /// Number of armed keys.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether nothing is armed.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Gives back table space left over from a load peak.
    pub fn shrink(&mut self) {
        self.drop_stale();
        crate::memory::shrink_sparse(&mut self.live);
        crate::memory::shrink_sparse_heap(&mut self.heap);
    }

    fn drop_stale(&mut self) {
        while let Some(Reverse((_, generation, key))) = self.heap.peek() {
            if self.live.get(key) == Some(generation) {
                break;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_order_and_rearming_supersedes() {
        let t0 = Instant::now();
        let mut d = Deadlines::new();
        d.set("a", t0 + Duration::from_secs(3));
        d.set("b", t0 + Duration::from_secs(1));
        d.set("a", t0 + Duration::from_secs(2));
        assert_eq!(d.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(d.pop_due(t0), None);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(d.pop_due(later), Some("b"));
        assert_eq!(d.pop_due(later), Some("a"));
        assert_eq!(d.pop_due(later), None);
        assert!(d.is_empty());
    }

    #[test]
    fn cleared_keys_never_fire_and_heap_stays_bounded() {
        let t0 = Instant::now();
        let mut d = Deadlines::new();
        for i in 0..10_000u32 {
            d.set(i % 10, t0 + Duration::from_millis(i as u64));
        }
        assert!(d.heap.len() <= 4 * 10 + 64);
        d.clear(&3);
        let fired: Vec<_> =
            std::iter::from_fn(|| d.pop_due(t0 + Duration::from_secs(60))).collect();
        assert_eq!(fired.len(), 9);
        assert!(!fired.contains(&3));
    }
}
