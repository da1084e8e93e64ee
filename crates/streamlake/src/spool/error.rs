//! Why a spool operation failed.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a spool operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// A file operation failed (disk full, permissions, I/O error).
    #[error("spool I/O error: cannot {action} {}: {source}", path.display())]
    Io {
        /// What StreamLake was doing, e.g. `append to`.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Another process (or another [`Spool`](super::Spool) in this process) has the spool open.
    #[error(
        "spool {} is already open in another StreamLake process{}; \
         each spool folder can be used by one process at a time",
        dir.display(),
        holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    Locked {
        /// The spool folder.
        dir: PathBuf,
        /// What the lock file says about the holder (e.g. `pid 1234`), when readable.
        holder: Option<String>,
    },
    /// The spool holds `max_bytes` already and no space was freed in time.
    #[error(
        "spool is full ({used} of {max_bytes} bytes used, {needed} more needed) after waiting \
         {waited:?}; records are only freed once replayed to Kafka and acknowledged"
    )]
    Full {
        /// Bytes in use.
        used: u64,
        /// The configured limit.
        max_bytes: u64,
        /// Bytes the refused append needed.
        needed: u64,
        /// How long the append waited for space (zero with `on_full: error`).
        waited: Duration,
    },
    /// The record (or batch) can never fit, even in an empty spool.
    #[error(
        "record needs {needed} bytes of spool space, more than max_bytes ({max_bytes}) \
         or the largest frame ({max_frame})"
    )]
    TooLarge {
        /// Bytes needed.
        needed: u64,
        /// The configured limit.
        max_bytes: u64,
        /// The largest frame payload the format allows.
        max_frame: u64,
    },
    /// A segment was found damaged while replaying (it was intact when the spool was opened).
    /// Reopening the spool moves the damaged part aside and reports it.
    #[error("spool segment {segment} is damaged at byte {offset}: {detail}")]
    Corrupt {
        /// Segment file name.
        segment: String,
        /// Byte offset of the damaged frame.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// A segment was written by a newer StreamLake with a format this version cannot read.
    /// Nothing was changed; upgrade StreamLake to replay it.
    #[error(
        "spool segment {segment} has format version {version}, this StreamLake reads version \
         {supported}; upgrade StreamLake to replay it"
    )]
    UnsupportedVersion {
        /// Segment file name.
        segment: String,
        /// The version found.
        version: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// `ack` was given a position that was not handed out by `replay_batch` since the last
    /// `rewind`.
    #[error("cannot acknowledge spool position {position}: {reason}")]
    InvalidAck {
        /// The position.
        position: super::SpoolPosition,
        /// Why.
        reason: &'static str,
    },
    /// The spool settings are unusable.
    #[error("invalid spool configuration: {0}")]
    Config(String),
    /// A thread panicked while changing the spool; its in-memory state can no longer be trusted.
    /// Reopen the spool (the files are checked on open).
    #[error("spool state is unusable after a panic in another thread; reopen the spool")]
    Poisoned,
}

impl SpoolError {
    /// Whether trying again later can succeed: I/O errors (a full disk may get space) and a
    /// full spool (replays free space). Locks, damage, bad settings and bad acks need a fix.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Io { .. } | Self::Full { .. })
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_only_for_io_and_full() {
        let io = SpoolError::io("read", "/x", io::Error::other("boom"));
        assert!(io.is_retriable());
        let full = SpoolError::Full {
            used: 10,
            max_bytes: 10,
            needed: 5,
            waited: Duration::ZERO,
        };
        assert!(full.is_retriable());
        let locked = SpoolError::Locked {
            dir: "/spool".into(),
            holder: Some("pid 7".into()),
        };
        assert!(!locked.is_retriable());
        assert_eq!(
            locked.to_string(),
            "spool /spool is already open in another StreamLake process (pid 7); \
             each spool folder can be used by one process at a time"
        );
        assert!(!SpoolError::Config("x".into()).is_retriable());
        assert!(!SpoolError::Poisoned.is_retriable());
    }
}
