//! Sign-in brute-force limiting: failed sign-ins are counted per user name and per client
//! address, and too many within a window pause sign-in for that name (or address) a while.
//!
//! Choices, since no standard settles them:
//! - A sign-in whose password is being checked holds a slot until its outcome is known, and
//!   only failures count towards a pause. A new attempt is let in only while the failures so
//!   far plus the attempts still being checked stay under the limit; past that it waits for
//!   one of them to finish. So a burst of parallel guesses cannot slip past the limit while
//!   the slow hash runs (at most `failures` wrong passwords are ever checked per window),
//!   and many people signing in at once from one address never pause anyone.
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
//! - Memory is bounded: each table keeps at most `capacity` names or addresses beside those
//!   with an attempt in progress. When full, stale entries go first, then the one whose last
//!   failure or pause is oldest.

mod table;

use std::net::IpAddr;
use std::pin::pin;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::server::clock::Clock;
use table::{address_key, user_key, Admission, Table};

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

/// A sign-in let in to have its password checked; report its outcome with `succeeded` or
/// `failed`. Dropped without either (the client went away), it gives its slot back.
#[derive(Debug)]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    user: String,
    address: Option<String>,
    open: bool,
}

impl Attempt<'_> {
    /// The password was right: the name starts afresh (the address keeps its failures).
    pub fn succeeded(mut self) {
        self.close(|users, _, user, _, _| users.clear_failures(user));
    }

    /// The password was wrong: count it, and say where the name stands now.
    pub fn failed(mut self) -> Standing {
        let mut standing = Standing::Left(0);
        self.close(|users, addresses, user, address, now| {
            users.fail(user, now);
            if let Some(key) = address {
                addresses.fail(key, now);
            }
            let address_pause = address.and_then(|key| addresses.paused_for(key, now));
            standing = match (users.paused_for(user, now), address_pause) {
                (Some(wait), _) => Standing::Paused(Paused::User(wait)),
                (None, Some(wait)) => Standing::Paused(Paused::Address(wait)),
                (None, None) => Standing::Left(users.failures_left(user)),
            };
        });
        standing
    }

    /// Give back the slots this attempt held, apply `outcome`, and wake waiting attempts.
    fn close(&mut self, outcome: impl FnOnce(&mut Table, &mut Table, &str, Option<&str>, i64)) {
        if !std::mem::replace(&mut self.open, false) {
            return;
        }
        let now = self.throttle.clock.now();
        {
            let mut tables = self.throttle.tables();
            let (users, addresses) = &mut *tables;
            users.finish(&self.user);
            if let Some(key) = &self.address {
                addresses.finish(key);
            }
            outcome(users, addresses, &self.user, self.address.as_deref(), now);
        }
        self.throttle.resolved.notify_waiters();
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.close(|_, _, _, _, _| {});
    }
}

/// The failed sign-ins a server remembers.
#[derive(Debug)]
pub struct Throttle {
    clock: Clock,
    tables: Mutex<(Table, Table)>,
    resolved: Notify,
}

impl Throttle {
    /// A throttle with these limits and nothing counted yet.
    pub fn new(limits: LoginLimits) -> Throttle {
        Throttle {
            clock: limits.clock,
            tables: Mutex::new((
                Table::new(limits.per_user, limits.capacity),
                Table::new(limits.per_address, limits.capacity),
            )),
            resolved: Notify::new(),
        }
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, (Table, Table)> {
        // A panic elsewhere cannot leave two counters half-written: keep using them.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Before a password is checked: refuse while paused, wait while the attempts already
    /// being checked could reach the limit, else hold a slot for this one.
    pub async fn begin(
        &self,
        username: &str,
        address: Option<IpAddr>,
    ) -> Result<Attempt<'_>, Paused> {
        let user = user_key(username);
        let address = address.map(address_key);
        loop {
            // Registered before looking, so an outcome reported in between still wakes us.
            let mut resolved = pin!(self.resolved.notified());
            resolved.as_mut().enable();
            if self.try_begin(&user, address.as_deref())? {
                return Ok(Attempt {
                    throttle: self,
                    user,
                    address,
                    open: true,
                });
            }
            resolved.await;
        }
    }

    /// Admit (true), make wait (false) or refuse an attempt, under one lock.
    fn try_begin(&self, user: &str, address: Option<&str>) -> Result<bool, Paused> {
        let now = self.clock.now();
        let mut tables = self.tables();
        let (users, addresses) = &mut *tables;
        let by_user = users.admission(user, now).map_err(Paused::User)?;
        let by_address = match address {
            Some(key) => addresses.admission(key, now).map_err(Paused::Address)?,
            None => Admission::Open,
        };
        if by_user == Admission::Full || by_address == Admission::Full {
            return Ok(false);
        }
        users.start(user, now);
        if let Some(key) = address {
            addresses.start(key, now);
        }
        Ok(true)
    }

    /// Seconds a user name is paused for once it reaches its limit.
    pub fn user_pause(&self) -> i64 {
        self.tables().0.limit.pause
    }

    /// How many names and addresses are remembered (for tests of the bound).
    pub fn remembered(&self) -> (usize, usize) {
        let tables = self.tables();
        (tables.0.len(), tables.1.len())
    }
}

#[cfg(test)]
mod tests {
    use super::table::address_key;
    use super::*;
    use std::time::Duration;

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

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    async fn fail(t: &Throttle, user: &str, address: &str) -> Standing {
        t.begin(user, ip(address))
            .await
            .expect("not paused")
            .failed()
    }

    /// Whether `begin` is still waiting after a moment (it neither admitted nor refused).
    async fn waits(t: &Throttle, user: &str, address: Option<IpAddr>) -> bool {
        tokio::time::timeout(Duration::from_millis(30), t.begin(user, address))
            .await
            .is_err()
    }

    #[tokio::test]
    async fn the_fifth_failure_pauses_the_name_for_its_full_time() {
        let (t, clock) = throttle(5, 100, 100);
        for left in [4, 3, 2, 1] {
            assert_eq!(
                fail(&t, "daniel-adams", "10.0.0.1").await,
                Standing::Left(left)
            );
        }
        assert_eq!(
            fail(&t, "daniel-adams", "10.0.0.1").await,
            Standing::Paused(Paused::User(900))
        );
        clock.advance(60);
        let refused = t.begin(" Daniel-Adams ", None).await.unwrap_err();
        assert_eq!(refused, Paused::User(840));
        assert_eq!(
            refused.message(),
            "Too many failed sign-ins for this user; try again in 14 minutes."
        );
        assert!(
            t.begin("joseph-ross", None).await.is_ok(),
            "other names go on"
        );
        clock.advance(839);
        let refused = t.begin("daniel-adams", None).await.unwrap_err();
        assert_eq!(refused.retry_after(), 1);
        clock.advance(1);
        let attempt = t
            .begin("daniel-adams", None)
            .await
            .expect("the pause is over");
        assert_eq!(attempt.failed(), Standing::Left(4), "and counting restarts");
    }

    #[tokio::test]
    async fn failures_older_than_the_window_do_not_count() {
        let (t, clock) = throttle(3, 100, 100);
        fail(&t, "u", "10.0.0.1").await;
        fail(&t, "u", "10.0.0.1").await;
        clock.advance(900);
        assert_eq!(fail(&t, "u", "10.0.0.1").await, Standing::Left(2));
    }

    #[tokio::test]
    async fn a_success_clears_the_name_but_not_the_address() {
        let (t, _) = throttle(3, 4, 100);
        fail(&t, "u", "10.0.0.1").await;
        fail(&t, "u", "10.0.0.1").await;
        fail(&t, "v", "10.0.0.1").await;
        t.begin("u", ip("10.0.0.1")).await.unwrap().succeeded();
        assert_eq!(
            fail(&t, "u", "10.0.0.1").await,
            Standing::Paused(Paused::Address(600))
        );
        assert_eq!(t.remembered(), (2, 1));
    }

    #[tokio::test]
    async fn parallel_guesses_wait_so_no_more_than_the_limit_are_checked() {
        let (t, _) = throttle(2, 100, 100);
        let first = t.begin("u", None).await.unwrap();
        let second = t.begin("u", None).await.unwrap();
        assert!(waits(&t, "u", None).await, "a third waits for an outcome");
        assert!(!waits(&t, "v", None).await, "other names are not held up");
        assert_eq!(first.failed(), Standing::Left(1));
        assert!(waits(&t, "u", None).await, "one failure and one in play");
        assert_eq!(second.failed(), Standing::Paused(Paused::User(900)));
        assert_eq!(t.begin("u", None).await.unwrap_err(), Paused::User(900));
    }

    #[tokio::test]
    async fn a_waiting_attempt_goes_in_when_one_in_play_succeeds() {
        let (t, _) = throttle(1, 100, 100);
        let first = t.begin("u", None).await.unwrap();
        let (second, ()) = tokio::join!(t.begin("u", None), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            first.succeeded();
        });
        assert_eq!(
            second.expect("let in").failed(),
            Standing::Paused(Paused::User(900))
        );
    }

    #[tokio::test]
    async fn a_dropped_attempt_gives_its_slot_back() {
        let (t, _) = throttle(1, 1, 100);
        let first = t.begin("u", ip("10.0.0.1")).await.unwrap();
        assert!(waits(&t, "w", ip("10.0.0.1")).await, "the address is full");
        drop(first);
        assert!(!waits(&t, "w", ip("10.0.0.1")).await);
        assert_eq!(t.remembered(), (0, 0), "nothing left to remember");
    }

    #[tokio::test]
    async fn many_right_passwords_at_once_from_one_address_never_pause() {
        let (t, _) = throttle(2, 3, 100);
        for round in 0..100 {
            let names = [format!("a{round}"), format!("b{round}"), "c".to_string()];
            let mut held = Vec::new();
            for name in &names {
                held.push(t.begin(name, ip("10.0.0.1")).await.expect("never paused"));
            }
            held.into_iter().for_each(Attempt::succeeded);
        }
        assert_eq!(t.remembered(), (0, 0));
    }

    #[tokio::test]
    async fn memory_stays_bounded_and_stale_entries_go_first() {
        let (t, clock) = throttle(1, 1_000_000, 50);
        for i in 0..500 {
            let address = format!("10.1.{}.{}", i / 250, i % 250);
            fail(&t, &format!("junk-{i}"), &address).await;
        }
        let (users, addresses) = t.remembered();
        assert!(users <= 50 && addresses <= 50, "{users} {addresses}");
        assert!(
            t.begin("junk-499", None).await.is_err(),
            "the newest pauses are kept"
        );
        clock.advance(1000);
        let _held = t.begin("someone", None).await.unwrap();
        assert_eq!(
            t.remembered().0,
            1,
            "every pause was over, so all were dropped"
        );
    }

    #[tokio::test]
    async fn a_limit_of_zero_is_off_and_remembers_nothing() {
        let (t, _) = throttle(5, 0, 100);
        for i in 0..50 {
            assert_eq!(
                fail(&t, &format!("user-{i}"), "10.0.0.1").await,
                Standing::Left(4)
            );
        }
        assert_eq!(t.remembered().1, 0);
    }

    #[tokio::test]
    async fn ipv6_neighbours_share_a_count_and_mapped_ipv4_is_ipv4() {
        let (t, _) = throttle(100, 2, 100);
        fail(&t, "a", "2001:db8:1:2::1").await;
        assert_eq!(
            fail(&t, "b", "2001:db8:1:2:ffff::9").await,
            Standing::Paused(Paused::Address(600))
        );
        assert!(t.begin("c", ip("2001:db8:1:3::1")).await.is_ok());
        assert_eq!(address_key("::ffff:10.0.0.7".parse().unwrap()), "10.0.0.7");
    }
}
