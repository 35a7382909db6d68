//! Failed sign-ins as the store counts them: per user name and per client address, a count
//! within a window that starts at the first failure, and a pause once the count reaches the
//! limit. Also the in-memory backend's table of them, bounded per scope.

use std::collections::HashMap;

/// How many failures within how long pause sign-in, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Failures that start a pause; 0 turns this limit off.
    pub failures: u32,
    /// Seconds within which those failures must fall.
    pub window: i64,
    /// Seconds the pause lasts.
    pub pause: i64,
}

/// What a failure count is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureScope {
    /// A user name (trimmed and case-folded).
    User,
    /// A client address (IPv6 by its /64).
    Address,
}

impl FailureScope {
    /// The scope's name in SQL rows.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureScope::User => "user",
            FailureScope::Address => "address",
        }
    }
}

/// Where one name or address stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCount {
    /// Failures in the current window (0 once the window or a pause is over).
    pub failures: u32,
    /// Unix time the pause ends; 0 when not paused.
    pub paused_until: i64,
}

impl FailureCount {
    /// Seconds of pause left at `now`, if paused.
    pub fn paused_for(&self, now: i64) -> Option<i64> {
        (self.paused_until > now).then(|| self.paused_until - now)
    }
}

/// One row: the raw counters, before the window and pause are applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureRow {
    /// Failures counted since `window_start`.
    pub failures: u32,
    /// Unix time of the first failure of the window.
    pub window_start: i64,
    /// Unix time the pause ends; 0 when none was started.
    pub paused_until: i64,
    /// Unix time of the last failure.
    pub last_seen: i64,
}

impl FailureRow {
    /// Whether the counts start afresh at `now`: a pause is over, or the window has passed.
    pub fn lapsed(&self, limit: &Limit, now: i64) -> bool {
        self.paused_until <= now
            && (self.paused_until != 0 || self.window_start <= now - limit.window)
    }

    /// What the row means at `now`.
    pub fn standing(&self, limit: &Limit, now: i64) -> FailureCount {
        if self.lapsed(limit, now) {
            FailureCount::default()
        } else {
            FailureCount {
                failures: self.failures,
                paused_until: self.paused_until,
            }
        }
    }

    /// The row after one more failure at `now`: counted afresh when lapsed, not counted
    /// during a pause (attempts then do not prolong it), and paused on reaching the limit.
    pub fn after_failure(&self, limit: &Limit, now: i64) -> FailureRow {
        if self.paused_until > now {
            return FailureRow {
                last_seen: now,
                ..*self
            };
        }
        let (failures, window_start) = if self.lapsed(limit, now) || self.failures == 0 {
            (1, now)
        } else {
            (self.failures.saturating_add(1), self.window_start)
        };
        FailureRow {
            failures,
            window_start,
            paused_until: if failures >= limit.failures {
                now.saturating_add(limit.pause)
            } else {
                0
            },
            last_seen: now,
        }
    }

    /// Whether nothing in the row matters any more at `now`.
    pub fn stale(&self, limit: &Limit, now: i64) -> bool {
        self.lapsed(limit, now) || self.failures == 0
    }
}

/// The in-memory failure counts of one scope, at most `capacity` keys: when full, stale
/// keys go first, then the one whose last failure is oldest.
#[derive(Debug, Default)]
pub struct FailureTable {
    rows: HashMap<String, FailureRow>,
}

impl FailureTable {
    /// The key's row, if it has one.
    pub fn get(&self, key: &str) -> Option<&FailureRow> {
        self.rows.get(key)
    }

    /// Count a failure for `key` at `now`, first making room for a new key.
    pub fn fail(&mut self, key: &str, limit: &Limit, now: i64, capacity: usize) -> FailureRow {
        if !self.rows.contains_key(key) && self.rows.len() >= capacity.max(1) {
            self.rows.retain(|_, row| !row.stale(limit, now));
            while self.rows.len() >= capacity.max(1) {
                let oldest = self
                    .rows
                    .iter()
                    .min_by_key(|(_, row)| row.last_seen.max(row.paused_until))
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => self.rows.remove(&k),
                    None => break,
                };
            }
        }
        let row = self.rows.get(key).copied().unwrap_or_default();
        let next = row.after_failure(limit, now);
        self.rows.insert(key.to_string(), next);
        next
    }

    /// Forget a key's failures unless it is paused at `now`.
    pub fn clear(&mut self, key: &str, now: i64) {
        if self
            .rows
            .get(key)
            .is_some_and(|row| row.paused_until <= now)
        {
            self.rows.remove(key);
        }
    }

    /// Forget every key whose window and pause are over at `now` (by `window`); how many.
    pub fn sweep(&mut self, window: i64, now: i64) -> usize {
        let before = self.rows.len();
        self.rows
            .retain(|_, row| row.paused_until > now || row.window_start > now - window);
        before - self.rows.len()
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit {
        failures: 3,
        window: 100,
        pause: 50,
    };

    #[test]
    fn the_third_failure_pauses_and_failures_in_the_pause_do_not_prolong_it() {
        let mut table = FailureTable::default();
        assert_eq!(table.fail("u", &LIMIT, 10, 10).failures, 1);
        assert_eq!(table.fail("u", &LIMIT, 20, 10).failures, 2);
        let paused = table.fail("u", &LIMIT, 30, 10);
        assert_eq!((paused.failures, paused.paused_until), (3, 80));
        assert_eq!(table.fail("u", &LIMIT, 40, 10).paused_until, 80);
        let after = table.fail("u", &LIMIT, 80, 10);
        assert_eq!((after.failures, after.paused_until), (1, 0));
    }

    #[test]
    fn a_lapsed_window_starts_afresh_and_a_full_table_drops_the_oldest() {
        let mut table = FailureTable::default();
        table.fail("u", &LIMIT, 10, 2);
        assert_eq!(table.fail("u", &LIMIT, 110, 2).failures, 1);
        table.fail("v", &LIMIT, 120, 2);
        table.fail("w", &LIMIT, 130, 2);
        assert_eq!(table.len(), 2);
        assert!(table.get("u").is_none() && table.get("w").is_some());
        assert_eq!(table.sweep(100, 1000), 2);
        assert!(table.is_empty());
    }
}
