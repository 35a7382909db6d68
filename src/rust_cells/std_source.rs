//! Which standard library rust-analyzer reads in the worker: a stub until a cell needs the
//! real one.
//!
//! evcxr's start has rust-analyzer look at a first cell, and that makes it parse and resolve
//! the whole standard library: about 3 s of CPU, most of an evaluator's start. Only two
//! things need it: a top-level `let` whose type evcxr asks rust-analyzer for
//! (`cell_shape::infers_types`) and completions. rust-analyzer finds the library through
//! `RUST_SRC_PATH`, which it reads again whenever it reloads the workspace (when the cell
//! crate's Cargo.toml changes). So the worker points that variable at a link in a directory
//! of its own: first to a stub whose `core` is empty, then, before the first cell or
//! completion that needs types, or once the worker idles, to the real library, with a
//! Cargo.toml change in the same evaluation so that rust-analyzer reloads.

use std::path::{Path, PathBuf};

/// Where rust-analyzer's standard library is, for one worker.
pub struct StdSource {
    /// Holds the stub and the link; removed with the worker.
    dir: tempfile::TempDir,
    real: PathBuf,
    state: StdState,
}

/// How far the switch to the real library has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StdState {
    /// The link names the stub.
    Stub,
    /// The link names the real library; rust-analyzer has not reloaded since.
    Switched,
    /// rust-analyzer has reloaded with the real library.
    Real,
}

/// The name of the link under the worker's directory that `RUST_SRC_PATH` names.
const LINK: &str = "library";

impl StdSource {
    /// Write the stub, link to it and point `RUST_SRC_PATH` at the link. Call it before any
    /// thread starts (it sets an environment variable). `None`, with nothing changed, when
    /// there is no real library to switch to (rust-analyzer has none either way) or the
    /// stub cannot be written.
    pub fn stub(sysroot: Option<&Path>) -> Option<StdSource> {
        let real = real_library(sysroot)?;
        let dir = tempfile::Builder::new()
            .prefix("smartnb-std-")
            .tempdir()
            .ok()?;
        let core = dir.path().join("stub").join("core").join("src");
        std::fs::create_dir_all(&core).ok()?;
        std::fs::write(core.join("lib.rs"), "").ok()?;
        let source = StdSource {
            dir,
            real,
            state: StdState::Stub,
        };
        source.point_at(&source.dir.path().join("stub")).ok()?;
        std::env::set_var("RUST_SRC_PATH", source.dir.path().join(LINK));
        Some(source)
    }

    /// Whether rust-analyzer has yet to reload with the real library.
    pub fn pending(&self) -> bool {
        self.state != StdState::Real
    }

    /// Point the link at the real library (once): rust-analyzer reads it at its next reload.
    pub fn switch(&mut self) {
        if self.state != StdState::Stub {
            return;
        }
        match self.point_at(&self.real) {
            Ok(()) => self.state = StdState::Switched,
            Err(e) => {
                // rust-analyzer keeps the stub, and kept `let`s need a written-out type.
                tracing::warn!("rust worker: cannot switch to the real standard library: {e}");
                self.state = StdState::Real;
            }
        }
    }

    /// rust-analyzer has reloaded since the switch.
    pub fn reloaded(&mut self) {
        if self.state == StdState::Switched {
            self.state = StdState::Real;
        }
    }

    /// An empty crate in the worker's directory, written on first use: a dependency that
    /// changes Cargo.toml when there is no other to respell.
    pub fn reload_crate(&self) -> Option<PathBuf> {
        let dir = self.dir.path().join("reload");
        std::fs::create_dir_all(&dir).ok()?;
        std::fs::write(
            dir.join("Cargo.toml"),
            "[package]\nname = \"smartnb_reload\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[lib]\npath = \"lib.rs\"\n",
        )
        .ok()?;
        std::fs::write(dir.join("lib.rs"), "").ok()?;
        Some(dir)
    }

    /// Point the link at `target`, replacing it in one rename.
    fn point_at(&self, target: &Path) -> std::io::Result<()> {
        let next = self.dir.path().join(format!("{LINK}.next"));
        let _ = std::fs::remove_file(&next);
        symlink(target, &next)?;
        std::fs::rename(&next, self.dir.path().join(LINK))
    }
}

/// The library rust-analyzer would read without the stub: `RUST_SRC_PATH` if it is set and
/// has a `core`, else the toolchain's `lib/rustlib/src/rust/library` (the rust-src component).
fn real_library(sysroot: Option<&Path>) -> Option<PathBuf> {
    let has_core = |dir: &Path| dir.join("core").is_dir();
    if let Some(set) = std::env::var_os("RUST_SRC_PATH").map(PathBuf::from) {
        if has_core(&set) {
            return Some(set);
        }
    }
    let library = sysroot?.join("lib/rustlib/src/rust/library");
    has_core(&library).then_some(library)
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "the standard-library stub needs symbolic links",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_names_the_stub_then_the_real_library_once() {
        let sysroot = tempfile::tempdir().expect("tempdir");
        let library = sysroot.path().join("lib/rustlib/src/rust/library");
        std::fs::create_dir_all(library.join("core/src")).expect("library");
        std::fs::write(library.join("core/src/lib.rs"), "//! the real core\n").expect("core");
        // This test owns RUST_SRC_PATH: no other test of this binary reads or sets it.
        std::env::remove_var("RUST_SRC_PATH");
        let mut source = StdSource::stub(Some(sysroot.path())).expect("stubbed");
        let link = PathBuf::from(std::env::var_os("RUST_SRC_PATH").expect("set"));
        let core = || std::fs::read_to_string(link.join("core/src/lib.rs")).expect("core");
        assert_eq!(core(), "", "the stub first");
        assert!(source.pending());
        source.reloaded();
        assert!(
            source.pending(),
            "a reload before the switch does not count"
        );
        source.switch();
        assert_eq!(core(), "//! the real core\n");
        assert!(source.pending(), "switched, not yet reloaded");
        source.switch();
        source.reloaded();
        assert!(!source.pending());
        assert_eq!(core(), "//! the real core\n");
        let reload = source.reload_crate().expect("written");
        assert!(std::fs::read_to_string(reload.join("Cargo.toml"))
            .expect("manifest")
            .contains("name = \"smartnb_reload\""));
        std::env::remove_var("RUST_SRC_PATH");
        let none = tempfile::tempdir().expect("tempdir");
        assert!(
            StdSource::stub(Some(none.path())).is_none(),
            "no rust-src, no stub"
        );
        assert!(std::env::var_os("RUST_SRC_PATH").is_none());
    }
}
