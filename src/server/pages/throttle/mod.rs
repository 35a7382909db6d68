//! Sign-in brute-force limiting: failed sign-ins are counted per user name and per client
//! address, and too many within a window pause sign-in for that name (or address) a while.
//!
//! Choices, since no standard settles them:
//! - An attempt is counted *before* its password is checked, and a correct password takes the
//!   count back. So a burst of parallel guesses cannot slip past the limit while the slow hash
//!   runs: exactly `failures` passwords are ever checked per window.
//! - While a name is paused, no password is checked for it at all, the right one included:
//!   sign-in says so and when to come back (HTTP 429 with Retry-After). Attempts made during
//!   a pause do not prolong it, so the rightful user is back after a known wait.
//! - Unknown names are counted like real ones, so pausing reveals nothing about which exist.
//!   Names are compared trimmed and case-folded so `Daniel-Adams` is not a fresh start.
//! - A success clears the name's failures but not the address's: otherwise signing in to
//!   one's own account would reset a password-spraying run across other names. The address
//!   limit is higher than the name limit for the same reason people share addresses.
//! - The address is the TCP peer (IPv6 by its /64, what one subscriber usually holds).
//!   Forwarded-for headers are not trusted; behind a reverse proxy every client shares the
//!   proxy's address, so raise `per_address` there or accept that it throttles everyone.
//! - Memory is bounded: each table keeps at most `capacity` names or addresses. When full,
//!   stale entries go first, then the one whose last failure or pause is oldest.

mod table;

use std::net::IpAddr;
use std::sync::Mutex;

use crate::server::clock::Clock;
use table::{address_key, user_key, Table};

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

/// The sign-in limits of one server.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Per user name: 5 failures within 15 minutes pause that name for 15 minutes.
    pub per_user: Limit,
    /// Per client address: 20 failures (over any names) within 15 minutes pause it 15 minutes.
    pub per_address: Limit,
    /// The most names (and, separately, addresses) remembered at once.
    pub capacity: usize,
    /// The clock the windows and pauses are measured by.
    pub clock: Clock,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_user: Limit {
                failures: 5,
                window: 15 * 60,
                pause: 15 * 60,
            },
            per_address: Limit {
                failures: 20,
                window: 15 * 60,
                pause: 15 * 60,
            },
            capacity: 10_000,
            clock: Clock::system(),
        }
    }
}

/// Why sign-in is paused, and for how many more seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paused {
    /// Too many failures for this user name.
    User(i64),
    /// Too many failures from this client address.
    Address(i64),
}

impl Paused {
    /// Seconds until sign-in is possible again (at least 1).
    pub fn retry_after(&self) -> i64 {
        match *self {
            Paused::User(s) | Paused::Address(s) => s.max(1),
        }
    }

    /// What the sign-in page says.
    pub fn message(&self) -> String {
        let minutes = (self.retry_after() + 59) / 60;
        let unit = if minutes == 1 { "minute" } else { "minutes" };
        match self {
            Paused::User(_) => {
                format!("Too many failed sign-ins for this user; try again in {minutes} {unit}.")
            }
            Paused::Address(_) => format!(
                "Too many failed sign-ins from your network address; try again in {minutes} {unit}."
            ),
        }
    }
}

/// Where a name stands after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Sign-in is now paused.
    Paused(Paused),
    /// This many more failures are allowed before a pause.
    Left(u32),
}

/// One counted attempt, to report the outcome of.
#[derive(Debug)]
pub struct Attempt {
    user: String,
    address: Option<String>,
    at: i64,
}

/// The failed sign-ins a server remembers.
#[derive(Debug)]
pub struct Throttle {
    clock: Clock,
    capacity: usize,
    tables: Mutex<(Table, Table)>,
}

impl Throttle {
    /// A throttle with these limits and nothing counted yet.
    pub fn new(limits: LoginLimits) -> Throttle {
        Throttle {
            clock: limits.clock,
            capacity: limits.capacity,
            tables: Mutex::new((Table::new(limits.per_user), Table::new(limits.per_address))),
        }
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, (Table, Table)> {
        // A panic elsewhere cannot leave two counters half-written: keep using them.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Before a password is checked: refuse while paused, else count the attempt.
    pub fn begin(&self, username: &str, address: Option<IpAddr>) -> Result<Attempt, Paused> {
        let now = self.clock.now();
        let attempt = Attempt {
            user: user_key(username),
            address: address.map(address_key),
            at: now,
        };
        let mut tables = self.tables();
        let (users, addresses) = &mut *tables;
        if let Some(wait) = users.paused_for(&attempt.user, now) {
            return Err(Paused::User(wait));
        }
        if let Some(key) = &attempt.address {
            if let Some(wait) = addresses.paused_for(key, now) {
                return Err(Paused::Address(wait));
            }
            addresses.count(key, now, self.capacity);
        }
        users.count(&attempt.user, now, self.capacity);
        Ok(attempt)
    }

    /// The password was right: the name starts afresh, and the address's count gives back
    /// this attempt (lifting a pause this very attempt started).
    pub fn succeeded(&self, attempt: Attempt) {
        let mut tables = self.tables();
        let (users, addresses) = &mut *tables;
        users.entries.remove(&attempt.user);
        let Some(key) = &attempt.address else { return };
        let limit = addresses.limit;
        if let Some(entry) = addresses.entries.get_mut(key) {
            if let Some(i) = entry.failures.iter().rposition(|&t| t == attempt.at) {
                entry.failures.remove(i);
            }
            if entry.failures.len() < limit.failures as usize {
                entry.paused_until = 0;
            }
        }
    }

    /// The password was wrong (the attempt is already counted): where the name stands now.
    pub fn failed(&self, attempt: &Attempt) -> Standing {
        let now = self.clock.now();
        let mut tables = self.tables();
        let (users, addresses) = &mut *tables;
        if let Some(wait) = users.paused_for(&attempt.user, now) {
            return Standing::Paused(Paused::User(wait));
        }
        if let Some(key) = &attempt.address {
            if let Some(wait) = addresses.paused_for(key, now) {
                return Standing::Paused(Paused::Address(wait));
            }
        }
        let used = users
            .entries
            .get(&attempt.user)
            .map_or(0, |e| e.failures.len());
        Standing::Left((users.limit.failures as usize).saturating_sub(used) as u32)
    }

    /// Seconds a user name is paused for once it reaches its limit.
    pub fn user_pause(&self) -> i64 {
        self.tables().0.limit.pause
    }

    /// How many names and addresses are remembered (for tests of the bound).
    pub fn remembered(&self) -> (usize, usize) {
        let tables = self.tables();
        (tables.0.entries.len(), tables.1.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::table::address_key;
    use super::*;

    const START: i64 = 1_800_000_000;

    fn throttle(user_failures: u32, address_failures: u32, capacity: usize) -> (Throttle, Clock) {
        let clock = Clock::manual(START);
        let limits = LoginLimits {
            per_user: Limit {
                failures: user_failures,
                window: 900,
                pause: 900,
            },
            per_address: Limit {
                failures: address_failures,
                window: 900,
                pause: 600,
            },
            capacity,
            clock: clock.clone(),
        };
        (Throttle::new(limits), clock)
    }

    fn fail(t: &Throttle, user: &str, ip: &str) -> Standing {
        let attempt = t
            .begin(user, Some(ip.parse().unwrap()))
            .expect("not paused");
        t.failed(&attempt)
    }

    #[test]
    fn the_fifth_failure_pauses_the_name_for_its_full_time() {
        let (t, clock) = throttle(5, 100, 100);
        for left in [4, 3, 2, 1] {
            assert_eq!(fail(&t, "daniel-adams", "10.0.0.1"), Standing::Left(left));
        }
        assert_eq!(
            fail(&t, "daniel-adams", "10.0.0.1"),
            Standing::Paused(Paused::User(900))
        );
        clock.advance(60);
        let refused = t.begin(" Daniel-Adams ", None).unwrap_err();
        assert_eq!(refused, Paused::User(840));
        assert_eq!(
            refused.message(),
            "Too many failed sign-ins for this user; try again in 14 minutes."
        );
        assert!(t.begin("joseph-ross", None).is_ok(), "other names go on");
        clock.advance(839);
        assert_eq!(t.begin("daniel-adams", None).unwrap_err().retry_after(), 1);
        clock.advance(1);
        let attempt = t.begin("daniel-adams", None).expect("the pause is over");
        assert_eq!(
            t.failed(&attempt),
            Standing::Left(4),
            "and counting restarts"
        );
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let (t, clock) = throttle(3, 100, 100);
        fail(&t, "u", "10.0.0.1");
        fail(&t, "u", "10.0.0.1");
        clock.advance(900);
        assert_eq!(fail(&t, "u", "10.0.0.1"), Standing::Left(2));
    }

    #[test]
    fn a_success_clears_the_name_but_gives_the_address_back_only_its_own_attempt() {
        let (t, _) = throttle(3, 4, 100);
        fail(&t, "u", "10.0.0.1");
        fail(&t, "u", "10.0.0.1");
        fail(&t, "v", "10.0.0.1");
        let ok = t.begin("u", Some("10.0.0.1".parse().unwrap())).unwrap();
        t.succeeded(ok);
        assert_eq!(
            fail(&t, "u", "10.0.0.1"),
            Standing::Paused(Paused::Address(600))
        );
        let (users, addresses) = t.remembered();
        assert_eq!((users, addresses), (2, 1));
    }

    #[test]
    fn parallel_attempts_are_counted_before_their_outcome() {
        let (t, _) = throttle(2, 100, 100);
        let first = t.begin("u", None).unwrap();
        let second = t.begin("u", None).unwrap();
        assert_eq!(t.begin("u", None).unwrap_err(), Paused::User(900));
        t.succeeded(second);
        assert_eq!(t.failed(&first), Standing::Left(2));
    }

    #[test]
    fn memory_stays_bounded_and_stale_entries_go_first() {
        let (t, clock) = throttle(1, 1_000_000, 50);
        for i in 0..500 {
            let address = format!("10.1.{}.{}", i / 250, i % 250).parse().unwrap();
            let _ = t.begin(&format!("junk-{i}"), Some(address));
        }
        let (users, addresses) = t.remembered();
        assert!(users <= 50 && addresses <= 50, "{users} {addresses}");
        assert!(
            t.begin("junk-499", None).is_err(),
            "the newest pauses are kept"
        );
        clock.advance(1000);
        assert!(t.begin("someone", None).is_ok());
        assert_eq!(
            t.remembered().0,
            1,
            "every pause was over, so all were dropped"
        );
    }

    #[test]
    fn a_limit_of_zero_is_off_and_remembers_little() {
        let (t, _) = throttle(5, 0, 100);
        for i in 0..50 {
            let attempt = t.begin(&format!("user-{i}"), Some("10.0.0.1".parse().unwrap()));
            assert!(attempt.is_ok(), "attempt {i}");
        }
        let tables = t.tables();
        assert_eq!(tables.1.entries["10.0.0.1"].failures.len(), 1);
    }

    #[test]
    fn ipv6_neighbours_share_a_count_and_mapped_ipv4_is_ipv4() {
        let (t, _) = throttle(100, 2, 100);
        fail(&t, "a", "2001:db8:1:2::1");
        assert_eq!(
            fail(&t, "b", "2001:db8:1:2:ffff::9"),
            Standing::Paused(Paused::Address(600))
        );
        assert!(t
            .begin("c", Some("2001:db8:1:3::1".parse().unwrap()))
            .is_ok());
        assert_eq!(address_key("::ffff:10.0.0.7".parse().unwrap()), "10.0.0.7");
    }
}
