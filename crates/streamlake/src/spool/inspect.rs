//! Read-only inspection of a spool folder, for `streamlake spool inspect`.
//!
//! Inspection takes no lock and changes no file: it can run next to a process that has the
//! spool open. A segment being appended to at that moment may show a cut-off last frame,
//! which is reported like any other damage.

use super::checkpoint::{self, Checkpoint};
use super::codec;
use super::error::SpoolError;
use super::position::SpoolPosition;
use super::recover::file_name;
use super::report::{Damage, DamageKind};
use super::segment::{self, FrameReader, HeaderCheck, ReadError, ScanDamage, HEADER_LEN};
use crate::record::Record;
use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Opens `dir` for reading every segment in order, verifying checksums, without taking the
/// spool's lock or changing any file.
///
/// The returned [`Inspector`] yields one [`InspectEntry::Segment`] per segment, then its
/// records and, if the segment is damaged, one [`InspectEntry::Damage`] (with `moved_to`
/// `None`), after which it goes on with the next segment.
pub fn inspect(dir: &Path) -> Result<Inspector, SpoolError> {
    let segments = segment::list_segments(dir).map_err(|e| SpoolError::io("list", dir, e))?;
    let checkpoint = checkpoint::read(dir)
        .map_err(|e| SpoolError::io("read", dir.join(checkpoint::FILE_NAME), e))?;
    let mut corrupt_files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| SpoolError::io("list", dir, e))? {
        let entry = entry.map_err(|e| SpoolError::io("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(".seg.corrupt") {
            corrupt_files.push(name);
        }
    }
    corrupt_files.sort();
    Ok(Inspector {
        dir: dir.to_path_buf(),
        acked: checkpoint.position(),
        checkpoint,
        queue: segments.into(),
        current: None,
        queued: None,
        corrupt_files,
    })
}

/// One thing found by [`inspect`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InspectEntry {
    /// A segment file starts.
    Segment {
        /// File name.
        name: String,
        /// File size.
        bytes: u64,
    },
    /// A record with a matching checksum.
    Record {
        /// Where it is.
        position: SpoolPosition,
        /// When it was spooled, ms since the Unix epoch.
        appended_at_ms: u64,
        /// Whether it has been replayed and acknowledged (it is deleted with its segment).
        acked: bool,
        /// The record.
        record: Record,
    },
    /// The rest of the current segment cannot be read.
    Damage(Damage),
}

/// Totals of a whole inspection, from [`Inspector::summarize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectSummary {
    /// The spool folder.
    pub dir: PathBuf,
    /// Segment files.
    pub segments: usize,
    /// Bytes in segment files.
    pub bytes: u64,
    /// Readable records.
    pub records: u64,
    /// Readable records not acknowledged yet.
    pub pending_records: u64,
    /// Damage found.
    pub damage: Vec<Damage>,
    /// `.corrupt` files kept from earlier damage.
    pub corrupt_files: Vec<String>,
    /// Everything before this position is acknowledged (`None`: no usable checkpoint).
    pub checkpoint: Option<SpoolPosition>,
    /// Why the checkpoint file is unusable, if it is.
    pub checkpoint_problem: Option<String>,
}

/// Iterator over a spool folder's contents; see [`inspect`].
#[derive(Debug)]
pub struct Inspector {
    dir: PathBuf,
    checkpoint: Checkpoint,
    acked: SpoolPosition,
    queue: VecDeque<(u64, PathBuf)>,
    current: Option<Current>,
    queued: Option<Result<InspectEntry, SpoolError>>,
    corrupt_files: Vec<String>,
}

#[derive(Debug)]
struct Current {
    id: u64,
    path: PathBuf,
    file_len: u64,
    reader: FrameReader,
}

impl Inspector {
    /// Everything before this position is acknowledged (`None`: no usable checkpoint).
    pub fn checkpoint(&self) -> Option<SpoolPosition> {
        match self.checkpoint {
            Checkpoint::Valid(p) => Some(p),
            Checkpoint::Missing | Checkpoint::Invalid(_) => None,
        }
    }

    /// Why the checkpoint file is unusable, if it is.
    pub fn checkpoint_problem(&self) -> Option<&str> {
        match &self.checkpoint {
            Checkpoint::Invalid(why) => Some(why),
            Checkpoint::Missing | Checkpoint::Valid(_) => None,
        }
    }

    /// `.corrupt` files kept from earlier damage, by name.
    pub fn corrupt_files(&self) -> &[String] {
        &self.corrupt_files
    }

    /// Reads everything and adds it up. Stops at the first error.
    pub fn summarize(mut self) -> Result<InspectSummary, SpoolError> {
        let mut s = InspectSummary {
            dir: self.dir.clone(),
            segments: 0,
            bytes: 0,
            records: 0,
            pending_records: 0,
            damage: Vec::new(),
            corrupt_files: std::mem::take(&mut self.corrupt_files),
            checkpoint: self.checkpoint(),
            checkpoint_problem: self.checkpoint_problem().map(str::to_owned),
        };
        for entry in self {
            match entry? {
                InspectEntry::Segment { bytes, .. } => {
                    s.segments += 1;
                    s.bytes += bytes;
                }
                InspectEntry::Record { acked, .. } => {
                    s.records += 1;
                    if !acked {
                        s.pending_records += 1;
                    }
                }
                InspectEntry::Damage(d) => s.damage.push(d),
            }
        }
        Ok(s)
    }

    fn start_segment(
        &mut self,
        id: u64,
        path: PathBuf,
    ) -> Option<Result<InspectEntry, SpoolError>> {
        let name = file_name(&path);
        let file_len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            // Deleted since it was listed: fully acknowledged by the running spool.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(SpoolError::io("read", path, e))),
        };
        let header_damage = |kind, detail: &str| ScanDamage {
            offset: 0,
            kind,
            detail: detail.to_owned(),
        };
        let check = match segment::read_header(&path) {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(SpoolError::io("read", path, e))),
        };
        match check {
            HeaderCheck::Valid => match FrameReader::open(&path, HEADER_LEN, file_len) {
                Ok(reader) => {
                    self.current = Some(Current {
                        id,
                        path,
                        file_len,
                        reader,
                    })
                }
                Err(e) => self.queued = Some(Err(SpoolError::io("read", path, e))),
            },
            HeaderCheck::Short => {
                let d = header_damage(DamageKind::Truncated, "file header cut off");
                self.queued = Some(Ok(damage_entry(&path, &d, file_len)));
            }
            HeaderCheck::Bad => {
                let d = header_damage(
                    DamageKind::BadHeader,
                    "not a StreamLake spool segment header",
                );
                self.queued = Some(Ok(damage_entry(&path, &d, file_len)));
            }
            HeaderCheck::Unsupported(version) => {
                self.queued = Some(Err(SpoolError::UnsupportedVersion {
                    segment: name.clone(),
                    version,
                    supported: segment::VERSION,
                }));
            }
        }
        Some(Ok(InspectEntry::Segment {
            name,
            bytes: file_len,
        }))
    }
}

fn damage_entry(path: &Path, d: &ScanDamage, file_len: u64) -> InspectEntry {
    InspectEntry::Damage(Damage {
        segment: file_name(path),
        offset: d.offset,
        bytes: file_len.saturating_sub(d.offset),
        records_lost: segment::records_in_damage(path, d, file_len),
        kind: d.kind,
        detail: d.detail.clone(),
        moved_to: None,
    })
}

impl Iterator for Inspector {
    type Item = Result<InspectEntry, SpoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.queued.take() {
                return Some(entry);
            }
            if let Some(cur) = &mut self.current {
                let result = cur.reader.next_frame();
                let (id, path, file_len) = (cur.id, cur.path.clone(), cur.file_len);
                match result {
                    Ok(Some(frame)) => match codec::decode(&frame.payload) {
                        Ok(d) => {
                            let position = SpoolPosition::new(id, frame.offset);
                            return Some(Ok(InspectEntry::Record {
                                position,
                                appended_at_ms: d.appended_ms,
                                acked: position < self.acked,
                                record: d.record,
                            }));
                        }
                        Err(detail) => {
                            self.current = None;
                            let d = ScanDamage {
                                offset: frame.offset,
                                kind: DamageKind::BadFrame,
                                detail: format!("record does not decode: {detail}"),
                            };
                            return Some(Ok(damage_entry(&path, &d, file_len)));
                        }
                    },
                    Ok(None) => self.current = None,
                    Err(ReadError::Io(e)) => {
                        self.current = None;
                        return Some(Err(SpoolError::io("read", path, e)));
                    }
                    Err(ReadError::Damage {
                        offset,
                        kind,
                        detail,
                    }) => {
                        self.current = None;
                        let d = ScanDamage {
                            offset,
                            kind,
                            detail,
                        };
                        return Some(Ok(damage_entry(&path, &d, file_len)));
                    }
                }
                continue;
            }
            let (id, path) = self.queue.pop_front()?;
            if let Some(entry) = self.start_segment(id, path) {
                return Some(entry);
            }
        }
    }
}
