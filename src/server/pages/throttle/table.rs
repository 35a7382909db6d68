//! The failure counts of user names or addresses: a sliding window and a pause per key, in
//! a map that never holds more than its capacity.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::Limit;

/// The failures of one name or address.
#[derive(Debug, Default)]
pub(super) struct Entry {
    pub(super) failures: VecDeque<i64>,
    pub(super) paused_until: i64,
}

impl Entry {
    /// Forget failures older than the window, and a pause that is over (with its failures).
    fn refresh(&mut self, limit: &Limit, now: i64) {
        if self.paused_until != 0 && self.paused_until <= now {
            self.paused_until = 0;
            self.failures.clear();
        }
        while self
            .failures
            .front()
            .is_some_and(|&t| t <= now - limit.window)
        {
            self.failures.pop_front();
        }
    }

    fn paused_for(&self, now: i64) -> Option<i64> {
        (self.paused_until > now).then(|| self.paused_until - now)
    }

    fn count(&mut self, limit: &Limit, now: i64) {
        self.failures.push_back(now);
        // Only the latest `failures` times can ever matter.
        while self.failures.len() > limit.failures.max(1) as usize {
            self.failures.pop_front();
        }
        if limit.failures > 0 && self.failures.len() >= limit.failures as usize {
            self.paused_until = now + limit.pause;
        }
    }

    fn last_seen(&self) -> i64 {
        self.failures
            .back()
            .copied()
            .unwrap_or(0)
            .max(self.paused_until)
    }
}

/// A bounded map of entries.
#[derive(Debug)]
pub(super) struct Table {
    pub(super) limit: Limit,
    pub(super) entries: HashMap<String, Entry>,
}

impl Table {
    pub(super) fn new(limit: Limit) -> Table {
        Table {
            limit,
            entries: HashMap::new(),
        }
    }

    pub(super) fn paused_for(&mut self, key: &str, now: i64) -> Option<i64> {
        let entry = self.entries.get_mut(key)?;
        entry.refresh(&self.limit, now);
        entry.paused_for(now)
    }

    pub(super) fn count(&mut self, key: &str, now: i64, capacity: usize) {
        if !self.entries.contains_key(key) {
            self.make_room(now, capacity);
        }
        let limit = self.limit;
        let entry = self.entries.entry(key.to_string()).or_default();
        entry.refresh(&limit, now);
        entry.count(&limit, now);
    }

    fn make_room(&mut self, now: i64, capacity: usize) {
        if self.entries.len() < capacity.max(1) {
            return;
        }
        let limit = self.limit;
        self.entries.retain(|_, e| {
            e.refresh(&limit, now);
            !e.failures.is_empty() || e.paused_until != 0
        });
        while self.entries.len() >= capacity.max(1) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_seen())
                .map(|(k, _)| k.clone());
            match oldest {
                Some(key) => self.entries.remove(&key),
                None => break,
            };
        }
    }
}

/// Names compare trimmed and case-folded, and only their first 256 characters count.
pub(super) fn user_key(username: &str) -> String {
    username
        .trim()
        .chars()
        .take(256)
        .collect::<String>()
        .to_lowercase()
}

/// IPv4 addresses whole (also when mapped into IPv6), IPv6 by their /64.
pub(super) fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}
