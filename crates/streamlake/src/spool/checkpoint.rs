//! The checkpoint: how far replay has been acknowledged, kept across restarts.
//!
//! The file `checkpoint` holds (32 bytes, integers little-endian):
//!
//! ```text
//! 8 bytes magic "SLSPCKPT", u32 version (1), u64 segment, u64 offset, u32 CRC-32C of the rest
//! ```
//!
//! The position is exclusive: every record before it has been acknowledged. It is replaced
//! atomically (write `checkpoint.tmp`, fsync, rename, fsync the folder), so a crash leaves
//! either the old or the new checkpoint.

use super::crc::crc32c;
use super::position::SpoolPosition;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Name of the checkpoint file.
pub(crate) const FILE_NAME: &str = "checkpoint";
/// Name of the file a new checkpoint is written to before the rename.
pub(crate) const TMP_NAME: &str = "checkpoint.tmp";
const MAGIC: [u8; 8] = *b"SLSPCKPT";
const VERSION: u32 = 1;
const LEN: usize = 32;

/// What the checkpoint file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Checkpoint {
    /// No checkpoint yet: nothing acknowledged.
    Missing,
    /// Everything before this position is acknowledged.
    Valid(SpoolPosition),
    /// The file exists but cannot be trusted; the reason.
    Invalid(String),
}

impl Checkpoint {
    /// The acknowledged boundary, the start when there is none or it is unreadable.
    pub(crate) fn position(&self) -> SpoolPosition {
        match self {
            Self::Valid(p) => *p,
            Self::Missing | Self::Invalid(_) => SpoolPosition::START,
        }
    }
}

fn encode(pos: SpoolPosition) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[..8].copy_from_slice(&MAGIC);
    b[8..12].copy_from_slice(&VERSION.to_le_bytes());
    b[12..20].copy_from_slice(&pos.segment().to_le_bytes());
    b[20..28].copy_from_slice(&pos.offset().to_le_bytes());
    let crc = crc32c(&b[..28]);
    b[28..].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode(b: &[u8]) -> Result<SpoolPosition, String> {
    if b.len() != LEN {
        return Err(format!("{} bytes, expected {LEN}", b.len()));
    }
    if b[..8] != MAGIC {
        return Err("not a StreamLake spool checkpoint".to_owned());
    }
    let crc = u32::from_le_bytes([b[28], b[29], b[30], b[31]]);
    if crc32c(&b[..28]) != crc {
        return Err("checksum mismatch".to_owned());
    }
    let version = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
    if version != VERSION {
        return Err(format!("unsupported checkpoint version {version}"));
    }
    let mut segment = [0u8; 8];
    segment.copy_from_slice(&b[12..20]);
    let mut offset = [0u8; 8];
    offset.copy_from_slice(&b[20..28]);
    Ok(SpoolPosition::new(
        u64::from_le_bytes(segment),
        u64::from_le_bytes(offset),
    ))
}

/// Reads the checkpoint in `dir`.
pub(crate) fn read(dir: &Path) -> io::Result<Checkpoint> {
    match fs::read(dir.join(FILE_NAME)) {
        Ok(bytes) => Ok(match decode(&bytes) {
            Ok(pos) => Checkpoint::Valid(pos),
            Err(why) => Checkpoint::Invalid(why),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Checkpoint::Missing),
        Err(e) => Err(e),
    }
}

/// Replaces the checkpoint in `dir` atomically. With `sync`, the new file and the folder are
/// forced to disk before this returns.
pub(crate) fn write(dir: &Path, pos: SpoolPosition, sync: bool) -> io::Result<()> {
    let tmp = dir.join(TMP_NAME);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(&encode(pos))?;
    if sync {
        file.sync_all()?;
    }
    drop(file);
    fs::rename(&tmp, dir.join(FILE_NAME))?;
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Forces a folder's entries (created, renamed, removed files) to disk.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), Checkpoint::Missing);
        assert_eq!(read(dir.path()).unwrap().position(), SpoolPosition::START);
        let pos = SpoolPosition::new(7, 4242);
        write(dir.path(), pos, true).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Checkpoint::Valid(pos));
        assert!(!dir.path().join(TMP_NAME).exists());
        write(dir.path(), SpoolPosition::new(8, 16), false).unwrap();
        assert_eq!(
            read(dir.path()).unwrap().position(),
            SpoolPosition::new(8, 16)
        );

        let path = dir.path().join(FILE_NAME);
        let mut bytes = fs::read(&path).unwrap();
        bytes[13] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(
            read(dir.path()).unwrap(),
            Checkpoint::Invalid("checksum mismatch".into())
        );
        fs::write(&path, b"").unwrap();
        assert_eq!(
            read(dir.path()).unwrap(),
            Checkpoint::Invalid("0 bytes, expected 32".into())
        );
    }
}
