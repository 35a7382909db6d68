//! Sign-in password checks: argon2 in a fixed pool of working memory, and a per-process memo
//! of logins that already verified, so a participant signing in again does not pay argon2.
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
//! Why a pool: argon2 needs `m` KiB of scratch memory per check (19 MiB for the shipped
//! hashes). Allocated per check on tokio's blocking threads, glibc kept those blocks in one
//! arena per thread: 200 participants signing in at once left the server at 390 MB. Here
//! at most one check per core runs at a time, each in a buffer kept for the next, so after
//! the first sign-in the server holds at most one buffer per core, and never more.
//!
//! Why a stand-in hash: a user name nobody has must cost what a wrong password costs, or
//! the time sign-in takes tells which names exist (argon2 is ~18 ms, no check ~0.5 ms).
//! `verify_stand_in` runs the same path (the memo's lookup and HMAC, a permit, argon2 in a
//! pooled buffer) against a hash with the real ones' parameters, and then fails. The memo
//! too costs the same either way: a lookup that finds no entry still computes and compares
//! an HMAC, so only a right password is ever faster.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// How long a verified login is remembered.
pub const MEMO_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Checks passwords against argon2 PHC strings; one per server.
pub struct PasswordCheck {
    /// `None` when the system's random source failed: then every check runs argon2.
    key: Option<hmac::Key>,
    /// Username -> HMAC of the login argon2 last accepted for it, and when.
    memo: RwLock<HashMap<String, (hmac::Tag, Instant)>>,
    /// argon2 working memory, reused.
    buffers: Mutex<Vec<Vec<Block>>>,
    /// One argon2 check per core at a time.
    permits: Semaphore,
    /// argon2 checks run so far.
    verifications: AtomicU64,
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
            buffers: Mutex::default(),
            permits: Semaphore::new(cores),
            verifications: AtomicU64::new(0),
        }
    }
}

impl PasswordCheck {
    /// Whether `password` matches `phc`, the stored argon2 hash of `username`'s password.
    pub async fn verify(&self, username: &str, phc: &str, password: &str) -> bool {
        self.check(username, phc, password, true).await
    }

    /// For a user name nobody has: the same work as a wrong password for a real user (see
    /// the module's doc), against `stand_in` (from [`stand_in_for`]); always false.
    pub async fn verify_stand_in(&self, username: &str, stand_in: &str, password: &str) -> bool {
        let _ = self.check(username, stand_in, password, false).await;
        false
    }

    /// How many argon2 checks have run (a memo hit runs none).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    async fn check(&self, username: &str, phc: &str, password: &str, keep: bool) -> bool {
        if self.remembered(username, phc, password) {
            return true;
        }
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        // Many sign-ins of one user arriving together (a class starting the walkthrough)
        // all miss; the first to get a permit verifies, the others find its memo here.
        if self.remembered(username, phc, password) {
            return true;
        }
        let buffer = self
            .buffers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        let (stored, given) = (phc.to_string(), password.to_string());
        self.verifications.fetch_add(1, Ordering::Relaxed);
        // Hashing is deliberately slow: keep it off the async workers.
        let checked = tokio::task::spawn_blocking(move || {
            let mut buffer = buffer;
            let ok = argon2_matches(&stored, given.as_bytes(), &mut buffer);
            (ok, buffer)
        })
        .await;
        let Ok((ok, buffer)) = checked else {
            return false;
        };
        self.buffers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(buffer);
        if ok && keep {
            self.remember(username, phc, password);
        }
        ok
    }

    fn remembered(&self, username: &str, phc: &str, password: &str) -> bool {
        let Some(key) = &self.key else {
            return false;
        };
        let memo = self.memo.read().unwrap_or_else(|e| e.into_inner());
        let found = memo.get(username);
        // No entry still pays for the HMAC, against a tag nothing matches.
        let tag = found.map_or(&[0u8; 32][..], |(tag, _)| tag.as_ref());
        let matches = hmac::verify(key, &message(username, phc, password), tag).is_ok();
        matches && found.is_some_and(|(_, at)| at.elapsed() < MEMO_LIFETIME)
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

/// A PHC string with `phc`'s algorithm, version and parameters, a random salt and a random
/// output of the same lengths: checking any password against it costs what checking
/// against `phc` costs, and matches nothing. `None` when `phc` is not an argon2 hash.
pub fn stand_in_for(phc: &str) -> Option<String> {
    let hash = PasswordHash::new(phc).ok()?;
    let mut salt_buf = [0u8; 64];
    let salt_len = hash.salt?.decode_b64(&mut salt_buf).ok()?.len();
    let out_len = hash.hash?.len();
    let random = SystemRandom::new();
    let mut salt = vec![0u8; salt_len];
    let mut output = vec![0u8; out_len];
    random.fill(&mut salt).ok()?;
    random.fill(&mut output).ok()?;
    let salt = SaltString::encode_b64(&salt).ok()?;
    let stand_in = PasswordHash {
        algorithm: hash.algorithm,
        version: hash.version,
        params: hash.params.clone(),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output).ok()?),
    };
    Some(stand_in.to_string())
}

/// argon2 verification of a PHC string, in `memory` (grown when too small, then reused).
pub fn argon2_matches(phc: &str, password: &[u8], memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(params), Ok(algorithm), Some(salt), Some(expected)) = (
        Params::try_from(&hash),
        Algorithm::try_from(hash.algorithm),
        hash.salt,
        hash.hash,
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut computed = [0u8; 64];
    let Some(out) = computed.get_mut(..expected.len()) else {
        return false;
    };
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut *out, memory.as_mut_slice())
        .is_ok()
        && bool::from(out.ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    fn phc(password: &str) -> String {
        // Small parameters: the test is about agreement, not cost.
        let params = Params::new(64, 1, 1, None).unwrap();
        let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn pooled_argon2_agrees_with_the_crate() {
        let stored = phc("demo-password");
        let mut memory = Vec::new();
        assert!(argon2_matches(&stored, b"demo-password", &mut memory));
        assert_eq!(memory.len(), 64);
        // The same buffer, dirty from the last check, gives the same answers.
        assert!(!argon2_matches(&stored, b"demo-passwore", &mut memory));
        assert!(argon2_matches(&stored, b"demo-password", &mut memory));
        assert!(!argon2_matches(&stored, b"", &mut memory));
        assert!(!argon2_matches("not a hash", b"demo-password", &mut memory));
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

    #[tokio::test]
    async fn a_stand_in_costs_one_argon2_check_like_a_wrong_password() {
        let check = PasswordCheck::default();
        let stored = phc("demo-password");
        let stand_in = stand_in_for(&stored).unwrap();
        let (real, fake) = (
            PasswordHash::new(&stored).unwrap(),
            PasswordHash::new(&stand_in).unwrap(),
        );
        assert_eq!(
            (real.algorithm, real.version, &real.params),
            (fake.algorithm, fake.version, &fake.params)
        );
        assert_eq!(real.hash.unwrap().len(), fake.hash.unwrap().len());
        assert_ne!(stand_in, stand_in_for(&stored).unwrap(), "random salt");
        assert!(check.verify("daniel", &stored, "demo-password").await);
        let before = check.verifications();
        assert!(!check.verify("daniel", &stored, "wrong").await);
        assert_eq!(check.verifications(), before + 1);
        assert!(
            !check
                .verify_stand_in("nobody", &stand_in, "demo-password")
                .await
        );
        assert_eq!(check.verifications(), before + 2);
        assert!(check.verify("daniel", &stored, "demo-password").await);
        assert_eq!(check.verifications(), before + 2, "a memo hit");
        assert!(!check.remembered("nobody", &stand_in, "demo-password"));
        assert!(stand_in_for("not a hash").is_none());
    }

    #[test]
    fn the_memo_encoding_keeps_parts_apart() {
        assert_ne!(message("ab", "c", "d"), message("a", "bc", "d"));
        assert_ne!(message("a", "b", "cd"), message("a", "bc", "d"));
    }
}
