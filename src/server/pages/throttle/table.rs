//! The failure counts of user names or addresses: a sliding window, a pause and the attempts
//! in progress per key, in a map that never holds more than its capacity of idle keys.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::Limit;

/// The failures of one name or address.
#[derive(Debug, Default)]
pub(super) struct Entry {
    pub(super) failures: VecDeque<i64>,
    pub(super) paused_until: i64,
    /// Attempts let in whose outcome is not known yet.
    pub(super) pending: u32,
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

    fn idle(&self) -> bool {
        self.pending == 0 && self.failures.is_empty() && self.paused_until == 0
    }

    fn last_seen(&self) -> i64 {
        self.failures
            .back()
            .copied()
            .unwrap_or(0)
            .max(self.paused_until)
    }
}

/// Whether one more attempt fits beside the failures and attempts in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    /// It fits.
    Open,
    /// Only after an attempt in progress has its outcome.
    Full,
}

/// A bounded map of entries under one limit.
#[derive(Debug)]
pub(super) struct Table {
    pub(super) limit: Limit,
    capacity: usize,
    pub(super) entries: HashMap<String, Entry>,
}

impl Table {
    pub(super) fn new(limit: Limit, capacity: usize) -> Table {
        Table {
            limit,
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    fn on(&self) -> bool {
        self.limit.failures > 0
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Seconds left of this key's pause, if it is paused.
    pub(super) fn paused_for(&mut self, key: &str, now: i64) -> Option<i64> {
        let entry = self.entries.get_mut(key)?;
        entry.refresh(&self.limit, now);
        entry.paused_for(now)
    }

    /// Paused (`Err` with the seconds left), room for one more attempt, or full for now.
    pub(super) fn admission(&mut self, key: &str, now: i64) -> Result<Admission, i64> {
        if !self.on() {
            return Ok(Admission::Open);
        }
        let Some(entry) = self.entries.get_mut(key) else {
            return Ok(Admission::Open);
        };
        entry.refresh(&self.limit, now);
        if let Some(wait) = entry.paused_for(now) {
            return Err(wait);
        }
        let in_play = entry.failures.len() + entry.pending as usize;
        Ok(if in_play < self.limit.failures as usize {
            Admission::Open
        } else {
            Admission::Full
        })
    }

    /// Hold a slot for an attempt let in.
    pub(super) fn start(&mut self, key: &str, now: i64) {
        if !self.on() {
            return;
        }
        if !self.entries.contains_key(key) {
            self.make_room(now);
        }
        self.entries.entry(key.to_string()).or_default().pending += 1;
    }

    /// Give back an attempt's slot; a key with nothing left to remember is dropped.
    pub(super) fn finish(&mut self, key: &str) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.pending = entry.pending.saturating_sub(1);
            if entry.idle() {
                self.entries.remove(key);
            }
        }
    }

    /// Count a failure now; reaching the limit starts the pause.
    pub(super) fn fail(&mut self, key: &str, now: i64) {
        if !self.on() {
            return;
        }
        if !self.entries.contains_key(key) {
            self.make_room(now);
        }
        let limit = self.limit;
        let entry = self.entries.entry(key.to_string()).or_default();
        entry.refresh(&limit, now);
        entry.failures.push_back(now);
        // Only the latest `failures` times can ever matter.
        while entry.failures.len() > limit.failures as usize {
            entry.failures.pop_front();
        }
        if entry.failures.len() >= limit.failures as usize {
            entry.paused_until = now + limit.pause;
        }
    }

    /// Forget a key's failures (a pause it is in stays).
    pub(super) fn clear_failures(&mut self, key: &str) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.failures.clear();
            if entry.idle() {
                self.entries.remove(key);
            }
        }
    }

    /// How many more failures this key may have before a pause.
    pub(super) fn failures_left(&self, key: &str) -> u32 {
        let used = self.entries.get(key).map_or(0, |e| e.failures.len());
        (self.limit.failures as usize).saturating_sub(used) as u32
    }

    /// Below capacity after dropping what is stale, then the oldest idle-but-remembered
    /// keys. Keys with an attempt in progress are never dropped.
    fn make_room(&mut self, now: i64) {
        if self.entries.len() < self.capacity {
            return;
        }
        let limit = self.limit;
        self.entries.retain(|_, e| {
            e.refresh(&limit, now);
            !e.idle()
        });
        while self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .filter(|(_, e)| e.pending == 0)
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
