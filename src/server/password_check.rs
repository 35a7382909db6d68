//! Sign-in password checks: argon2 with bounded concurrency, and a per-process memo of
//! logins that already verified, so a participant signing in again does not pay argon2.
//!
//! Why a memo is sound: argon2 is slow on purpose, to make guessing passwords from a stolen
//! hash expensive. A login whose password argon2 has just accepted is remembered as
//! HMAC-SHA256(key, username, stored hash, password) under a random key made at start-up
//! and never stored or sent anywhere. A later login with the same password computes the
//! same HMAC and compares it in constant time (ring's `hmac::verify`): a match proves the
//! password is the one argon2 accepted, since finding another input with that HMAC without
//! the key is infeasible. Anything else (a wrong password, a user not signed in lately, a
//! changed hash) misses and pays argon2 in full, so guessing costs exactly what it did
//! before. The timing difference only tells someone who sent the right password that it
//! was right, which the answer tells them anyway. What the memo gives up: someone who can
//! read this process's memory gets the key and can test guesses at HMAC speed for the
//! users remembered (at most one entry per user, each for `MEMO_LIFETIME`); such a reader
//! already holds every live token and session, so this adds little.
//!
//! At most one argon2 check per core runs at a time: more would not finish sooner, and each
//! holds the hash's memory cost while it runs, so a burst of sign-ins cannot pile up
//! hundreds of MB of argon2 memory.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use ring::hmac;
use tokio::sync::Semaphore;

/// How long a verified login is remembered.
pub const MEMO_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Checks passwords against argon2 PHC strings; one per server.
pub struct PasswordCheck {
    /// `None` when the system's random source failed: then every check runs argon2.
    key: Option<hmac::Key>,
    /// Username -> HMAC of the login argon2 last accepted for it, and when.
    memo: RwLock<HashMap<String, (hmac::Tag, Instant)>>,
    /// One argon2 check per core at a time: more would not finish sooner, and each holds
    /// the hash's memory cost (19 MiB for the shipped hashes) while it runs.
    permits: Semaphore,
}

impl std::fmt::Debug for PasswordCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordCheck").finish_non_exhaustive()
    }
}

impl Default for PasswordCheck {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordCheck {
            key: hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new()).ok(),
            memo: RwLock::default(),
            permits: Semaphore::new(cores),
        }
    }
}

impl PasswordCheck {
    /// Whether `password` matches `phc`, the stored argon2 hash of `username`'s password.
    pub async fn verify(&self, username: &str, phc: &str, password: &str) -> bool {
        if self.remembered(username, phc, password) {
            return true;
        }
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let (stored, given) = (phc.to_string(), password.to_string());
        // Hashing is deliberately slow: keep it off the async workers.
        let ok = tokio::task::spawn_blocking(move || argon2_matches(&stored, given.as_bytes()))
            .await
            .unwrap_or(false);
        if ok {
            self.remember(username, phc, password);
        }
        ok
    }

    fn remembered(&self, username: &str, phc: &str, password: &str) -> bool {
        let Some(key) = &self.key else {
            return false;
        };
        let memo = self.memo.read().unwrap_or_else(|e| e.into_inner());
        let Some((tag, at)) = memo.get(username) else {
            return false;
        };
        at.elapsed() < MEMO_LIFETIME
            && hmac::verify(key, &message(username, phc, password), tag.as_ref()).is_ok()
    }

    fn remember(&self, username: &str, phc: &str, password: &str) {
        let Some(key) = &self.key else {
            return;
        };
        let tag = hmac::sign(key, &message(username, phc, password));
        self.memo
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(username.to_string(), (tag, Instant::now()));
    }
}

/// The HMAC input: each part length-prefixed, so no two logins share an encoding.
fn message(username: &str, phc: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + username.len() + phc.len() + password.len());
    for part in [username, phc, password] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// argon2 verification of a PHC string (argon2 compares in constant time).
pub fn argon2_matches(phc: &str, password: &[u8]) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default().verify_password(password, &hash).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};
    use argon2::{Algorithm, Params, Version};

    fn phc(password: &str) -> String {
        // Small parameters: the test is about agreement, not cost.
        let params = Params::new(64, 1, 1, None).unwrap();
        let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn a_remembered_login_needs_the_same_password_and_hash() {
        let check = PasswordCheck::default();
        let stored = phc("demo-password");
        assert!(!check.remembered("daniel", &stored, "demo-password"));
        assert!(check.verify("daniel", &stored, "demo-password").await);
        assert!(check.remembered("daniel", &stored, "demo-password"));
        assert!(!check.remembered("daniel", &stored, "demo-passwore"));
        assert!(!check.remembered("joseph", &stored, "demo-password"));
        assert!(!check.remembered("daniel", &phc("other"), "demo-password"));
        // A wrong password is refused (by argon2) and does not replace the memo.
        assert!(!check.verify("daniel", &stored, "wrong").await);
        assert!(check.remembered("daniel", &stored, "demo-password"));
    }

    #[test]
    fn the_memo_encoding_keeps_parts_apart() {
        assert_ne!(message("ab", "c", "d"), message("a", "bc", "d"));
        assert_ne!(message("a", "b", "cd"), message("a", "bc", "d"));
    }
}
