//! The prelude (`smart`, `SmartError`) as a small crate of its own, written once under the
//! cache directory and added to each evaluator as a path dependency.
//!
//! evcxr compiles every item a cell defined into every later cell's build. As items, the
//! prelude's serde_json code made each later Rust cell cost about 0.5 s instead of 0.2 s; as
//! a crate, cargo builds it once per build directory (`build_dir`) and a cell only links it.
//! (The setup itself still takes about a second: cargo and rust-analyzer take in the new
//! dependencies.)
//! The crate's directory is named after a hash of its source, so kernels of different
//! smartnb versions never rewrite each other's; it is written with a rename, so two
//! kernels writing it at once both leave it whole.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{build_dir, prelude};

/// The crate's name, as a cell would `use` it.
pub const CRATE_NAME: &str = "smartnb_cells";

/// The crate's version (its manifest's).
const VERSION: &str = "1.0.0";

/// Write the crate under the cache directory unless it is there already; its directory.
pub fn write() -> Option<PathBuf> {
    write_in(&build_dir::root()?, &prelude::items())
}

/// Write the crate with these items under `root`; `None` when it cannot be written.
pub fn write_in(root: &Path, items: &str) -> Option<PathBuf> {
    let manifest = format!(
        "[package]\nname = \"{CRATE_NAME}\"\nversion = \"{VERSION}\"\nedition = \"2021\"\n\n\
         [lib]\npath = \"lib.rs\"\n\n[dependencies]\nserde_json = \"1\"\n"
    );
    let source = format!("//! smartnb's prelude for Rust cells.\n{items}");
    let digest = Sha256::new()
        .chain_update(&manifest)
        .chain_update(&source)
        .finalize();
    let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let dir = root.join(format!("prelude-{hash}"));
    std::fs::create_dir_all(&dir).ok()?;
    for (name, text) in [("Cargo.toml", &manifest), ("lib.rs", &source)] {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|old| old == *text) {
            continue;
        }
        let partial = dir.join(format!("{name}.{}.partial", std::process::id()));
        std::fs::write(&partial, text).ok()?;
        std::fs::rename(&partial, &path).ok()?;
    }
    Some(dir)
}

/// The setup lines that add serde_json and the crate in `dir` and bring `smart` and
/// `SmartError` into scope, ending with a newline.
pub fn setup_lines(dir: &Path) -> String {
    format!(
        "{}\n:dep {CRATE_NAME} = {{ path = {:?} }}\nuse {CRATE_NAME}::{{smart, smartnb_json, SmartError}};\n",
        prelude::SERDE_JSON_DEP,
        dir.display().to_string()
    )
}

/// The `:dep` line of the crate in `dir` spelled another way that means the same to cargo
/// (its version written out), ending with a newline: it changes Cargo.toml and nothing
/// else, which makes rust-analyzer reload.
pub fn respelled_dep(dir: &Path) -> String {
    format!(
        ":dep {CRATE_NAME} = {{ path = {:?}, version = \"{VERSION}\" }}\n",
        dir.display().to_string()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crate_is_written_once_per_content_and_named_after_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let first = write_in(root.path(), "pub fn smart() {}\n").expect("written");
        let lib = first.join("lib.rs");
        assert!(std::fs::read_to_string(&lib)
            .expect("lib.rs")
            .ends_with("pub fn smart() {}\n"));
        let written = std::fs::metadata(&lib)
            .expect("meta")
            .modified()
            .expect("mtime");
        let again = write_in(root.path(), "pub fn smart() {}\n").expect("written");
        assert_eq!(first, again);
        let kept = std::fs::metadata(&lib)
            .expect("meta")
            .modified()
            .expect("mtime");
        assert_eq!(written, kept, "the same content is not written again");
        let other = write_in(root.path(), "pub fn smart() -> u8 { 1 }\n").expect("written");
        assert_ne!(first, other, "other items, another directory");
        let setup = setup_lines(&first);
        assert!(setup.starts_with(":dep serde_json = \"1\"\n:dep smartnb_cells = { path = \""));
        assert!(setup.ends_with("use smartnb_cells::{smart, smartnb_json, SmartError};\n"));
        let respelled = respelled_dep(&first);
        assert!(respelled.starts_with(":dep smartnb_cells = { path = \""));
        assert!(
            respelled.ends_with(", version = \"1.0.0\" }\n"),
            "{respelled}"
        );
    }
}
