//! Segment files: naming, the file header, frames, and reading them back with checksums.
//!
//! A segment is `<20-digit id>.seg` (so names sort in append order) and holds:
//!
//! ```text
//! header  8 bytes magic "SLSPOOL\0", u32 LE format version (1), u32 LE reserved (0)
//! frame*  u32 LE payload length, u32 LE CRC-32C of the payload, payload (see codec)
//! ```
//!
//! Segments are only ever appended to. Damage is whatever does not parse as a frame with a
//! matching checksum; everything before it is the valid prefix.

use super::crc::crc32c;
use super::report::DamageKind;
use bytes::Bytes;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// First bytes of every segment file.
pub(crate) const MAGIC: [u8; 8] = *b"SLSPOOL\0";
/// The segment format this build reads and writes.
pub(crate) const VERSION: u32 = 1;
/// Size of the segment file header.
pub(crate) const HEADER_LEN: u64 = 16;
/// Size of a frame's length and checksum.
pub(crate) const FRAME_HEADER_LEN: u64 = 8;
/// Largest payload a frame may hold (bounds memory when a length field is damaged).
pub(crate) const MAX_PAYLOAD_LEN: u64 = 1 << 30;
/// File name suffix of segments.
const SEGMENT_SUFFIX: &str = ".seg";
/// Digits in a segment id.
const ID_DIGITS: usize = 20;

/// File name of segment `id`.
pub(crate) fn segment_name(id: u64) -> String {
    format!("{id:0width$}{SEGMENT_SUFFIX}", width = ID_DIGITS)
}

/// The id in a segment file name, or `None` for any other file.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SEGMENT_SUFFIX)?;
    if stem.len() != ID_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// The segment files in `dir`, by id.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_segment_name) {
            if entry.file_type()?.is_file() {
                found.push((id, entry.path()));
            }
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// The header of a new segment.
pub(crate) fn header_bytes() -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// What the first bytes of a segment say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderCheck {
    /// A version-1 header.
    Valid,
    /// Shorter than a header, but what is there matches one (a crash right after creation).
    Short,
    /// Not a spool segment header.
    Bad,
    /// A spool segment of another format version.
    Unsupported(u32),
}

/// Checks the header bytes (`bytes` may be shorter than a header).
pub(crate) fn check_header(bytes: &[u8]) -> HeaderCheck {
    let expected = header_bytes();
    if bytes.len() < expected.len() {
        return if expected.starts_with(bytes) {
            HeaderCheck::Short
        } else {
            HeaderCheck::Bad
        };
    }
    if bytes[..8] != MAGIC {
        return HeaderCheck::Bad;
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != VERSION {
        return HeaderCheck::Unsupported(version);
    }
    if bytes[12..16] != [0, 0, 0, 0] {
        return HeaderCheck::Bad;
    }
    HeaderCheck::Valid
}

/// Reads up to a header's worth of bytes from the start of `path` and checks them.
pub(crate) fn read_header(path: &Path) -> io::Result<HeaderCheck> {
    let mut buf = Vec::with_capacity(HEADER_LEN as usize);
    File::open(path)?.take(HEADER_LEN).read_to_end(&mut buf)?;
    Ok(check_header(&buf))
}

/// Appends a frame holding `payload` to `out`.
pub(crate) fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(FRAME_HEADER_LEN as usize + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// One verified frame.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// Byte offset of the frame in its segment.
    pub(crate) offset: u64,
    /// Byte offset just past the frame.
    pub(crate) end: u64,
    /// The payload (checksum verified).
    pub(crate) payload: Bytes,
}

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The file could not be read.
    Io(io::Error),
    /// The bytes at `offset` are not a valid frame.
    Damage {
        /// Where the bad frame starts.
        offset: u64,
        /// What kind of damage.
        kind: DamageKind,
        /// Details for the report.
        detail: String,
    },
}

/// Reads frames one after another, up to a byte limit.
#[derive(Debug)]
pub(crate) struct FrameReader {
    file: BufReader<File>,
    pos: u64,
    end: u64,
}

impl FrameReader {
    /// A reader of `path` positioned at `pos` that stops at `end`.
    pub(crate) fn open(path: &Path, pos: u64, end: u64) -> io::Result<Self> {
        let mut file = BufReader::with_capacity(64 * 1024, File::open(path)?);
        file.seek(SeekFrom::Start(pos))?;
        Ok(Self { file, pos, end })
    }

    /// Where the next frame starts.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Moves the limit (a segment being appended to grows).
    pub(crate) fn set_end(&mut self, end: u64) {
        self.end = end;
    }

    /// Moves to `pos`.
    pub(crate) fn seek(&mut self, pos: u64) -> io::Result<()> {
        if pos != self.pos {
            self.file.seek(SeekFrom::Start(pos))?;
            self.pos = pos;
        }
        Ok(())
    }

    /// The next frame, `None` at the limit.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, ReadError> {
        let offset = self.pos;
        if offset >= self.end {
            return Ok(None);
        }
        let damage = |kind, detail: String| ReadError::Damage {
            offset,
            kind,
            detail,
        };
        let left = self.end - offset;
        if left < FRAME_HEADER_LEN {
            return Err(damage(
                DamageKind::Truncated,
                format!("frame header cut off ({left} of {FRAME_HEADER_LEN} bytes)"),
            ));
        }
        let mut head = [0u8; FRAME_HEADER_LEN as usize];
        self.read_exact_or_truncated(&mut head, offset)?;
        let len = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len == 0 || len > MAX_PAYLOAD_LEN {
            return Err(damage(
                DamageKind::BadFrame,
                format!("impossible frame length {len}"),
            ));
        }
        if len > left - FRAME_HEADER_LEN {
            return Err(damage(
                DamageKind::Truncated,
                format!(
                    "frame of {len} bytes cut off after {} bytes",
                    left - FRAME_HEADER_LEN
                ),
            ));
        }
        let mut payload = vec![0u8; len as usize];
        self.read_exact_or_truncated(&mut payload, offset)?;
        let actual = crc32c(&payload);
        if actual != crc {
            return Err(damage(
                DamageKind::Checksum,
                format!("checksum mismatch (stored {crc:#010x}, computed {actual:#010x})"),
            ));
        }
        let end = offset + FRAME_HEADER_LEN + len;
        self.pos = end;
        Ok(Some(Frame {
            offset,
            end,
            payload: Bytes::from(payload),
        }))
    }

    fn read_exact_or_truncated(&mut self, buf: &mut [u8], offset: u64) -> Result<(), ReadError> {
        match self.file.read_exact(buf) {
            Ok(()) => Ok(()),
            Err(e) => {
                // The stream position is unknown now; make the next call seek.
                let _ = self.file.seek(SeekFrom::Start(offset));
                self.pos = offset;
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    Err(ReadError::Damage {
                        offset,
                        kind: DamageKind::Truncated,
                        detail: "file ends inside the frame".to_owned(),
                    })
                } else {
                    Err(ReadError::Io(e))
                }
            }
        }
    }
}

/// Result of checking a whole segment.
#[derive(Debug)]
pub(crate) struct Scan {
    /// File size.
    pub(crate) file_len: u64,
    /// Bytes of header and intact frames at the start of the file.
    pub(crate) valid_len: u64,
    /// Intact frames.
    pub(crate) frames: u64,
    /// The first damage, if any: everything from its offset on is unreadable.
    pub(crate) damage: Option<ScanDamage>,
}

/// Where a segment stops being readable.
#[derive(Debug, Clone)]
pub(crate) struct ScanDamage {
    /// First unreadable byte.
    pub(crate) offset: u64,
    /// What kind of damage.
    pub(crate) kind: DamageKind,
    /// Details.
    pub(crate) detail: String,
}

/// Why a segment could not be scanned at all.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// The file could not be read.
    Io(io::Error),
    /// Written by another format version; left alone.
    Unsupported(u32),
}

/// Reads every frame of `path`, verifying checksums, and hands each intact one to `on_frame`.
/// `on_frame` may reject a frame (e.g. a payload that does not decode); that counts as damage
/// at the frame.
pub(crate) fn scan(
    path: &Path,
    mut on_frame: impl FnMut(&Frame) -> Result<(), String>,
) -> Result<Scan, ScanError> {
    let file_len = fs::metadata(path).map_err(ScanError::Io)?.len();
    let header_damage = |kind, detail: &str| Scan {
        file_len,
        valid_len: 0,
        frames: 0,
        damage: Some(ScanDamage {
            offset: 0,
            kind,
            detail: detail.to_owned(),
        }),
    };
    match read_header(path).map_err(ScanError::Io)? {
        HeaderCheck::Valid => {}
        HeaderCheck::Unsupported(v) => return Err(ScanError::Unsupported(v)),
        HeaderCheck::Short => {
            return Ok(header_damage(
                DamageKind::Truncated,
                "file header cut off (crash while creating the segment)",
            ))
        }
        HeaderCheck::Bad => {
            return Ok(header_damage(
                DamageKind::BadHeader,
                "not a StreamLake spool segment header",
            ))
        }
    }
    let mut reader = FrameReader::open(path, HEADER_LEN, file_len).map_err(ScanError::Io)?;
    let mut frames = 0;
    loop {
        match reader.next_frame() {
            Ok(None) => {
                return Ok(Scan {
                    file_len,
                    valid_len: reader.pos(),
                    frames,
                    damage: None,
                })
            }
            Ok(Some(frame)) => {
                if let Err(detail) = on_frame(&frame) {
                    return Ok(Scan {
                        file_len,
                        valid_len: frame.offset,
                        frames,
                        damage: Some(ScanDamage {
                            offset: frame.offset,
                            kind: DamageKind::BadFrame,
                            detail: format!("record does not decode: {detail}"),
                        }),
                    });
                }
                frames += 1;
            }
            Err(ReadError::Io(e)) => return Err(ScanError::Io(e)),
            Err(ReadError::Damage {
                offset,
                kind,
                detail,
            }) => {
                return Ok(Scan {
                    file_len,
                    valid_len: offset,
                    frames,
                    damage: Some(ScanDamage {
                        offset,
                        kind,
                        detail,
                    }),
                })
            }
        }
    }
}

/// How many records the damaged bytes from `offset` to `file_len` held, when that can be
/// told: a frame cut off by the end of the file is one record; otherwise the damaged frame's
/// length is followed and the count is known only if every following frame has a matching
/// checksum and the last one ends exactly at the end of the file.
pub(crate) fn records_in_damage(path: &Path, damage: &ScanDamage, file_len: u64) -> Option<u64> {
    if damage.offset < HEADER_LEN {
        // Only a cut-off header is understood: it held no records yet.
        return (damage.kind == DamageKind::Truncated).then_some(0);
    }
    if damage.kind == DamageKind::Truncated {
        return Some(1);
    }
    let mut file = BufReader::new(File::open(path).ok()?);
    file.seek(SeekFrom::Start(damage.offset)).ok()?;
    let mut pos = damage.offset;
    let mut count = 0u64;
    while pos < file_len {
        if file_len - pos < FRAME_HEADER_LEN {
            return None;
        }
        let mut head = [0u8; FRAME_HEADER_LEN as usize];
        file.read_exact(&mut head).ok()?;
        let len = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
        if len == 0 || len > MAX_PAYLOAD_LEN || len > file_len - pos - FRAME_HEADER_LEN {
            return None;
        }
        let mut payload = vec![0u8; len as usize];
        file.read_exact(&mut payload).ok()?;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        // The damaged frame itself may mismatch; every later one must match.
        if count > 0 && crc32c(&payload) != crc {
            return None;
        }
        count += 1;
        pos += FRAME_HEADER_LEN + len;
    }
    Some(count)
}

/// Keeps the bytes of `path` from `valid_len` on in a new `<segment>.corrupt` file (or
/// `.corrupt.N` if that exists) and cuts the segment to `valid_len`. With `valid_len` 0 the
/// whole file is renamed instead. Returns the `.corrupt` file.
pub(crate) fn move_damage_aside(path: &Path, valid_len: u64, sync: bool) -> io::Result<PathBuf> {
    let target = free_corrupt_name(path)?;
    if valid_len == 0 {
        fs::rename(path, &target)?;
        return Ok(target);
    }
    let mut src = File::open(path)?;
    src.seek(SeekFrom::Start(valid_len))?;
    let mut dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)?;
    io::copy(&mut src, &mut dst)?;
    if sync {
        dst.sync_all()?;
    }
    let seg = OpenOptions::new().write(true).open(path)?;
    seg.set_len(valid_len)?;
    if sync {
        seg.sync_all()?;
    }
    Ok(target)
}

fn free_corrupt_name(path: &Path) -> io::Result<PathBuf> {
    let base = path.as_os_str().to_owned();
    for n in 0u32..1000 {
        let mut name = base.clone();
        if n == 0 {
            name.push(".corrupt");
        } else {
            name.push(format!(".corrupt.{n}"));
        }
        let candidate = PathBuf::from(name);
        if !candidate.exists() {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "too many .corrupt files for this segment",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_segment(path: &Path, payloads: &[&[u8]]) -> Vec<u64> {
        let mut buf = header_bytes().to_vec();
        let mut offsets = Vec::new();
        for p in payloads {
            offsets.push(buf.len() as u64);
            encode_frame(p, &mut buf);
        }
        fs::write(path, buf).unwrap();
        offsets
    }

    #[test]
    fn names_sort_in_id_order_and_parse_back() {
        assert_eq!(segment_name(1), "00000000000000000001.seg");
        assert!(segment_name(9) < segment_name(10));
        assert!(segment_name(99_999) < segment_name(100_000));
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("00000000000000000001.seg.corrupt"), None);
        assert_eq!(parse_segment_name("1.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000000a.seg"), None);
    }

    #[test]
    fn header_checks() {
        let h = header_bytes();
        assert_eq!(check_header(&h), HeaderCheck::Valid);
        assert_eq!(check_header(&h[..5]), HeaderCheck::Short);
        assert_eq!(check_header(b"garbage"), HeaderCheck::Bad);
        let mut v2 = h;
        v2[8] = 2;
        assert_eq!(check_header(&v2), HeaderCheck::Unsupported(2));
    }

    #[test]
    fn frames_read_back_and_damage_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(segment_name(1));
        let offsets = write_segment(&path, &[b"one", b"two", b"three"]);
        assert_eq!(offsets, vec![16, 27, 38]);

        let mut seen = Vec::new();
        let scan = scan(&path, |f| {
            seen.push((f.offset, f.payload.clone()));
            Ok(())
        })
        .unwrap();
        assert!(scan.damage.is_none());
        assert_eq!(scan.frames, 3);
        assert_eq!(scan.valid_len, scan.file_len);
        assert_eq!(seen[2], (38, Bytes::from_static(b"three")));

        // Flip a bit in the second payload.
        let mut bytes = fs::read(&path).unwrap();
        bytes[27 + 8 + 1] ^= 0x04;
        fs::write(&path, &bytes).unwrap();
        let scan = super::scan(&path, |_| Ok(())).unwrap();
        let damage = scan.damage.clone().unwrap();
        assert_eq!((damage.offset, damage.kind), (27, DamageKind::Checksum));
        assert_eq!((scan.frames, scan.valid_len), (1, 27));
        assert_eq!(records_in_damage(&path, &damage, scan.file_len), Some(2));

        // Cut the last frame short.
        bytes[27 + 8 + 1] ^= 0x04;
        fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let scan = super::scan(&path, |_| Ok(())).unwrap();
        let damage = scan.damage.clone().unwrap();
        assert_eq!((damage.offset, damage.kind), (38, DamageKind::Truncated));
        assert_eq!(scan.frames, 2);
        assert_eq!(records_in_damage(&path, &damage, scan.file_len), Some(1));

        // A zero-filled tail is damage, not an empty record.
        bytes.extend_from_slice(&[0u8; 20]);
        fs::write(&path, &bytes).unwrap();
        let scan = super::scan(&path, |_| Ok(())).unwrap();
        let damage = scan.damage.clone().unwrap();
        assert_eq!((damage.offset, damage.kind), (51, DamageKind::BadFrame));
        assert_eq!(scan.frames, 3);
        assert_eq!(records_in_damage(&path, &damage, scan.file_len), None);
    }

    #[test]
    fn rejected_payload_counts_as_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(segment_name(3));
        write_segment(&path, &[b"ok", b"bad", b"ok"]);
        let scan = scan(&path, |f| {
            if &f.payload[..] == b"bad" {
                Err("nope".into())
            } else {
                Ok(())
            }
        })
        .unwrap();
        let damage = scan.damage.unwrap();
        assert_eq!((damage.offset, damage.kind), (26, DamageKind::BadFrame));
        assert!(damage.detail.contains("nope"));
        assert_eq!(scan.frames, 1);
    }

    #[test]
    fn damage_is_moved_aside_once_per_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(segment_name(2));
        fs::write(&path, b"0123456789").unwrap();
        let first = move_damage_aside(&path, 6, false).unwrap();
        assert_eq!(first, dir.path().join("00000000000000000002.seg.corrupt"));
        assert_eq!(fs::read(&first).unwrap(), b"6789");
        assert_eq!(fs::read(&path).unwrap(), b"012345");
        let second = move_damage_aside(&path, 0, false).unwrap();
        assert_eq!(
            second,
            dir.path().join("00000000000000000002.seg.corrupt.1")
        );
        assert_eq!(fs::read(&second).unwrap(), b"012345");
        assert!(!path.exists());
    }
}
