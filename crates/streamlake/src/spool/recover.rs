//! Opening an existing spool folder: checking every segment and setting damage aside.

use super::checkpoint::{self, Checkpoint};
use super::codec;
use super::error::SpoolError;
use super::position::SpoolPosition;
use super::report::Damage;
use super::segment::{self, HeaderCheck, ScanError, HEADER_LEN, VERSION};
use std::fs;
use std::io;
use std::path::Path;

/// A segment kept after recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kept {
    /// Segment id.
    pub(crate) id: u64,
    /// Bytes of header and intact frames.
    pub(crate) len: u64,
}

/// The state of a spool folder after checking it.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Segments with records still to replay, oldest first.
    pub(crate) segments: Vec<Kept>,
    /// Everything before this position is acknowledged.
    pub(crate) acked: SpoolPosition,
    /// Id for the next new segment (above every id used before).
    pub(crate) next_id: u64,
    /// Records not acknowledged.
    pub(crate) pending: u64,
    /// Fully acknowledged segments that were still on disk and are now deleted.
    pub(crate) removed_acked: usize,
    /// Damage found and moved aside.
    pub(crate) damage: Vec<Damage>,
    /// Why the checkpoint was not used.
    pub(crate) checkpoint_problem: Option<String>,
}

/// Checks every segment in `dir`: verifies each frame, moves damaged tails into
/// `.corrupt` files, deletes segments that are fully acknowledged or hold no records, and
/// counts what is left. `sync` forces the changes to disk.
pub(crate) fn recover(dir: &Path, sync: bool) -> Result<Recovered, SpoolError> {
    let checkpoint = checkpoint::read(dir)
        .map_err(|e| SpoolError::io("read", dir.join(checkpoint::FILE_NAME), e))?;
    let checkpoint_problem = match &checkpoint {
        Checkpoint::Invalid(why) => Some(format!(
            "checkpoint {} is unusable ({why}); replaying from the oldest record in the spool, \
             so records may be delivered twice",
            dir.join(checkpoint::FILE_NAME).display()
        )),
        Checkpoint::Missing | Checkpoint::Valid(_) => None,
    };
    let mut acked = checkpoint.position();
    remove_if_present(&dir.join(checkpoint::TMP_NAME))?;

    let found = segment::list_segments(dir).map_err(|e| SpoolError::io("list", dir, e))?;
    // Refuse newer formats before changing anything.
    for (_, path) in &found {
        let check =
            segment::read_header(path).map_err(|e| SpoolError::io("read", path.clone(), e))?;
        if let HeaderCheck::Unsupported(version) = check {
            return Err(unsupported(path, version));
        }
    }

    let next_id = found
        .last()
        .map_or(0, |(id, _)| *id)
        .max(acked.segment())
        .saturating_add(1);
    let mut out = Recovered {
        segments: Vec::new(),
        acked,
        next_id,
        pending: 0,
        removed_acked: 0,
        damage: Vec::new(),
        checkpoint_problem,
    };
    let mut changed = false;

    for (id, path) in found {
        if id < acked.segment() {
            remove_if_present(&path)?;
            out.removed_acked += 1;
            changed = true;
            continue;
        }
        let mut pending = 0u64;
        let scan = segment::scan(&path, |frame| {
            codec::decode(&frame.payload)?;
            if id == acked.segment() && frame.offset < acked.offset() {
                if frame.end <= acked.offset() {
                    return Ok(());
                }
                // The checkpoint points inside this frame: replay the frame again rather than
                // skip a record that may not have been delivered.
                acked = SpoolPosition::new(id, frame.offset);
            }
            pending += 1;
            Ok(())
        })
        .map_err(|e| match e {
            ScanError::Io(e) => SpoolError::io("read", path.clone(), e),
            ScanError::Unsupported(version) => unsupported(&path, version),
        })?;

        let mut valid_len = scan.valid_len;
        if let Some(d) = &scan.damage {
            let records_lost = segment::records_in_damage(&path, d, scan.file_len);
            let moved_to = segment::move_damage_aside(&path, scan.valid_len, sync)
                .map_err(|e| SpoolError::io("move damaged bytes aside from", path.clone(), e))?;
            tracing::error!(
                segment = %path.display(),
                offset = d.offset,
                bytes = scan.file_len - d.offset,
                records_lost,
                corrupt_file = %moved_to.display(),
                "spool segment damaged ({}): {}; the valid prefix will be replayed",
                d.kind,
                d.detail
            );
            out.damage.push(Damage {
                segment: segment::segment_name(id),
                offset: d.offset,
                bytes: scan.file_len - d.offset,
                records_lost,
                kind: d.kind,
                detail: d.detail.clone(),
                moved_to: Some(moved_to),
            });
            changed = true;
            if valid_len == 0 {
                // The whole file was renamed.
                continue;
            }
        }
        let fully_acked = id == acked.segment() && acked.offset() >= valid_len;
        if scan.frames == 0 || fully_acked {
            remove_if_present(&path)?;
            if fully_acked && scan.frames > 0 {
                out.removed_acked += 1;
            }
            changed = true;
            valid_len = 0;
        }
        if valid_len > 0 {
            debug_assert!(valid_len > HEADER_LEN);
            out.segments.push(Kept { id, len: valid_len });
            out.pending += pending;
        }
    }
    out.acked = acked;
    if changed && sync {
        checkpoint::sync_dir(dir).map_err(|e| SpoolError::io("sync", dir, e))?;
    }
    Ok(out)
}

fn unsupported(path: &Path, version: u32) -> SpoolError {
    SpoolError::UnsupportedVersion {
        segment: file_name(path),
        version,
        supported: VERSION,
    }
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

fn remove_if_present(path: &Path) -> Result<(), SpoolError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SpoolError::io("remove", path, e)),
    }
}
