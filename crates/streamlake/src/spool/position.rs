//! Positions of records in the spool.

use std::fmt;

/// Where a record sits in the spool: its segment and the byte offset of its frame.
///
/// Positions order like the records they name (append order), which is what
/// [`Spool::ack`](super::Spool::ack) relies on: acknowledging a position covers every record
/// before it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpoolPosition {
    segment: u64,
    offset: u64,
}

impl SpoolPosition {
    pub(crate) const START: Self = Self::new(0, 0);

    pub(crate) const fn new(segment: u64, offset: u64) -> Self {
        Self { segment, offset }
    }

    /// Id of the segment (the number in its file name).
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Byte offset of the record's frame in the segment file.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

impl fmt::Display for SpoolPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.segment, self.offset)
    }
}
