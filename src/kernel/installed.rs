//! What `smartnb kernel install` tells the user: the kernelspec it wrote, and how to start
//! Jupyter with the kernel.

use std::fmt;
use std::path::PathBuf;

/// A kernelspec that was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Installed {
    /// The kernelspec directory (…/share/jupyter/kernels/NAME).
    pub dir: PathBuf,
    /// The kernel's name, which `--kernel NAME` selects.
    pub name: String,
    /// The name Jupyter's launcher and kernel picker show.
    pub display_name: String,
    /// The files written in `dir`.
    pub files: Vec<String>,
    /// The command Jupyter runs to start the kernel (kernel.json's argv).
    pub argv: Vec<String>,
    /// Written under a prefix, which Jupyter searches only when it runs from there.
    pub under_prefix: bool,
}

impl fmt::Display for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Installed the kernel {:?} (\"{}\") in {}",
            self.name,
            self.display_name,
            self.dir.display()
        )?;
        writeln!(f, "  wrote {}", self.files.join(", "))?;
        writeln!(f, "  Jupyter starts it with: {}", self.argv.join(" "))?;
        if self.under_prefix {
            let data = self.dir.parent().and_then(|kernels| kernels.parent());
            writeln!(
                f,
                "  Jupyter finds it when it runs from that prefix (its own venv), or with JUPYTER_PATH={}",
                data.unwrap_or(&self.dir).display()
            )?;
        }
        writeln!(
            f,
            "Start Jupyter and pick \"{}\" as the kernel:",
            self.display_name
        )?;
        writeln!(f, "  jupyter lab")?;
        writeln!(f, "  jupyter notebook")?;
        write!(f, "  jupyter console --kernel {}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installed(under_prefix: bool) -> Installed {
        Installed {
            dir: "/p/share/jupyter/kernels/smartnb".into(),
            name: "smartnb".into(),
            display_name: "SMART on FHIR (Rust)".into(),
            files: vec!["kernel.json".into(), "logo-32x32.png".into()],
            argv: vec!["/bin/smartnb".into(), "kernel".into()],
            under_prefix,
        }
    }

    #[test]
    fn the_report_names_the_directory_the_files_and_how_to_start_jupyter() {
        let text = installed(false).to_string();
        assert_eq!(
            text,
            "Installed the kernel \"smartnb\" (\"SMART on FHIR (Rust)\") in /p/share/jupyter/kernels/smartnb\n\
             \x20 wrote kernel.json, logo-32x32.png\n\
             \x20 Jupyter starts it with: /bin/smartnb kernel\n\
             Start Jupyter and pick \"SMART on FHIR (Rust)\" as the kernel:\n\
             \x20 jupyter lab\n\
             \x20 jupyter notebook\n\
             \x20 jupyter console --kernel smartnb"
        );
    }

    #[test]
    fn under_a_prefix_it_says_how_jupyter_finds_it() {
        let text = installed(true).to_string();
        assert!(
            text.contains("or with JUPYTER_PATH=/p/share/jupyter\n"),
            "{text}"
        );
    }
}
