//! Files that hold secrets: created 0600, refused when others can read them, replaced
//! atomically.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Refuses a file that group or others can access.
pub fn check_private_file(path: &Path) -> Result<()> {
    let metadata = fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Creates `path` with mode 0600 and writes `bytes`, failing if it exists.
pub fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("write", path, e));
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written?;
    sync_parent(path)
}

/// Replaces `path` with `bytes` atomically (temp file in the same directory, fsync,
/// rename), mode 0600.
pub fn write_private_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut pending = PendingFile::create(path, 0o600)?;
    pending
        .file()
        .write_all(bytes)
        .map_err(|e| Error::io("write", path, e))?;
    pending.commit()
}

/// An output file written under a temporary name in the destination directory and
/// renamed into place by [`PendingFile::commit`]. Dropped without commit, the temporary
/// file is removed: readers never see a partial output.
#[derive(Debug)]
pub struct PendingFile {
    destination: PathBuf,
    temp: PathBuf,
    file: File,
}

impl PendingFile {
    /// Starts writing `destination` with permission bits `mode`.
    pub fn create(destination: &Path, mode: u32) -> Result<Self> {
        let directory = parent_of(destination);
        for _ in 0..8 {
            let mut suffix = [0u8; 8];
            aws_lc_rs::rand::fill(&mut suffix)
                .map_err(|_| Error::Crypto("random generator failed".into()))?;
            let name = destination
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let temp = directory.join(format!(".{name}.tmp-{}", hex::encode(suffix)));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&temp)
            {
                Ok(file) => {
                    return Ok(Self {
                        destination: destination.to_path_buf(),
                        temp,
                        file,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("create", temp, e)),
            }
        }
        Err(Error::io(
            "create",
            directory,
            std::io::Error::other("no free temporary name"),
        ))
    }

    /// The temporary file to write to.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Flushes to disk and renames the file into place.
    pub fn commit(mut self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::io("sync", &self.temp, e))?;
        fs::rename(&self.temp, &self.destination)
            .map_err(|e| Error::io("rename", &self.destination, e))?;
        self.temp = PathBuf::new();
        sync_parent(&self.destination)
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Fsyncs the directory holding `path`, so a create or rename survives a crash.
fn sync_parent(path: &Path) -> Result<()> {
    let directory = parent_of(path);
    File::open(directory)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync", directory, e))
}
