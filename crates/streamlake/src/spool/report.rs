//! What the spool tells its users: the open report, damage, status and counters.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What kind of damage was found in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DamageKind {
    /// The file ends inside a frame (or inside the file header): a crash during a write.
    Truncated,
    /// A frame's bytes do not match its checksum (bit rot, a torn or overwritten block).
    Checksum,
    /// A frame's length is impossible, or its checksum matches but the record inside does not
    /// decode.
    BadFrame,
    /// The file does not start with a spool segment header.
    BadHeader,
}

impl fmt::Display for DamageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "truncated",
            Self::Checksum => "checksum mismatch",
            Self::BadFrame => "bad frame",
            Self::BadHeader => "bad header",
        })
    }
}

/// Damage found in one segment: from `offset` to the end of the file nothing can be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Segment file name, e.g. `00000000000000000003.seg`.
    pub segment: String,
    /// Byte offset in the segment where the damage starts (the valid prefix ends here).
    pub offset: u64,
    /// Bytes from `offset` to the end of the file that could not be read.
    pub bytes: u64,
    /// Records in those bytes, when that can be told (a cut-off last frame is one record;
    /// after a checksum mismatch the count is known only if the frames that follow are
    /// intact).
    pub records_lost: Option<u64>,
    /// What is wrong.
    pub kind: DamageKind,
    /// Details, e.g. the stored and computed checksums.
    pub detail: String,
    /// Where the damaged bytes were kept for inspection (`<segment>.corrupt`); `None` when
    /// nothing was moved (read-only inspection).
    pub moved_to: Option<PathBuf>,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "segment {} damaged from byte {} ({}, {} bytes unreadable, ",
            self.segment, self.offset, self.kind, self.bytes
        )?;
        match self.records_lost {
            Some(n) => write!(f, "{n} record(s) lost")?,
            None => f.write_str("number of lost records unknown")?,
        }
        write!(f, "): {}", self.detail)?;
        if let Some(p) = &self.moved_to {
            write!(f, "; damaged bytes kept in {}", p.display())?;
        }
        Ok(())
    }
}

/// What [`Spool::open`](super::Spool::open) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// The spool folder.
    pub dir: PathBuf,
    /// Segments holding records waiting for replay.
    pub segments: usize,
    /// Records waiting for replay.
    pub pending_records: u64,
    /// Segments deleted because every record in them had been acknowledged (a crash came
    /// between the acknowledgement and the deletion).
    pub removed_acked_segments: usize,
    /// Damaged segments. Their valid prefix is replayed; the rest was moved aside.
    pub damage: Vec<Damage>,
    /// Why the checkpoint could not be used, if so. Replay then starts from the oldest record
    /// in the spool, so records acknowledged before may be delivered again (never lost).
    pub checkpoint_problem: Option<String>,
}

impl OpenReport {
    /// Whether the spool was opened without finding damage or an unusable checkpoint.
    pub fn is_clean(&self) -> bool {
        self.damage.is_empty() && self.checkpoint_problem.is_none()
    }
}

/// A snapshot of the spool, from [`Spool::status`](super::Spool::status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolStatus {
    /// The spool folder.
    pub dir: PathBuf,
    /// Segment files.
    pub segments: usize,
    /// Bytes in segment files (counted against `max_bytes`).
    pub bytes: u64,
    /// The configured limit.
    pub max_bytes: u64,
    /// Records not acknowledged yet (including those handed out by `replay_batch`).
    pub pending_records: u64,
    /// Records handed out by `replay_batch` and not acknowledged yet.
    pub in_flight_records: usize,
    /// How long ago the oldest unacknowledged record was spooled.
    pub oldest_record_age: Option<Duration>,
}

/// Totals since the spool was opened, from [`Spool::counters`](super::Spool::counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolCounters {
    /// Records appended.
    pub appended_records: u64,
    /// Records replayed and acknowledged.
    pub acked_records: u64,
    /// Bytes appended (frames, including their length and checksum).
    pub appended_bytes: u64,
}
