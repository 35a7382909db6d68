//! The in-memory backend's signed-in sessions, by the SHA-256 of their cookie id (the ids themselves are not
//! kept), with the order they started in overall and per user, so that the oldest is found
//! in O(1) when a bound is reached (a scan of 100,000 sessions on every sign-in made the
//! server's throughput collapse once a long load test filled the table).

use std::collections::{HashMap, VecDeque};

/// SHA-256 of a session's cookie id.
pub type Key = [u8; 32];

/// How many signed-in sessions are kept, in all and per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// In all; past it the oldest session of anyone makes room.
    pub total: usize,
    /// Per user name; past it that user's own oldest session makes room.
    pub per_user: usize,
}

impl Default for Caps {
    /// 100,000 in all, 1,000 per user: the shipped demo accounts are shared by a class
    /// following the walkthrough, each person in a browser or two, and their passwords are
    /// public, so a flood of sign-ins as one of them may only push out that account's own
    /// oldest sessions, and 1,000 keeps a large class's browsers signed in meanwhile.
    fn default() -> Self {
        Caps {
            total: 100_000,
            per_user: 1_000,
        }
    }
}

/// One signed-in session.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The token its forms carry.
    pub csrf: String,
    /// Who signed in.
    pub username: String,
    /// Unix time it started.
    pub created: i64,
    /// A message for the next page this session opens (shown once), e.g. what a revoke did.
    pub notice: Option<String>,
    serial: u64,
}

/// One queue of sessions in the order they started; ended ones stay until their turn.
#[derive(Debug, Default)]
struct Queue {
    live: usize,
    order: VecDeque<(u64, Key)>,
}

/// The signed-in sessions.
#[derive(Debug)]
pub struct Table {
    caps: Caps,
    map: HashMap<Key, Entry>,
    order: VecDeque<(u64, Key)>,
    users: HashMap<String, Queue>,
    serial: u64,
}

fn is_live(map: &HashMap<Key, Entry>, serial: u64, key: &Key) -> bool {
    map.get(key).is_some_and(|e| e.serial == serial)
}

impl Table {
    /// An empty table with these bounds (each at least 1).
    pub fn new(caps: Caps) -> Table {
        Table {
            caps: Caps {
                total: caps.total.max(1),
                per_user: caps.per_user.max(1),
            },
            map: HashMap::new(),
            order: VecDeque::new(),
            users: HashMap::new(),
            serial: 0,
        }
    }

    /// Change the bounds (each at least 1); they apply from the next insert.
    pub fn set_caps(&mut self, caps: Caps) {
        self.caps = Caps {
            total: caps.total.max(1),
            per_user: caps.per_user.max(1),
        };
    }

    /// The session with this key, live or not.
    pub fn get(&self, key: &Key) -> Option<&Entry> {
        self.map.get(key)
    }

    /// The session with this key, to change, live or not.
    pub fn get_mut(&mut self, key: &Key) -> Option<&mut Entry> {
        self.map.get_mut(key)
    }

    /// How many sessions are held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// How many sessions of this user are held.
    pub fn len_for(&self, username: &str) -> usize {
        self.users.get(username).map_or(0, |q| q.live)
    }

    /// Add a session, first making room: expired ones go, then the oldest of anyone while
    /// the table is full, then this user's own oldest while they are at their cap.
    pub fn insert(&mut self, key: Key, username: &str, csrf: String, now: i64, lifetime: i64) {
        self.make_room(username, now, lifetime);
        self.serial += 1;
        let serial = self.serial;
        if let Some(old) = self.map.remove(&key) {
            self.forget(&old.username);
        }
        self.order.push_back((serial, key));
        let queue = self.users.entry(username.to_string()).or_default();
        queue.live += 1;
        queue.order.push_back((serial, key));
        self.map.insert(
            key,
            Entry {
                csrf,
                username: username.to_string(),
                created: now,
                notice: None,
                serial,
            },
        );
    }

    /// End a session; whether there was one.
    pub fn remove(&mut self, key: &Key) -> bool {
        match self.map.remove(key) {
            Some(entry) => {
                self.forget(&entry.username);
                true
            }
            None => false,
        }
    }

    /// Forget every session started at or before `now - lifetime`; how many.
    pub fn sweep(&mut self, now: i64, lifetime: i64) -> usize {
        let before = self.map.len();
        self.map.retain(|_, e| e.created + lifetime > now);
        let map = &self.map;
        self.order.retain(|(s, k)| is_live(map, *s, k));
        for queue in self.users.values_mut() {
            queue.order.retain(|(s, k)| is_live(map, *s, k));
            queue.live = queue.order.len();
        }
        self.users.retain(|_, q| q.live > 0);
        before - self.map.len()
    }

    fn make_room(&mut self, username: &str, now: i64, lifetime: i64) {
        while let Some(&(serial, key)) = self.order.front() {
            let (present, expired) = match self.map.get(&key) {
                Some(e) if e.serial == serial => (true, e.created + lifetime <= now),
                _ => (false, false),
            };
            if present && !expired && self.map.len() < self.caps.total {
                break;
            }
            self.order.pop_front();
            if present {
                self.remove(&key);
            }
        }
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order.retain(|(s, k)| is_live(map, *s, k));
        }
        let per_user = self.caps.per_user;
        while let Some(queue) = self.users.get_mut(username).filter(|q| q.live >= per_user) {
            let Some((serial, key)) = queue.order.pop_front() else {
                break;
            };
            if is_live(&self.map, serial, &key) {
                self.remove(&key);
            }
        }
    }

    /// One of this user's sessions has gone: count it, compact their queue now and then.
    fn forget(&mut self, username: &str) {
        let Some(queue) = self.users.get_mut(username) else {
            return;
        };
        queue.live = queue.live.saturating_sub(1);
        if queue.live == 0 {
            self.users.remove(username);
        } else if queue.order.len() > 2 * queue.live + 16 {
            let map = &self.map;
            queue.order.retain(|(s, k)| is_live(map, *s, k));
        }
    }

    /// Entries waiting in the queues, live or ended (for tests of the bounds).
    #[cfg(test)]
    fn queued(&self) -> (usize, usize) {
        (
            self.order.len(),
            self.users.values().map(|q| q.order.len()).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> Key {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&n.to_be_bytes());
        k
    }

    const DAY: i64 = 24 * 3600;

    #[test]
    fn a_full_table_drops_the_oldest_and_expired_sessions_go_first() {
        let mut table = Table::new(Caps {
            total: 3,
            per_user: 10,
        });
        table.insert(key(1), "a", "c1".into(), 100, DAY);
        table.insert(key(2), "b", "c2".into(), 200, DAY);
        table.insert(key(3), "c", "c3".into(), 300, DAY);
        assert!(table.remove(&key(2)), "ended");
        table.insert(key(4), "d", "c4".into(), 400, DAY);
        assert_eq!(table.len(), 3, "room was left by the ended one");
        table.insert(key(5), "e", "c5".into(), 500, DAY);
        assert!(table.get(&key(1)).is_none(), "full: the oldest made room");
        assert!(table.get(&key(3)).is_some());
        table.insert(key(6), "f", "c6".into(), 300 + DAY, DAY);
        assert!(table.get(&key(3)).is_none(), "expired");
        assert_eq!(table.len(), 3);
        assert_eq!(
            table.users.len(),
            3,
            "only users with live sessions are kept"
        );
    }

    #[test]
    fn one_users_flood_only_pushes_out_that_users_own_sessions() {
        let mut table = Table::new(Caps {
            total: 100,
            per_user: 5,
        });
        table.insert(key(0), "joseph-ross", "j".into(), 1, DAY);
        for n in 1..=10_000 {
            table.insert(key(n), "daniel-adams", "d".into(), 2, DAY);
        }
        assert_eq!(table.len_for("daniel-adams"), 5);
        assert_eq!(table.len(), 6);
        assert!(table.get(&key(0)).is_some(), "joseph is still signed in");
        assert!(table.get(&key(10_000)).is_some() && table.get(&key(9_995)).is_none());
        let (overall, per_user) = table.queued();
        assert!(
            overall <= 2 * 6 + 1024 && per_user <= 6 + 16 + 5,
            "{overall} {per_user}"
        );
    }

    #[test]
    fn ended_sessions_do_not_pile_up_in_the_queues() {
        let mut table = Table::new(Caps::default());
        for n in 0..50_000 {
            table.insert(key(n), "daniel-adams", "d".into(), 1, DAY);
            table.remove(&key(n));
        }
        assert_eq!(table.len(), 0);
        let (overall, per_user) = table.queued();
        assert!(overall <= 1024 + 1 && per_user == 0, "{overall} {per_user}");
    }

    #[test]
    fn the_sweep_recounts_every_queue() {
        let mut table = Table::new(Caps {
            total: 10,
            per_user: 3,
        });
        table.insert(key(1), "a", "c".into(), 100, 50);
        table.insert(key(2), "a", "c".into(), 120, 50);
        assert_eq!(table.sweep(160, 50), 1);
        assert_eq!(table.len_for("a"), 1);
        assert_eq!(table.sweep(300, 50), 1);
        assert!(table.users.is_empty());
    }
}
