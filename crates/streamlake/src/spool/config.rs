//! Spool settings.

use super::error::SpoolError;
use super::segment::{FRAME_HEADER_LEN, HEADER_LEN};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// 1 GiB.
const GIB: u64 = 1 << 30;
/// 1 MiB.
const MIB: u64 = 1 << 20;

/// Where and how records are kept on disk while Kafka is unavailable.
///
/// Every default is set once, in the `Default` impl, and documented on its field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Folder holding the spool's segment files. Default: none, which turns the spool off
    /// (records that cannot be delivered are handed back with the error instead).
    pub dir: Option<PathBuf>,
    /// Largest total size of the spool's files in bytes. Appending past it waits or fails
    /// (see `on_full`); records are never dropped. Default 1 GiB.
    pub max_bytes: u64,
    /// Size at which a segment file is closed and a new one started. Space is freed a whole
    /// segment at a time, once every record in it has been replayed and acknowledged.
    /// Default 64 MiB.
    pub segment_bytes: u64,
    /// When appended records are forced to disk: `always` (before `append` returns),
    /// `interval` (every `fsync_interval_ms`) or `never` (left to the operating system).
    /// Default `interval`.
    pub fsync: FsyncPolicy,
    /// With `fsync: interval`, how often appended records are forced to disk, in
    /// milliseconds. Default 1000.
    pub fsync_interval_ms: u64,
    /// What `append` does when the spool holds `max_bytes`: `block` (wait for replays to free
    /// space, up to `block_timeout_ms`) or `error` (fail at once). Default `block`.
    pub on_full: OnFull,
    /// With `on_full: block`, how long an append waits for space before failing with
    /// [`SpoolError::Full`], in milliseconds. Default 30000.
    pub block_timeout_ms: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            dir: None,
            max_bytes: GIB,
            segment_bytes: 64 * MIB,
            fsync: FsyncPolicy::Interval,
            fsync_interval_ms: 1000,
            on_full: OnFull::Block,
            block_timeout_ms: 30_000,
        }
    }
}

impl SpoolConfig {
    /// Defaults with the spool in `dir`.
    pub fn with_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(dir.into()),
            ..Self::default()
        }
    }

    /// Whether the spool is turned on (`dir` is set).
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    /// `fsync_interval_ms` as a duration.
    pub fn fsync_interval(&self) -> Duration {
        Duration::from_millis(self.fsync_interval_ms)
    }

    /// `block_timeout_ms` as a duration.
    pub fn block_timeout(&self) -> Duration {
        Duration::from_millis(self.block_timeout_ms)
    }

    /// Checks the settings; the error names every problem.
    pub fn validate(&self) -> Result<(), SpoolError> {
        let smallest = HEADER_LEN + FRAME_HEADER_LEN + 1;
        let mut problems = Vec::new();
        if self.segment_bytes < smallest {
            problems.push(format!(
                "segment_bytes must be at least {smallest}, got {}",
                self.segment_bytes
            ));
        }
        if self.max_bytes < smallest {
            problems.push(format!(
                "max_bytes must be at least {smallest}, got {}",
                self.max_bytes
            ));
        }
        if self.fsync == FsyncPolicy::Interval && self.fsync_interval_ms == 0 {
            problems.push(
                "fsync_interval_ms must be above 0 with fsync: interval (use fsync: always \
                 to sync every append)"
                    .to_owned(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SpoolError::Config(problems.join("; ")))
        }
    }
}

/// When appended records are forced to disk (`fsync`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Every append is on disk before it returns: survives a machine crash or power loss.
    Always,
    /// Appends are forced to disk every `fsync_interval_ms`: survive a process crash; a
    /// machine crash loses at most the last interval.
    #[default]
    Interval,
    /// Never forced: survive a process crash; a machine crash loses whatever the operating
    /// system had not written yet.
    Never,
}

/// What `append` does when the spool is full (`on_full`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Wait for acknowledged replays to free space, up to `block_timeout_ms`.
    #[default]
    Block,
    /// Fail with [`SpoolError::Full`] at once.
    Error,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = SpoolConfig::default();
        assert_eq!(c.dir, None);
        assert!(!c.enabled());
        assert_eq!(c.max_bytes, 1024 * 1024 * 1024);
        assert_eq!(c.segment_bytes, 64 * 1024 * 1024);
        assert_eq!(c.fsync, FsyncPolicy::Interval);
        assert_eq!(c.fsync_interval(), Duration::from_secs(1));
        assert_eq!(c.on_full, OnFull::Block);
        assert_eq!(c.block_timeout(), Duration::from_secs(30));
        c.validate().unwrap();
    }

    #[test]
    fn deserializes_partial_and_rejects_unknown_keys() {
        let c: SpoolConfig =
            serde_json::from_str(r#"{"dir":"/var/spool/sl","fsync":"always","on_full":"error"}"#)
                .unwrap();
        assert_eq!(
            c.dir.as_deref(),
            Some(std::path::Path::new("/var/spool/sl"))
        );
        assert_eq!(c.fsync, FsyncPolicy::Always);
        assert_eq!(c.on_full, OnFull::Error);
        assert_eq!(c.max_bytes, SpoolConfig::default().max_bytes);

        let c: SpoolConfig = toml::from_str("fsync = \"never\"\nmax_bytes = 4096\n").unwrap();
        assert_eq!(c.fsync, FsyncPolicy::Never);
        assert_eq!(c.max_bytes, 4096);

        let err = serde_json::from_str::<SpoolConfig>(r#"{"max_byte":1}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `max_byte`"),
            "{err}"
        );
        let err = serde_json::from_str::<SpoolConfig>(r#"{"fsync":"sometimes"}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `sometimes`"),
            "{err}"
        );
    }

    #[test]
    fn validate_names_every_problem() {
        let c = SpoolConfig {
            segment_bytes: 1,
            max_bytes: 2,
            fsync_interval_ms: 0,
            ..SpoolConfig::default()
        };
        let msg = c.validate().unwrap_err().to_string();
        assert!(msg.contains("segment_bytes must be at least"), "{msg}");
        assert!(msg.contains("max_bytes must be at least"), "{msg}");
        assert!(msg.contains("fsync_interval_ms"), "{msg}");
    }
}
