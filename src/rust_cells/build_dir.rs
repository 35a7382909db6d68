//! Build directories kept between kernels, one per running Rust worker.
//!
//! evcxr builds every cell as a cargo crate in a directory of its own, a fresh temporary one
//! unless `EVCXR_TMPDIR` names one. A fresh directory means building serde_json (and its
//! dependencies) again in every kernel. evcxr's own artifact cache (`:cache`) would avoid
//! that, but it is one directory shared by every evcxr process on the machine, read and
//! rewritten without a lock: two kernels building at once read each other's half-written
//! entries ("cannot parse integer from empty string"), which failed builds here.
//!
//! Instead a worker is given one of a few directories under the user's cache directory
//! (`~/.cache/smartnb/rust-cells/slot-N`), held with an exclusive lock on `slot-N.lock` for
//! as long as the worker runs: no two workers share a directory, and the next kernel finds
//! serde_json and the crates its cells added already built, which cargo checks in a moment.
//! When every slot is taken (or the cache directory cannot be used) the worker gets evcxr's
//! fresh temporary directory, as before. Deleting `rust-cells` while no kernel runs is safe.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// How many kernels at once may keep their build directory; more get a temporary one.
pub const SLOTS: usize = 4;

/// The environment variable evcxr reads for its build directory.
pub const EVCXR_TMPDIR: &str = "EVCXR_TMPDIR";

/// Where the slots (and the prelude crate) live: `~/.cache/smartnb/rust-cells`.
pub fn root() -> Option<PathBuf> {
    Some(dirs::cache_dir()?.join("smartnb").join("rust-cells"))
}

/// A build directory held for one worker; the lock is released when this is dropped.
#[derive(Debug)]
pub struct BuildDir {
    path: PathBuf,
    _lock: File,
}

impl BuildDir {
    /// Claim the first free slot under the user's cache directory.
    pub fn claim() -> Option<BuildDir> {
        Self::claim_in(&root()?, SLOTS)
    }

    /// Claim the first free of `slots` slots under `root`; `None` when all are taken or
    /// `root` cannot be written.
    pub fn claim_in(root: &Path, slots: usize) -> Option<BuildDir> {
        if let Err(e) = std::fs::create_dir_all(root) {
            tracing::debug!(
                "no kept build directory for Rust cells: {}: {e}",
                root.display()
            );
            return None;
        }
        (0..slots).find_map(|n| {
            let lock_path = root.join(format!("slot-{n}.lock"));
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .ok()?;
            match lock.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return None,
                Err(TryLockError::Error(e)) => {
                    tracing::debug!("cannot lock {}: {e}", lock_path.display());
                    return None;
                }
            }
            let path = root.join(format!("slot-{n}"));
            std::fs::create_dir_all(&path).ok()?;
            remove_loaded_libraries(&path);
            Some(BuildDir { path, _lock: lock })
        })
    }

    /// The directory, for `EVCXR_TMPDIR`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Remove the libraries evcxr renamed for loading (`libcode_N.so`, one per evaluated cell
/// of the previous kernel, next to cargo's output in `target/<host triple>/debug`), so a
/// kept directory grows with what cells depend on, not with how many cells ran.
fn remove_loaded_libraries(dir: &Path) {
    let target = dir.join("target");
    let mut outputs = vec![target.clone()];
    if let Ok(entries) = std::fs::read_dir(&target) {
        outputs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for output in outputs {
        for profile in ["debug", "release"] {
            for deps in [output.join(profile), output.join(profile).join("deps")] {
                remove_cell_libraries_in(&deps);
            }
        }
    }
}

fn remove_cell_libraries_in(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let loaded = ["libcode_", "code_"].iter().any(|p| name.starts_with(p))
            && [".so", ".dylib", ".dll"].iter().any(|s| name.ends_with(s));
        if loaded {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_slot_is_not_given_twice_and_is_free_again_once_dropped() {
        let root = tempfile::tempdir().expect("tempdir");
        let first = BuildDir::claim_in(root.path(), 2).expect("slot 0");
        let second = BuildDir::claim_in(root.path(), 2).expect("slot 1");
        assert_ne!(first.path(), second.path());
        assert!(
            BuildDir::claim_in(root.path(), 2).is_none(),
            "both slots are held"
        );
        let freed = first.path().to_path_buf();
        drop(first);
        let again = BuildDir::claim_in(root.path(), 2).expect("slot 0 again");
        assert_eq!(again.path(), freed);
    }

    #[test]
    fn the_previous_kernels_loaded_libraries_are_removed_and_builds_kept() {
        let root = tempfile::tempdir().expect("tempdir");
        // Where evcxr leaves them: cargo's output for the host triple, beside `deps`.
        let debug = root
            .path()
            .join("slot-0/target/x86_64-unknown-linux-gnu/debug");
        let deps = debug.join("deps");
        std::fs::create_dir_all(&deps).expect("deps");
        for name in ["libcode_1.so", "libcode_27.so", "libctx.d"] {
            std::fs::write(debug.join(name), b"x").expect("write");
        }
        for name in ["libserde_json-ab12.rlib", "libctx-0f.so"] {
            std::fs::write(deps.join(name), b"x").expect("write");
        }
        let slot = BuildDir::claim_in(root.path(), 1).expect("slot");
        let names = |dir: &Path| {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .expect("read")
                .flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let debug = slot.path().join("target/x86_64-unknown-linux-gnu/debug");
        assert_eq!(names(&debug), ["libctx.d"]);
        assert_eq!(
            names(&debug.join("deps")),
            ["libctx-0f.so", "libserde_json-ab12.rlib"]
        );
    }

    #[test]
    fn an_unwritable_root_gives_no_slot() {
        let root = tempfile::tempdir().expect("tempdir");
        let file = root.path().join("not-a-directory");
        std::fs::write(&file, b"x").expect("write");
        assert!(BuildDir::claim_in(&file.join("rust-cells"), 2).is_none());
    }
}
