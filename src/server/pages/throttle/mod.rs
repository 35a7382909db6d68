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
//! - Failures and pauses are kept in the store, so every replica sharing it counts the same
//!   failures (each one counted atomically: two replicas at once never undercount) and holds
//!   the same pause. The window starts at a name's first failure (a fixed window: the count
//!   starts afresh once it has passed, or once a pause is over).
//! - The attempts still being checked are counted per process (a slot held by a replica that
//!   is killed must not hold the name up): with N replicas a burst can have at most N times
//!   `failures` passwords checked at once, and after those the pause holds on every replica.
//! - Memory and rows are bounded: the store keeps at most `capacity` names and as many
//!   addresses. When full, stale entries go first, then the one whose last failure is oldest.

mod keys;

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::server::clock::Clock;
pub use crate::server::store::Limit;
use crate::server::store::{FailureCount, FailureScope, Store};
use keys::{address_key, user_key};

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
    /// The failure counts cannot be read or written (the store failed): no password is
    /// checked until they can.
    Unavailable,
}

/// How long to wait before trying again when the store failed.
const UNAVAILABLE_RETRY: i64 = 30;

impl Paused {
    /// Seconds until sign-in is possible again (at least 1).
    pub fn retry_after(&self) -> i64 {
        match *self {
            Paused::User(s) | Paused::Address(s) => s.max(1),
            Paused::Unavailable => UNAVAILABLE_RETRY,
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
            Paused::Unavailable => format!(
                "Sign-in is unavailable: the server cannot reach its state store. Try again in {minutes} {unit}."
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
    pub async fn succeeded(mut self) {
        let throttle = self.throttle;
        if throttle.limits.per_user.failures > 0 {
            let now = throttle.clock.now();
            if let Err(e) = throttle
                .store
                .clear_failures(FailureScope::User, &self.user, now)
                .await
            {
                tracing::warn!("clearing a name's failed sign-ins failed: {e}");
            }
        }
        self.close();
    }

    /// The password was wrong: count it, and say where the name stands now.
    pub async fn failed(mut self) -> Standing {
        let now = self.throttle.clock.now();
        let standing = self
            .throttle
            .count_failure(&self.user, self.address.as_deref(), now)
            .await;
        self.close();
        standing
    }

    /// Give back the slots this attempt held and wake waiting attempts.
    fn close(&mut self) {
        if std::mem::replace(&mut self.open, false) {
            self.throttle.release(&self.user, self.address.as_deref());
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.close();
    }
}

/// Attempts being checked in this process, by scope and key, and a count of outcomes so
/// that an admission decided on counts read before an outcome is looked at again.
#[derive(Debug, Default)]
struct InPlay {
    attempts: HashMap<(FailureScope, String), u32>,
    outcomes: u64,
}

impl InPlay {
    fn of(&self, scope: FailureScope, key: &str) -> u32 {
        self.attempts
            .get(&(scope, key.to_string()))
            .copied()
            .unwrap_or(0)
    }

    fn add(&mut self, scope: FailureScope, key: &str) {
        *self.attempts.entry((scope, key.to_string())).or_default() += 1;
    }

    fn remove(&mut self, scope: FailureScope, key: &str) {
        let slot = (scope, key.to_string());
        if let Some(n) = self.attempts.get_mut(&slot) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.attempts.remove(&slot);
            }
        }
    }
}

/// The failed sign-ins a server counts (in the store) and the attempts it is checking.
pub struct Throttle {
    clock: Clock,
    limits: LoginLimits,
    store: Arc<dyn Store>,
    in_play: Mutex<InPlay>,
    resolved: Notify,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Throttle {
    /// A throttle with these limits, counting in `store`.
    pub fn new(limits: LoginLimits, store: Arc<dyn Store>) -> Throttle {
        Throttle {
            clock: limits.clock.clone(),
            limits,
            store,
            in_play: Mutex::new(InPlay::default()),
            resolved: Notify::new(),
        }
    }

    fn in_play(&self) -> MutexGuard<'_, InPlay> {
        // A panic elsewhere cannot leave the counts half-written: keep using them.
        self.in_play.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counts of a name and an address (an address not given, or a limit that is off,
    /// counts nothing).
    async fn counts(
        &self,
        user: &str,
        address: Option<&str>,
        now: i64,
    ) -> Result<(FailureCount, FailureCount), Paused> {
        let read = |scope, key: &str, limit: Limit| {
            let store = self.store.clone();
            let key = key.to_string();
            async move {
                if limit.failures == 0 {
                    return Ok(FailureCount::default());
                }
                store
                    .failure_count(scope, &key, &limit, now)
                    .await
                    .map_err(|e| {
                        tracing::warn!("reading failed sign-ins failed: {e}");
                        Paused::Unavailable
                    })
            }
        };
        let by_user = read(FailureScope::User, user, self.limits.per_user).await?;
        let by_address = match address {
            Some(key) => read(FailureScope::Address, key, self.limits.per_address).await?,
            None => FailureCount::default(),
        };
        Ok((by_user, by_address))
    }

    /// Count a failure of the name and address, and say where the name stands.
    async fn count_failure(&self, user: &str, address: Option<&str>, now: i64) -> Standing {
        let capacity = self.limits.capacity;
        let add = |scope, key: &str, limit: Limit| {
            let store = self.store.clone();
            let key = key.to_string();
            async move {
                if limit.failures == 0 {
                    return Ok(FailureCount::default());
                }
                store.add_failure(scope, &key, &limit, now, capacity).await
            }
        };
        let by_user = add(FailureScope::User, user, self.limits.per_user).await;
        let by_address = match address {
            Some(key) => add(FailureScope::Address, key, self.limits.per_address).await,
            None => Ok(FailureCount::default()),
        };
        let (by_user, by_address) = match (by_user, by_address) {
            (Ok(u), Ok(a)) => (u, a),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("counting a failed sign-in failed: {e}");
                return Standing::Paused(Paused::Unavailable);
            }
        };
        match (by_user.paused_for(now), by_address.paused_for(now)) {
            (Some(wait), _) => Standing::Paused(Paused::User(wait)),
            (None, Some(wait)) => Standing::Paused(Paused::Address(wait)),
            (None, None) => Standing::Left(
                self.limits
                    .per_user
                    .failures
                    .saturating_sub(by_user.failures),
            ),
        }
    }

    /// An attempt's outcome is known: give its slots back and wake those waiting.
    fn release(&self, user: &str, address: Option<&str>) {
        {
            let mut in_play = self.in_play();
            in_play.remove(FailureScope::User, user);
            if let Some(key) = address {
                in_play.remove(FailureScope::Address, key);
            }
            in_play.outcomes += 1;
        }
        self.resolved.notify_waiters();
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
        let (user_limit, address_limit) = (self.limits.per_user, self.limits.per_address);
        loop {
            // Registered before looking, so an outcome reported in between still wakes us.
            let mut resolved = pin!(self.resolved.notified());
            resolved.as_mut().enable();
            let outcomes = self.in_play().outcomes;
            let now = self.clock.now();
            let (by_user, by_address) = self.counts(&user, address.as_deref(), now).await?;
            if let Some(wait) = by_user.paused_for(now) {
                return Err(Paused::User(wait));
            }
            if let Some(wait) = by_address.paused_for(now) {
                return Err(Paused::Address(wait));
            }
            {
                let mut in_play = self.in_play();
                if in_play.outcomes != outcomes {
                    // An outcome came in while the counts were read: read them again.
                    continue;
                }
                let fits = |scope, key: &str, count: FailureCount, limit: Limit| {
                    limit.failures == 0 || count.failures + in_play.of(scope, key) < limit.failures
                };
                let user_fits = fits(FailureScope::User, &user, by_user, user_limit);
                let address_fits = address
                    .as_deref()
                    .is_none_or(|key| fits(FailureScope::Address, key, by_address, address_limit));
                if user_fits && address_fits {
                    if user_limit.failures > 0 {
                        in_play.add(FailureScope::User, &user);
                    }
                    if let Some(key) = address.as_deref().filter(|_| address_limit.failures > 0) {
                        in_play.add(FailureScope::Address, key);
                    }
                    return Ok(Attempt {
                        throttle: self,
                        user,
                        address,
                        open: true,
                    });
                }
            }
            resolved.await;
        }
    }

    /// Seconds a user name is paused for once it reaches its limit.
    pub fn user_pause(&self) -> i64 {
        self.limits.per_user.pause
    }

    /// How many names and addresses are remembered (for tests of the bound).
    pub async fn remembered(&self) -> (usize, usize) {
        let count = |scope| async move { self.store.failure_keys(scope).await.unwrap_or(0) };
        (
            count(FailureScope::User).await,
            count(FailureScope::Address).await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::keys::address_key;
    use super::*;
    use crate::server::store::MemoryStore;
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
        (Throttle::new(limits, Arc::new(MemoryStore::new())), clock)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    async fn fail(t: &Throttle, user: &str, address: &str) -> Standing {
        t.begin(user, ip(address))
            .await
            .expect("not paused")
            .failed()
            .await
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
        assert_eq!(
            attempt.failed().await,
            Standing::Left(4),
            "and counting restarts"
        );
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
        t.begin("u", ip("10.0.0.1"))
            .await
            .unwrap()
            .succeeded()
            .await;
        assert_eq!(
            fail(&t, "u", "10.0.0.1").await,
            Standing::Paused(Paused::Address(600))
        );
        assert_eq!(t.remembered().await, (2, 1));
    }

    #[tokio::test]
    async fn parallel_guesses_wait_so_no_more_than_the_limit_are_checked() {
        let (t, _) = throttle(2, 100, 100);
        let first = t.begin("u", None).await.unwrap();
        let second = t.begin("u", None).await.unwrap();
        assert!(waits(&t, "u", None).await, "a third waits for an outcome");
        assert!(!waits(&t, "v", None).await, "other names are not held up");
        assert_eq!(first.failed().await, Standing::Left(1));
        assert!(waits(&t, "u", None).await, "one failure and one in play");
        assert_eq!(second.failed().await, Standing::Paused(Paused::User(900)));
        assert_eq!(t.begin("u", None).await.unwrap_err(), Paused::User(900));
    }

    #[tokio::test]
    async fn a_waiting_attempt_goes_in_when_one_in_play_succeeds() {
        let (t, _) = throttle(1, 100, 100);
        let first = t.begin("u", None).await.unwrap();
        let (second, ()) = tokio::join!(t.begin("u", None), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            first.succeeded().await;
        });
        assert_eq!(
            second.expect("let in").failed().await,
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
        assert_eq!(t.remembered().await, (0, 0), "nothing left to remember");
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
            for attempt in held {
                attempt.succeeded().await;
            }
        }
        assert_eq!(t.remembered().await, (0, 0));
    }

    #[tokio::test]
    async fn memory_stays_bounded_and_stale_entries_go_first() {
        let (t, clock) = throttle(1, 1_000_000, 50);
        for i in 0..500 {
            let address = format!("10.1.{}.{}", i / 250, i % 250);
            fail(&t, &format!("junk-{i}"), &address).await;
        }
        let (users, addresses) = t.remembered().await;
        assert!(users <= 50 && addresses <= 50, "{users} {addresses}");
        assert!(
            t.begin("junk-499", None).await.is_err(),
            "the newest pauses are kept"
        );
        clock.advance(1000);
        assert!(t.begin("junk-499", None).await.is_ok(), "the pause is over");
        fail(&t, "someone", "10.2.0.1").await;
        assert!(t.remembered().await.0 <= 50);
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
        assert_eq!(t.remembered().await.1, 0);
    }

    #[tokio::test]
    async fn servers_sharing_a_store_count_each_others_failures_and_pause_together() {
        let clock = Clock::manual(START);
        let limits = LoginLimits {
            clock: clock.clone(),
            ..LoginLimits::default()
        };
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let one = Throttle::new(limits.clone(), store.clone());
        let other = Throttle::new(limits, store);
        for n in 0..4 {
            let t = if n % 2 == 0 { &one } else { &other };
            assert_eq!(
                fail(t, "joseph-ross", "10.0.0.1").await,
                Standing::Left(4 - n)
            );
        }
        assert_eq!(
            fail(&other, "joseph-ross", "10.0.0.2").await,
            Standing::Paused(Paused::User(900))
        );
        assert_eq!(
            one.begin("joseph-ross", None).await.unwrap_err(),
            Paused::User(900)
        );
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
