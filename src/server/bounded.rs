//! A table keyed by string that stays within a number of entries and a number of bytes:
//! when an insert would pass either bound, the oldest entries are dropped first, each in
//! O(1) (a queue of keys in insertion order, never a scan of the table).
//!
//! The bytes are those the entries hold: each value's own size and heap strings (as its
//! [`Weigh`] says), its key (twice: in the map and in the queue) and its slots in both.
//! What comes on top is the map's and queue's spare capacity (at most the next power of
//! two of the largest number of entries held) and the allocator's rounding.

use std::collections::{HashMap, VecDeque};
use std::mem::size_of;

/// What a value holds on the heap, for a byte budget.
pub trait Weigh {
    /// Bytes of heap memory this value owns (strings, vectors, boxes), not its own size.
    fn heap_bytes(&self) -> usize;
}

impl Weigh for String {
    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
}

impl<T: Weigh> Weigh for Option<T> {
    fn heap_bytes(&self) -> usize {
        self.as_ref().map_or(0, Weigh::heap_bytes)
    }
}

/// The most a table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Entries at most.
    pub entries: usize,
    /// Bytes held at most, as [`Bounded::bytes_held`] counts them.
    pub bytes: usize,
}

struct Slot<V> {
    seq: u64,
    weight: usize,
    value: Box<V>,
}

/// Entries by key, with their keys in insertion order for eviction.
pub struct Bounded<V> {
    bounds: Bounds,
    map: HashMap<String, Slot<V>>,
    /// Keys in insertion order, with the sequence number that tells a live entry from one
    /// removed (or replaced by a later insert of the same key).
    order: VecDeque<(u64, String)>,
    next_seq: u64,
    /// Bytes of the live entries.
    live_bytes: usize,
    /// Bytes of queue entries whose map entry is gone, until they are popped.
    stale_bytes: usize,
}

/// What one queue entry holds: its slot and its copy of the key.
fn queue_weight(key: &str) -> usize {
    size_of::<(u64, String)>() + key.len()
}

impl<V: Weigh> Bounded<V> {
    /// An empty table within these bounds.
    pub fn new(bounds: Bounds) -> Self {
        Bounded {
            bounds,
            map: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
            live_bytes: 0,
            stale_bytes: 0,
        }
    }

    /// What one entry of this key and value holds, queue entry included.
    pub fn weight(key: &str, value: &V) -> usize {
        size_of::<(String, Slot<V>)>()
            + key.len()
            + size_of::<V>()
            + value.heap_bytes()
            + queue_weight(key)
    }

    /// Keep `value` under `key` (replacing any entry of that key), dropping the oldest
    /// entries first while either bound would be passed; how many were dropped. A value
    /// heavier than the whole byte budget is not kept (and nothing is dropped for it).
    pub fn insert(&mut self, key: String, value: V) -> usize {
        let weight = Self::weight(&key, &value);
        if weight > self.bounds.bytes || self.bounds.entries == 0 {
            return 0;
        }
        self.remove(&key);
        let mut dropped = 0;
        while self.map.len() >= self.bounds.entries
            || self.live_bytes + self.stale_bytes + weight > self.bounds.bytes
        {
            match self.pop_oldest() {
                Some(true) => dropped += 1,
                Some(false) => {}
                None => break,
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.push_back((seq, key.clone()));
        self.live_bytes += weight;
        self.map.insert(
            key,
            Slot {
                seq,
                weight,
                value: Box::new(value),
            },
        );
        dropped
    }

    /// Remove and return the oldest entry, skipping stale queue entries (each in O(1)
    /// amortised); `None` when the table is empty.
    pub fn pop_oldest_entry(&mut self) -> Option<(String, V)> {
        while let Some((seq, key)) = self.order.pop_front() {
            match self.map.get(&key) {
                Some(slot) if slot.seq == seq => {
                    let slot = self.map.remove(&key)?;
                    self.live_bytes -= slot.weight;
                    return Some((key, *slot.value));
                }
                _ => self.stale_bytes -= queue_weight(&key),
            }
        }
        None
    }

    /// Pop the front of the queue: `Some(true)` if it dropped a live entry, `Some(false)`
    /// for a stale queue entry, `None` when the queue is empty.
    fn pop_oldest(&mut self) -> Option<bool> {
        let (seq, key) = self.order.pop_front()?;
        if self.map.get(&key).is_some_and(|slot| slot.seq == seq) {
            let slot = self.map.remove(&key)?;
            self.live_bytes -= slot.weight;
            Some(true)
        } else {
            self.stale_bytes -= queue_weight(&key);
            Some(false)
        }
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key).map(|slot| &*slot.value)
    }

    /// Change the value under `key` in place, keeping its place in the order; the byte
    /// count follows the change. Whether there was one.
    pub fn update(&mut self, key: &str, change: impl FnOnce(&mut V)) -> bool {
        let Some(slot) = self.map.get_mut(key) else {
            return false;
        };
        change(&mut slot.value);
        let weight = Self::weight(key, &slot.value);
        self.live_bytes = self.live_bytes - slot.weight + weight;
        slot.weight = weight;
        // A value that grew may push the table over its budget: drop the oldest others.
        while self.live_bytes + self.stale_bytes > self.bounds.bytes && self.pop_oldest().is_some()
        {
        }
        true
    }

    /// Remove and return the value under `key`.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let slot = self.map.remove(key)?;
        self.live_bytes -= slot.weight;
        // Its queue entry stays until it reaches the front or the queue is compacted.
        self.stale_bytes += queue_weight(key);
        self.compact_if_sparse();
        Some(*slot.value)
    }

    /// Keep only the entries `keep` says yes to; how many were removed. O(n): for the
    /// periodic sweep, not for a request.
    pub fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) -> usize {
        let before = self.map.len();
        let mut freed = 0;
        self.map.retain(|_, slot| {
            let kept = keep(&slot.value);
            if !kept {
                freed += slot.weight;
            }
            kept
        });
        self.live_bytes -= freed;
        // Compaction drops the removed entries' queue entries, and so every stale byte.
        self.compact();
        before - self.map.len()
    }

    /// Drop queue entries of removed keys once they outnumber the live ones.
    fn compact_if_sparse(&mut self) {
        if self.order.len() > 2 * self.map.len() + 1024 {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let map = &self.map;
        self.order
            .retain(|(seq, key)| map.get(key).is_some_and(|slot| slot.seq == *seq));
        self.stale_bytes = 0;
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes the entries hold (see the module's documentation for what is counted).
    pub fn bytes_held(&self) -> usize {
        self.live_bytes + self.stale_bytes
    }

    /// The bounds this table keeps to.
    pub fn bounds(&self) -> Bounds {
        self.bounds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: usize, bytes: usize) -> Bounded<String> {
        Bounded::new(Bounds { entries, bytes })
    }

    #[test]
    fn the_oldest_go_first_when_the_count_is_reached() {
        let mut t = table(3, usize::MAX);
        for k in ["a", "b", "c"] {
            assert_eq!(t.insert(k.into(), k.into()), 0);
        }
        assert_eq!(t.insert("d".into(), "d".into()), 1);
        assert_eq!(t.len(), 3);
        assert!(t.get("a").is_none() && t.get("d").is_some());
    }

    #[test]
    fn the_oldest_go_first_when_the_bytes_are_reached() {
        let one = Bounded::<String>::weight("k0", &"x".repeat(100));
        let mut t = table(usize::MAX, 3 * one);
        for i in 0..10 {
            t.insert(format!("k{i}"), "x".repeat(100));
            assert!(t.bytes_held() <= 3 * one, "{}", t.bytes_held());
        }
        assert_eq!(t.len(), 3);
        assert!(t.get("k6").is_none() && t.get("k7").is_some() && t.get("k9").is_some());
        // Too heavy for the whole budget: refused, nothing dropped.
        assert_eq!(t.insert("big".into(), "x".repeat(4 * one)), 0);
        assert!(t.get("big").is_none());
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn removed_and_replaced_keys_are_accounted_and_skipped() {
        let mut t = table(2, usize::MAX);
        t.insert("a".into(), "1".into());
        t.insert("b".into(), "2".into());
        assert_eq!(t.remove("a").as_deref(), Some("1"));
        // Re-inserting a key moves it to the back; its old queue entry is stale.
        t.insert("b".into(), "3".into());
        t.insert("c".into(), "4".into());
        assert_eq!(t.len(), 2);
        assert_eq!(t.get("b").map(String::as_str), Some("3"));
        t.insert("d".into(), "5".into());
        assert!(t.get("b").is_none() && t.get("c").is_some() && t.get("d").is_some());
        let live: usize = ["c", "d"]
            .iter()
            .map(|k| Bounded::<String>::weight(k, t.get(k).unwrap()))
            .sum();
        assert!(t.bytes_held() >= live);
        t.retain(|_| false);
        assert_eq!((t.len(), t.bytes_held()), (0, 0));
    }

    #[test]
    fn an_update_changes_the_count_of_bytes() {
        let mut t = table(10, usize::MAX);
        t.insert("a".into(), "x".into());
        let before = t.bytes_held();
        assert!(t.update("a", |v| v.push_str(&"y".repeat(1000))));
        assert!(t.bytes_held() >= before + 1000);
        assert!(!t.update("missing", |_| {}));
    }

    #[test]
    fn many_removals_do_not_grow_the_queue() {
        let mut t = table(usize::MAX, usize::MAX);
        for i in 0..10_000 {
            t.insert(format!("k{i}"), String::new());
            t.remove(&format!("k{i}"));
        }
        assert!(t.order.len() <= 1025, "{}", t.order.len());
        assert!(t.bytes_held() <= 1025 * queue_weight("k10000"));
    }
}
