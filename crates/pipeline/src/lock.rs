//! One run per project: a run holds an exclusive lock on `DATA_DIR/NAME.lock` for as long as
//! it lives. Two runs of one project would read one checkpoint and overwrite each other's, so a
//! second run is refused at once, naming the process that holds the lock.
//!
//! The lock is the operating system's (`flock`), not the file's existence: it is released when
//! the process ends however it ends (kill -9 included), so a crash never leaves a stale lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Held while a project runs; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct RunLock {
    _file: File,
}

/// The project is already running, or its lock file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the project's lock.
    #[error(
        "project {project} is already running (pid {pid}; lock {}): two runs of one project \
         would fight over its checkpoint. Stop that run first (kill -TERM {pid}), or give this \
         one another name or data_dir", path.display()
    )]
    Running {
        /// The project.
        project: String,
        /// The pid written by the run holding the lock ("unknown" if unreadable).
        pid: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file cannot be created or locked.
    #[error("cannot lock {}: {source}; check that the data directory is writable", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Whether a run of `project` holds its lock now (a shared probe, released at once; a run
/// starting in that instant is refused as if one were running).
pub fn is_running(data_dir: &Path, project: &str) -> bool {
    let Ok(file) = File::open(data_dir.join(format!("{project}.lock"))) else {
        return false;
    };
    matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
}

impl RunLock {
    /// Takes the lock of `project` in `data_dir`, or says who holds it.
    pub(crate) fn acquire(data_dir: &Path, project: &str) -> Result<Self, LockError> {
        let path = data_dir.join(format!("{project}.lock"));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(LockError::Running {
                    project: project.to_string(),
                    pid: if pid.is_empty() { "unknown" } else { pid }.to_string(),
                    path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // Ours now: record who holds it, for the message a second run gives.
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = std::env::temp_dir().join(format!("sluice-lock-{}", std::process::id()));
        let first = RunLock::acquire(&dir, "p").expect("first");
        let e = RunLock::acquire(&dir, "p").expect_err("second");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("already running"), "{msg}");
        // Another project in the same directory is not held up.
        let other = RunLock::acquire(&dir, "q").expect("other project");
        drop(first);
        drop(other);
        RunLock::acquire(&dir, "p").expect("free again");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
