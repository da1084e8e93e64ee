//! The disk spool: where records wait while Kafka is unavailable, so none is lost.
//!
//! A [`Spool`] is a folder of append-only segment files. Records that cannot be delivered are
//! [appended](Spool::append); once Kafka is back they are [replayed](Spool::replay_batch) in
//! the order they were appended and [acknowledged](Spool::ack) after delivery.
//!
//! # Guarantees
//!
//! - **Durability follows [`FsyncPolicy`].** With `always`, `append` returns only after the
//!   record is forced to disk: it survives a crash of the process and of the machine (power
//!   loss included). With `interval` (the default), it is written to the operating system at
//!   once and forced to disk every `fsync_interval_ms`: it survives a crash of the process,
//!   and a crash of the machine loses at most the records of the last interval. With `never`,
//!   it survives a crash of the process; a crash of the machine loses what the operating system
//!   had not written yet. An `append` that returns an error may still have stored the record
//!   (e.g. the write succeeded and the fsync failed): replay can then deliver a record the
//!   caller also retried. Records may be delivered twice, never lost silently.
//! - **Order.** Records are replayed in the order they were appended, across segments and
//!   restarts, so the order of records with the same key holds. [`Spool::rewind`] after a
//!   failed replay attempt hands the same records out again, in the same order.
//! - **Progress survives restarts.** Acknowledgements are kept in a checkpoint file, replaced
//!   atomically (write a temporary file, fsync, rename), so after a restart replay resumes
//!   after the last acknowledged record. A crash between delivery and acknowledgement
//!   replays the unacknowledged records again (at-least-once).
//! - **Bounded size.** The segment files never hold more than `max_bytes`. When an append
//!   would go past it, `on_full: block` waits (up to `block_timeout_ms`) for acknowledged
//!   replays to free space and `on_full: error` fails at once; either way the caller gets
//!   [`SpoolError::Full`] back with the record, which is never dropped. Space is freed a whole
//!   segment at a time, when every record in it has been acknowledged.
//! - **Corruption is detected and reported, never replayed.** Every record carries a CRC-32C
//!   checksum. [`Spool::open`] verifies every segment: a cut-off or damaged frame (a crash in
//!   the middle of a write, a flipped bit) ends that segment's valid prefix. The prefix stays
//!   replayable, records in later intact segments too, and the damaged bytes are moved into
//!   `<segment>.corrupt` for inspection and reported in [`OpenReport`] (segment, byte offset,
//!   bytes, records lost when that can be told).
//! - **One process per spool.** The folder is locked while a spool is open; a second
//!   [`Spool::open`] fails with [`SpoolError::Locked`]. [`inspect`] reads a spool (open or
//!   not) without the lock and without changing any file.
//!
//! # Files
//!
//! - `NNNNNNNNNNNNNNNNNNNN.seg`: segments, named by a 20-digit id so they sort in append order.
//!   A 16-byte header (magic `SLSPOOL\0`, format version) is followed by frames
//!   `[u32 length][u32 CRC-32C of payload][payload]`, the payload being the record in a
//!   compact binary form plus its append time.
//! - `checkpoint`: the position before which every record is acknowledged.
//! - `spool.lock`: the lock (holds the owner's process id).
//! - `*.seg.corrupt`: damaged bytes set aside by [`Spool::open`].
//!
//! # Sharing
//!
//! All methods take `&self`; share a spool between threads with an `Arc`. Appends, replays
//! and acknowledgements are serialised by one lock (replay reads the disk under it).

mod checkpoint;
mod codec;
mod config;
mod crc;
mod error;
mod inspect;
mod lock;
mod position;
mod recover;
mod report;
mod segment;
#[cfg(test)]
mod tests;

pub use config::{FsyncPolicy, OnFull, SpoolConfig};
pub use error::SpoolError;
pub use inspect::{inspect, InspectEntry, InspectSummary, Inspector};
pub use position::SpoolPosition;
pub use report::{Damage, DamageKind, OpenReport, SpoolCounters, SpoolStatus};

use crate::record::Record;
use segment::{FrameReader, ReadError, HEADER_LEN, MAX_PAYLOAD_LEN};
use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A disk spool; see the [module docs](self) for its guarantees.
pub struct Spool {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.shared.dir)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// What the spool's threads share.
struct Shared {
    dir: PathBuf,
    config: SpoolConfig,
    state: Mutex<State>,
    /// Signalled when acknowledged segments are deleted (appenders wait on it when full).
    space_freed: Condvar,
    /// Set when the spool is dropped, to stop the fsync thread.
    stop: Mutex<bool>,
    stop_signal: Condvar,
    appended_records: AtomicU64,
    acked_records: AtomicU64,
    appended_bytes: AtomicU64,
    /// Held for as long as the spool is open.
    _lock: lock::DirLock,
}

/// Everything behind the spool's lock.
struct State {
    /// Segments on disk, oldest first.
    segments: VecDeque<SegmentMeta>,
    /// Sum of the segments' lengths.
    bytes: u64,
    /// Id of the next new segment.
    next_id: u64,
    /// The segment being appended to (always the last in `segments`).
    writer: Option<Writer>,
    /// Every record before this position is acknowledged (persisted in the checkpoint).
    acked: SpoolPosition,
    /// The next record `replay_batch` hands out.
    cursor: SpoolPosition,
    /// Records handed out and not acknowledged, in order.
    in_flight: VecDeque<InFlight>,
    /// Records not acknowledged.
    pending: u64,
    /// Reader of the segment replay is in, kept between batches.
    reader: Option<(u64, FrameReader)>,
}

#[derive(Debug, Clone, Copy)]
struct SegmentMeta {
    id: u64,
    /// Bytes of header and complete frames; nothing past it is ever read.
    len: u64,
}

struct Writer {
    id: u64,
    file: File,
    /// Written to since the last fsync.
    dirty: bool,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    position: SpoolPosition,
    /// Offset just past the record's frame.
    end: u64,
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir`.
    ///
    /// Takes the folder's lock ([`SpoolError::Locked`] if another spool has it), verifies every
    /// segment, moves damaged bytes into `.corrupt` files and deletes fully acknowledged
    /// segments. The [`OpenReport`] says what was found; replay continues after the last
    /// acknowledged record.
    pub fn open(dir: &Path, config: SpoolConfig) -> Result<(Spool, OpenReport), SpoolError> {
        config.validate()?;
        fs::create_dir_all(dir).map_err(|e| SpoolError::io("create folder", dir, e))?;
        let lock = lock::acquire(dir)?;
        let sync = config.fsync != FsyncPolicy::Never;
        let rec = recover::recover(dir, sync)?;

        let segments: VecDeque<SegmentMeta> = rec
            .segments
            .iter()
            .map(|k| SegmentMeta {
                id: k.id,
                len: k.len,
            })
            .collect();
        let bytes = segments.iter().map(|s| s.len).sum();
        let report = OpenReport {
            dir: dir.to_path_buf(),
            segments: segments.len(),
            pending_records: rec.pending,
            removed_acked_segments: rec.removed_acked,
            damage: rec.damage,
            checkpoint_problem: rec.checkpoint_problem,
        };
        if let Some(problem) = &report.checkpoint_problem {
            tracing::warn!(dir = %dir.display(), "{problem}");
        }
        let state = State {
            segments,
            bytes,
            next_id: rec.next_id,
            writer: None,
            acked: rec.acked,
            cursor: rec.acked,
            in_flight: VecDeque::new(),
            pending: rec.pending,
            reader: None,
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            config,
            state: Mutex::new(state),
            space_freed: Condvar::new(),
            stop: Mutex::new(false),
            stop_signal: Condvar::new(),
            appended_records: AtomicU64::new(0),
            acked_records: AtomicU64::new(0),
            appended_bytes: AtomicU64::new(0),
            _lock: lock,
        });
        let flusher = if shared.config.fsync == FsyncPolicy::Interval {
            let s = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name("streamlake-spool-fsync".to_owned())
                .spawn(move || s.run_flusher())
                .map_err(|e| SpoolError::io("start the fsync thread for", dir, e))?;
            Some(handle)
        } else {
            None
        };
        Ok((Spool { shared, flusher }, report))
    }

    /// Opens the spool configured in `config.dir`; `Ok(None)` when the spool is off.
    pub fn open_configured(
        config: &SpoolConfig,
    ) -> Result<Option<(Spool, OpenReport)>, SpoolError> {
        match &config.dir {
            None => Ok(None),
            Some(dir) => Self::open(dir, config.clone()).map(Some),
        }
    }

    /// The spool folder.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The settings the spool was opened with.
    pub fn config(&self) -> &SpoolConfig {
        &self.shared.config
    }

    /// Stores one record; see [`Spool::append_batch`].
    pub fn append(&self, record: &Record) -> Result<(), SpoolError> {
        self.append_batch(std::slice::from_ref(record))
    }

    /// Stores records after every record appended before, as durably as the
    /// [`FsyncPolicy`] says (with `always`, one fsync covers the whole batch).
    ///
    /// When the records do not fit under `max_bytes`, waits for space (`on_full: block`, up to
    /// `block_timeout_ms`) or fails at once (`on_full: error`) with [`SpoolError::Full`]; the
    /// batch is then not stored at all. A batch that cannot fit even in an empty spool fails
    /// with [`SpoolError::TooLarge`]. On an I/O error a prefix of the batch may be stored.
    pub fn append_batch(&self, records: &[Record]) -> Result<(), SpoolError> {
        if records.is_empty() {
            return Ok(());
        }
        let cfg = &self.shared.config;
        let appended_ms = now_ms();
        let mut frames = Vec::new();
        let mut frame_lens = Vec::with_capacity(records.len());
        let mut payload = Vec::new();
        for r in records {
            payload.clear();
            codec::encode(r, appended_ms, &mut payload);
            let len = payload.len() as u64;
            if len > MAX_PAYLOAD_LEN {
                return Err(SpoolError::TooLarge {
                    needed: len,
                    max_bytes: cfg.max_bytes,
                    max_frame: MAX_PAYLOAD_LEN,
                });
            }
            let start = frames.len();
            segment::encode_frame(&payload, &mut frames);
            frame_lens.push((frames.len() - start) as u64);
        }

        let fresh = space_needed(None, &frame_lens, cfg.segment_bytes);
        if fresh > cfg.max_bytes {
            return Err(SpoolError::TooLarge {
                needed: fresh,
                max_bytes: cfg.max_bytes,
                max_frame: MAX_PAYLOAD_LEN,
            });
        }
        let started = Instant::now();
        let mut st = self.shared.lock()?;
        loop {
            let needed = space_needed(st.active_len(), &frame_lens, cfg.segment_bytes);
            if st.bytes.saturating_add(needed) <= cfg.max_bytes {
                break;
            }
            let waited = match cfg.on_full {
                OnFull::Error => Duration::ZERO,
                OnFull::Block => started.elapsed(),
            };
            let full = SpoolError::Full {
                used: st.bytes,
                max_bytes: cfg.max_bytes,
                needed,
                waited,
            };
            if cfg.on_full == OnFull::Error || waited >= cfg.block_timeout() {
                return Err(full);
            }
            let (guard, _) = self
                .shared
                .space_freed
                .wait_timeout(st, cfg.block_timeout() - waited)
                .map_err(|_| SpoolError::Poisoned)?;
            st = guard;
        }
        self.shared.write_frames(&mut st, &frames, &frame_lens)
    }

    /// Hands out up to `max` records, oldest first, that have not been acknowledged or handed
    /// out since the last [`rewind`](Spool::rewind). Empty when there is nothing more.
    ///
    /// Deliver them in order, then [`ack`](Spool::ack) the position of the last one delivered.
    /// Returns [`SpoolError::Corrupt`] if a segment was damaged after the spool was opened.
    pub fn replay_batch(&self, max: usize) -> Result<Vec<(SpoolPosition, Record)>, SpoolError> {
        let mut st = self.shared.lock()?;
        let mut out = Vec::new();
        while out.len() < max {
            match self.shared.read_next(&mut st) {
                Ok(Some(item)) => out.push(item),
                Ok(None) => break,
                // Hand out what was read; the error comes back on the next call.
                Err(_) if !out.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Marks every record up to and including `upto` as delivered, persists that in the
    /// checkpoint and deletes segments whose records are all acknowledged (waking appenders
    /// waiting for space).
    ///
    /// `upto` must be a position handed out by [`replay_batch`](Spool::replay_batch) since the
    /// last [`rewind`](Spool::rewind); acknowledging an already acknowledged position does
    /// nothing.
    pub fn ack(&self, upto: SpoolPosition) -> Result<(), SpoolError> {
        let mut st = self.shared.lock()?;
        if upto < st.acked {
            return Ok(());
        }
        let Some(idx) = st.in_flight.iter().position(|f| f.position == upto) else {
            return Err(SpoolError::InvalidAck {
                position: upto,
                reason: if upto < st.cursor {
                    "not the position of a record handed out by replay_batch"
                } else {
                    "not handed out by replay_batch since the last rewind"
                },
            });
        };
        let end = st.in_flight[idx].end;
        let acked = SpoolPosition::new(upto.segment(), end);
        let sync = self.shared.config.fsync != FsyncPolicy::Never;
        checkpoint::write(&self.shared.dir, acked, sync)
            .map_err(|e| SpoolError::io("write", self.shared.dir.join(checkpoint::FILE_NAME), e))?;
        st.in_flight.drain(..=idx);
        st.acked = acked;
        let count = idx as u64 + 1;
        st.pending = st.pending.saturating_sub(count);
        self.shared
            .acked_records
            .fetch_add(count, Ordering::Relaxed);
        self.shared.delete_acked_segments(&mut st);
        Ok(())
    }

    /// Forgets what was handed out and not acknowledged: the next
    /// [`replay_batch`](Spool::replay_batch) starts again after the last acknowledged record,
    /// in the same order. Use it when a replay attempt failed.
    pub fn rewind(&self) -> Result<(), SpoolError> {
        let mut st = self.shared.lock()?;
        st.in_flight.clear();
        st.cursor = st.acked;
        Ok(())
    }

    /// A snapshot of size, backlog and the age of the oldest waiting record.
    pub fn status(&self) -> Result<SpoolStatus, SpoolError> {
        let st = self.shared.lock()?;
        let oldest_record_age = if st.pending > 0 {
            self.shared
                .appended_ms_at(&st, st.acked)
                .map(|ms| Duration::from_millis(now_ms().saturating_sub(ms)))
        } else {
            None
        };
        Ok(SpoolStatus {
            dir: self.shared.dir.clone(),
            segments: st.segments.len(),
            bytes: st.bytes,
            max_bytes: self.shared.config.max_bytes,
            pending_records: st.pending,
            in_flight_records: st.in_flight.len(),
            oldest_record_age,
        })
    }

    /// Totals since the spool was opened (read without the lock).
    pub fn counters(&self) -> SpoolCounters {
        SpoolCounters {
            appended_records: self.shared.appended_records.load(Ordering::Relaxed),
            acked_records: self.shared.acked_records.load(Ordering::Relaxed),
            appended_bytes: self.shared.appended_bytes.load(Ordering::Relaxed),
        }
    }

    /// Forces appended records to disk now, whatever the [`FsyncPolicy`].
    pub fn sync(&self) -> Result<(), SpoolError> {
        let mut st = self.shared.lock()?;
        self.shared.sync_writer(&mut st)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Ok(mut stop) = self.shared.stop.lock() {
            *stop = true;
        }
        self.shared.stop_signal.notify_all();
        if let Some(handle) = self.flusher.take() {
            let _ = handle.join();
        }
        if self.shared.config.fsync != FsyncPolicy::Never {
            if let Ok(mut st) = self.shared.state.lock() {
                if let Err(e) = self.shared.sync_writer(&mut st) {
                    tracing::error!(error = %e, "spool fsync on close failed");
                }
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> Result<MutexGuard<'_, State>, SpoolError> {
        self.state.lock().map_err(|_| SpoolError::Poisoned)
    }

    fn segment_path(&self, id: u64) -> PathBuf {
        self.dir.join(segment::segment_name(id))
    }

    fn sync_enabled(&self) -> bool {
        self.config.fsync != FsyncPolicy::Never
    }

    /// Forces `interval` appends to disk until the spool is dropped.
    fn run_flusher(&self) {
        let interval = self.config.fsync_interval();
        let Ok(mut stop) = self.stop.lock() else {
            return;
        };
        loop {
            match self.stop_signal.wait_timeout(stop, interval) {
                Ok((guard, _)) => stop = guard,
                Err(_) => return,
            }
            if *stop {
                return;
            }
            let Ok(mut st) = self.state.lock() else {
                return;
            };
            if let Err(e) = self.sync_writer(&mut st) {
                tracing::error!(
                    error = %e,
                    "spool fsync failed; records appended since the last fsync may not \
                     survive a machine crash"
                );
            }
        }
    }

    fn sync_writer(&self, st: &mut State) -> Result<(), SpoolError> {
        if let Some(w) = st.writer.as_mut().filter(|w| w.dirty) {
            w.file
                .sync_data()
                .map_err(|e| SpoolError::io("fsync", self.segment_path(w.id), e))?;
            w.dirty = false;
        }
        Ok(())
    }

    /// Appends encoded frames, rolling segments at `segment_bytes`. Space was checked.
    fn write_frames(
        &self,
        st: &mut State,
        frames: &[u8],
        frame_lens: &[u64],
    ) -> Result<(), SpoolError> {
        let segment_bytes = self.config.segment_bytes;
        let mut i = 0;
        let mut offset = 0usize;
        while i < frame_lens.len() {
            self.prepare_writer(st, frame_lens[i])?;
            let Some(meta) = st.segments.back().copied() else {
                return Err(SpoolError::Poisoned);
            };
            let mut len = meta.len;
            let mut j = i;
            while j < frame_lens.len() && fits(len, frame_lens[j], segment_bytes) {
                len += frame_lens[j];
                j += 1;
            }
            let chunk = (len - meta.len) as usize;
            let bytes = &frames[offset..offset + chunk];
            let Some(w) = st.writer.as_mut() else {
                return Err(SpoolError::Poisoned);
            };
            if let Err(e) = w.file.write_all(bytes) {
                // Leave no partial frame behind; a new segment takes the next append. Nothing
                // past `meta.len` is ever read, and reopening reports what could not be cut.
                let _ = w.file.set_len(meta.len);
                st.writer = None;
                return Err(SpoolError::io("append to", self.segment_path(meta.id), e));
            }
            w.dirty = true;
            if let Some(m) = st.segments.back_mut() {
                m.len = len;
            }
            st.bytes += len - meta.len;
            let count = (j - i) as u64;
            st.pending += count;
            self.appended_records.fetch_add(count, Ordering::Relaxed);
            self.appended_bytes
                .fetch_add(len - meta.len, Ordering::Relaxed);
            offset += chunk;
            i = j;
        }
        if self.config.fsync == FsyncPolicy::Always {
            self.sync_writer(st)?;
        }
        Ok(())
    }

    /// Makes sure the writer's segment can take a frame of `frame_len` bytes, closing the
    /// current segment and starting a new one if not.
    fn prepare_writer(&self, st: &mut State, frame_len: u64) -> Result<(), SpoolError> {
        if let Some(len) = st.active_len() {
            if fits(len, frame_len, self.config.segment_bytes) {
                return Ok(());
            }
            if self.sync_enabled() {
                self.sync_writer(st)?;
            }
            st.writer = None;
        }
        let id = st.next_id;
        let path = self.segment_path(id);
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| {
                file.write_all(&segment::header_bytes())?;
                if self.sync_enabled() {
                    file.sync_all()?;
                    checkpoint::sync_dir(&self.dir)?;
                }
                Ok(file)
            });
        let file = match created {
            Ok(f) => f,
            Err(e) => {
                if e.kind() != io::ErrorKind::AlreadyExists {
                    let _ = fs::remove_file(&path);
                }
                return Err(SpoolError::io("create", path, e));
            }
        };
        st.next_id += 1;
        st.segments.push_back(SegmentMeta {
            id,
            len: HEADER_LEN,
        });
        st.bytes += HEADER_LEN;
        st.writer = Some(Writer {
            id,
            file,
            dirty: false,
        });
        Ok(())
    }

    /// The first segment at or after `pos` that has a record at or after it, and the
    /// position of that record.
    fn locate(st: &State, pos: SpoolPosition) -> Option<(SegmentMeta, SpoolPosition)> {
        st.segments
            .iter()
            .filter(|m| m.id >= pos.segment())
            .find_map(|m| {
                let offset = if m.id == pos.segment() {
                    pos.offset().max(HEADER_LEN)
                } else {
                    HEADER_LEN
                };
                (offset < m.len).then(|| (*m, SpoolPosition::new(m.id, offset)))
            })
    }

    /// Reads the record at the cursor and moves the cursor past it.
    fn read_next(&self, st: &mut State) -> Result<Option<(SpoolPosition, Record)>, SpoolError> {
        let Some((meta, pos)) = Self::locate(st, st.cursor) else {
            return Ok(None);
        };
        let path = self.segment_path(meta.id);
        let reader = match st.reader.take() {
            Some((id, mut r)) if id == meta.id => {
                r.set_end(meta.len);
                r.seek(pos.offset())
                    .map_err(|e| SpoolError::io("read", path.clone(), e))?;
                r
            }
            _ => FrameReader::open(&path, pos.offset(), meta.len)
                .map_err(|e| SpoolError::io("read", path.clone(), e))?,
        };
        let (_, reader) = st.reader.insert((meta.id, reader));
        let corrupt = |offset, detail: String| SpoolError::Corrupt {
            segment: segment::segment_name(meta.id),
            offset,
            detail,
        };
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(None),
            Err(ReadError::Io(e)) => return Err(SpoolError::io("read", path, e)),
            Err(ReadError::Damage {
                offset,
                kind,
                detail,
            }) => return Err(corrupt(offset, format!("{kind}: {detail}"))),
        };
        let decoded = codec::decode(&frame.payload)
            .map_err(|d| corrupt(frame.offset, format!("record does not decode: {d}")))?;
        st.in_flight.push_back(InFlight {
            position: pos,
            end: frame.end,
        });
        st.cursor = SpoolPosition::new(meta.id, frame.end);
        Ok(Some((pos, decoded.record)))
    }

    /// Append time of the first record at or after `pos`, read from its frame (no checksum
    /// check: this only feeds a status figure).
    fn appended_ms_at(&self, st: &State, pos: SpoolPosition) -> Option<u64> {
        let (meta, pos) = Self::locate(st, pos)?;
        let mut file = File::open(self.segment_path(meta.id)).ok()?;
        file.seek(SeekFrom::Start(pos.offset() + segment::FRAME_HEADER_LEN))
            .ok()?;
        let mut buf = [0u8; codec::APPEND_MS_LEN];
        file.read_exact(&mut buf).ok()?;
        codec::peek_appended_ms(&buf)
    }

    /// Deletes the oldest segments while every record in them is acknowledged.
    fn delete_acked_segments(&self, st: &mut State) {
        let mut freed = false;
        while let Some(front) = st.segments.front().copied() {
            let fully_acked = front.id < st.acked.segment()
                || (front.id == st.acked.segment() && st.acked.offset() >= front.len);
            if !fully_acked {
                break;
            }
            if st.writer.as_ref().is_some_and(|w| w.id == front.id) {
                st.writer = None;
            }
            if st.reader.as_ref().is_some_and(|(id, _)| *id == front.id) {
                st.reader = None;
            }
            let path = self.segment_path(front.id);
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(
                        segment = %path.display(),
                        error = %e,
                        "cannot delete acknowledged spool segment; will retry on the next ack"
                    );
                    break;
                }
            }
            st.segments.pop_front();
            st.bytes -= front.len;
            freed = true;
        }
        if freed {
            if self.sync_enabled() {
                if let Err(e) = checkpoint::sync_dir(&self.dir) {
                    tracing::warn!(error = %e, "cannot fsync the spool folder");
                }
            }
            self.space_freed.notify_all();
        }
    }
}

impl State {
    /// Length of the segment being appended to, if there is one.
    fn active_len(&self) -> Option<u64> {
        self.writer.as_ref()?;
        self.segments.back().map(|m| m.len)
    }
}

/// Whether a frame of `frame_len` bytes goes into a segment of `len` bytes (an empty segment
/// takes any frame, so a record larger than `segment_bytes` gets a segment of its own).
fn fits(len: u64, frame_len: u64, segment_bytes: u64) -> bool {
    len == HEADER_LEN || len + frame_len <= segment_bytes
}

/// Bytes that appending frames of these lengths adds, headers of new segments included,
/// starting from an active segment of `active_len` bytes (or none).
fn space_needed(active_len: Option<u64>, frame_lens: &[u64], segment_bytes: u64) -> u64 {
    let mut current = active_len;
    let mut total = 0u64;
    for &f in frame_lens {
        let len = match current {
            Some(len) if fits(len, f, segment_bytes) => len,
            _ => {
                total += HEADER_LEN;
                HEADER_LEN
            }
        };
        current = Some(len + f);
        total += f;
    }
    total
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
