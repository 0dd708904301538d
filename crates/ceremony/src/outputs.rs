//! Ceremony outputs: checked absent before anything touches the HSM, written only at
//! the end, never over an existing file, and all or nothing.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::transcript::sha256_hex;
use crate::{CeremonyError, Result};

/// The outputs of one ceremony.
#[derive(Debug, Default)]
pub struct Outputs {
    planned: Vec<PathBuf>,
    staged: Vec<(PathBuf, Vec<u8>, u32)>,
}

impl Outputs {
    /// Plans `paths`; fails if any exists, or if its directory does not.
    pub fn plan(paths: &[PathBuf]) -> Result<Self> {
        for (index, path) in paths.iter().enumerate() {
            if path.exists() {
                return Err(CeremonyError::OutputExists(path.clone()));
            }
            if paths[..index].contains(path) {
                return Err(CeremonyError::Refused(format!(
                    "output {} is named twice",
                    path.display()
                )));
            }
            let directory = directory_of(path);
            if !directory.is_dir() {
                return Err(CeremonyError::Refused(format!(
                    "output directory {} does not exist",
                    directory.display()
                )));
            }
        }
        Ok(Self {
            planned: paths.to_vec(),
            staged: Vec::new(),
        })
    }

    /// Stages the contents of planned output `path`; returns its SHA-256 (hex) for the
    /// transcript.
    pub fn stage(&mut self, path: &Path, bytes: Vec<u8>) -> Result<String> {
        self.stage_with_mode(path, bytes, 0o644)
    }

    /// Stages a planned output that only its owner may read (mode 0600).
    pub fn stage_private(&mut self, path: &Path, bytes: Vec<u8>) -> Result<String> {
        self.stage_with_mode(path, bytes, 0o600)
    }

    fn stage_with_mode(&mut self, path: &Path, bytes: Vec<u8>, mode: u32) -> Result<String> {
        if !self.planned.iter().any(|p| p == path) {
            return Err(CeremonyError::Refused(format!(
                "{} was not planned as an output",
                path.display()
            )));
        }
        let hash = sha256_hex(&bytes);
        self.staged.push((path.to_path_buf(), bytes, mode));
        Ok(hash)
    }

    /// Writes every staged output: each to a temporary file (fsynced), then linked to its
    /// final name, which fails rather than replace an existing file. On any failure the
    /// outputs already placed are removed again.
    pub fn commit(self) -> Result<()> {
        let mut placed: Vec<PathBuf> = Vec::new();
        let result = self.place_all(&mut placed);
        if result.is_err() {
            for path in placed {
                let _ = fs::remove_file(path);
            }
        }
        result
    }

    fn place_all(&self, placed: &mut Vec<PathBuf>) -> Result<()> {
        for (path, bytes, mode) in &self.staged {
            let temp = temporary_name(path);
            let written = write_synced(&temp, bytes, *mode).and_then(|()| {
                fs::hard_link(&temp, path).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        CeremonyError::OutputExists(path.clone())
                    } else {
                        CeremonyError::io("link", path, e)
                    }
                })
            });
            let _ = fs::remove_file(&temp);
            written?;
            placed.push(path.clone());
        }
        for path in placed.iter() {
            if let Ok(directory) = fs::File::open(directory_of(path)) {
                let _ = directory.sync_all();
            }
        }
        Ok(())
    }
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn temporary_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    directory_of(path).join(format!(".{name}.partial-{}", std::process::id()))
}

fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| CeremonyError::io("create", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| CeremonyError::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_all_or_nothing_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.pem"), dir.path().join("b.pem"));
        let mut outputs = Outputs::plan(&[a.clone(), b.clone()]).unwrap();
        outputs.stage(&a, b"A".to_vec()).unwrap();
        outputs.stage(&b, b"B".to_vec()).unwrap();
        // Someone creates b.pem after planning: commit fails and removes a.pem.
        fs::write(&b, b"theirs").unwrap();
        assert!(matches!(
            outputs.commit(),
            Err(CeremonyError::OutputExists(_))
        ));
        assert!(!a.exists());
        assert_eq!(fs::read(&b).unwrap(), b"theirs");
        assert!(matches!(
            Outputs::plan(&[b]),
            Err(CeremonyError::OutputExists(_))
        ));
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1);
    }
}
