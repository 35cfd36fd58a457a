//! Playbooks reloaded from a directory when it changes. A bad edit is
//! rejected with its lint errors logged, and the previous set stays active.

use crate::playbook::{Library, LoadError};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub struct Reloader {
    dir: PathBuf,
    /// Lay the directory's files over the built-in ones (`builtin` in
    /// medic.yaml), rather than use them alone.
    builtin: bool,
    seen: Vec<(PathBuf, Option<SystemTime>, u64)>,
}

fn stamp(dir: &Path) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.path(), meta.modified().ok(), meta.len()))
        })
        .collect();
    out.sort();
    out
}

impl Reloader {
    pub fn new(dir: PathBuf, builtin: bool) -> Self {
        Reloader {
            dir,
            builtin,
            seen: Vec::new(),
        }
    }

    /// A new library when the directory changed and lints clean; None when
    /// nothing changed. A change that fails lint is an error, and is not
    /// retried until the files change again.
    pub fn poll(&mut self) -> Result<Option<Library>, LoadError> {
        let now = stamp(&self.dir);
        if now == self.seen {
            return Ok(None);
        }
        self.seen = now;
        let mut sources = Library::read_sources(std::slice::from_ref(&self.dir))?;
        if self.builtin {
            let (all, notes) = crate::playbook::with_builtins(sources);
            for note in notes {
                tracing::info!("{note}");
            }
            sources = all;
        }
        Library::from_sources(&sources).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_edit_is_rejected_and_a_good_one_loads() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Reloader::new(dir.path().to_path_buf(), false);
        for (name, text) in crate::playbook::EMBEDDED {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let lib = r.poll().unwrap().unwrap();
        assert_eq!(lib.playbooks.len(), crate::playbook::EMBEDDED.len() - 1);
        assert!(r.poll().unwrap().is_none(), "unchanged");
        std::fs::write(
            dir.path().join("bad.yaml"),
            "apiVersion: medic.dev/v1alpha1\nkind: Playbook\nmetadata: {name: x}\nspec: {}\n",
        )
        .unwrap();
        let err = r.poll().unwrap_err();
        assert!(err.to_string().contains("bad.yaml:4:"), "{err}");
        assert!(r.poll().unwrap().is_none(), "not retried until it changes");
        std::fs::remove_file(dir.path().join("bad.yaml")).unwrap();
        assert!(r.poll().unwrap().is_some());
    }
}
