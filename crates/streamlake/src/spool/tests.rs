//! Behaviour of the spool as a whole: order, acknowledgement, restarts, damage, limits, locking.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::record::Header;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;

/// Small segments so a few dozen records span many files; no fsync to keep tests fast.
fn config(segment_bytes: u64, max_bytes: u64) -> SpoolConfig {
    SpoolConfig {
        segment_bytes,
        max_bytes,
        fsync: FsyncPolicy::Never,
        ..SpoolConfig::default()
    }
}

/// A record exercising every field: keys, `None` and empty values, null headers, partitions
/// and timestamps, depending on `i`.
fn rec(i: usize) -> Record {
    let value = match i % 5 {
        0 => None,
        1 => Some(Bytes::new()),
        _ => Some(Bytes::from(format!("value-{i:04}-{}", "x".repeat(i % 7)))),
    };
    let mut headers = vec![Header::new("seq", i.to_string())];
    if i.is_multiple_of(3) {
        headers.push(Header {
            key: "null".into(),
            value: None,
        });
        headers.push(Header::new("seq", "again"));
    }
    Record {
        topic: format!("topic-{}", i % 2),
        key: (!i.is_multiple_of(4)).then(|| Bytes::from(format!("key-{}", i % 3))),
        value,
        headers,
        partition: (i.is_multiple_of(2)).then_some(i as i32 % 3),
        timestamp: (i % 3 != 1).then_some(1_700_000_000_000 + i as i64),
    }
}

fn recs(range: std::ops::Range<usize>) -> Vec<Record> {
    range.map(rec).collect()
}

/// Replays everything left, in batches of 7.
fn drain(spool: &Spool) -> Vec<(SpoolPosition, Record)> {
    let mut all = Vec::new();
    loop {
        let batch = spool.replay_batch(7).unwrap();
        if batch.is_empty() {
            return all;
        }
        assert!(batch.len() <= 7);
        all.extend(batch);
    }
}

fn records_of(items: &[(SpoolPosition, Record)]) -> Vec<Record> {
    items.iter().map(|(_, r)| r.clone()).collect()
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    names
}

/// Every file in the folder with its contents.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Records by position, read with `inspect`.
fn inspected(dir: &Path) -> Vec<(SpoolPosition, Record)> {
    inspect(dir)
        .unwrap()
        .filter_map(|e| match e.unwrap() {
            InspectEntry::Record {
                position, record, ..
            } => Some((position, record)),
            _ => None,
        })
        .collect()
}

/// Writes records 0..n into a fresh spool in `dir` and closes it.
fn fill(dir: &Path, n: usize, segment_bytes: u64) {
    let (spool, report) = Spool::open(dir, config(segment_bytes, 1 << 20)).unwrap();
    assert!(report.is_clean());
    spool.append_batch(&recs(0..n)).unwrap();
}

#[test]
fn round_trip_across_segments_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spool");
    let cfg = SpoolConfig {
        fsync: FsyncPolicy::Always,
        ..config(400, 1 << 20)
    };
    let (spool, report) = Spool::open(&dir, cfg.clone()).unwrap();
    assert!(dir.is_dir(), "open creates the folder");
    assert_eq!(report.pending_records, 0);
    assert_eq!(report.segments, 0);
    assert!(report.is_clean());

    let expected = recs(0..100);
    for r in &expected[..40] {
        spool.append(r).unwrap();
    }
    spool.append_batch(&expected[40..]).unwrap();

    let segments = segment_files(&dir);
    assert!(segments.len() >= 10, "{} segments", segments.len());
    assert_eq!(segments[0], "00000000000000000001.seg");
    for s in &segments {
        let len = fs::metadata(dir.join(s)).unwrap().len();
        assert!(len <= 400 || s == segments.last().unwrap(), "{s}: {len}");
    }
    let status = spool.status().unwrap();
    assert_eq!(status.pending_records, 100);
    assert_eq!(status.segments, segments.len());
    let on_disk: u64 = segments
        .iter()
        .map(|s| fs::metadata(dir.join(s)).unwrap().len())
        .sum();
    assert_eq!(status.bytes, on_disk);
    assert!(status.oldest_record_age.unwrap() < Duration::from_secs(60));
    let counters = spool.counters();
    assert_eq!(counters.appended_records, 100);
    assert_eq!(
        counters.appended_bytes,
        on_disk - HEADER_LEN * segments.len() as u64
    );

    let replayed = drain(&spool);
    assert_eq!(records_of(&replayed), expected);
    assert!(replayed.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(spool.status().unwrap().in_flight_records, 100);
    assert!(spool.replay_batch(10).unwrap().is_empty());
    assert!(spool.replay_batch(0).unwrap().is_empty());

    // Nothing was acknowledged: after a restart everything comes back, at the same positions.
    drop(spool);
    let (spool, report) = Spool::open(&dir, cfg).unwrap();
    assert!(report.is_clean());
    assert_eq!(report.pending_records, 100);
    assert_eq!(report.segments, segments.len());
    assert_eq!(drain(&spool), replayed);
    assert_eq!(inspected(&dir), replayed);
}

#[test]
fn ack_and_reopen_resume_after_the_last_ack_and_delete_acked_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (spool, _) = Spool::open(dir, config(300, 1 << 20)).unwrap();
    spool.append_batch(&recs(0..60)).unwrap();
    let before = segment_files(dir);
    assert!(before.len() >= 6);
    let all = inspected(dir);
    assert_eq!(records_of(&all), recs(0..60));

    let first = spool.replay_batch(25).unwrap();
    assert_eq!(records_of(&first), recs(0..25));
    let last = first[24].0;
    spool.ack(last).unwrap();
    // Acknowledging again, or an earlier position, changes nothing.
    spool.ack(last).unwrap();
    spool.ack(first[3].0).unwrap();

    // Everything before record 25 is acknowledged: only segments holding records 25.. remain.
    let mut kept: Vec<String> = all[25..]
        .iter()
        .map(|(p, _)| segment::segment_name(p.segment()))
        .collect();
    kept.dedup();
    assert_eq!(segment_files(dir), kept);
    assert!(kept.len() < before.len());
    assert!(!dir.join(&before[0]).exists());
    let status = spool.status().unwrap();
    assert_eq!(status.pending_records, 35);
    assert_eq!(status.in_flight_records, 0);
    assert_eq!(spool.counters().acked_records, 25);

    // Hand out more without acknowledging, then restart: replay resumes after record 24.
    assert_eq!(spool.replay_batch(5).unwrap().len(), 5);
    drop(spool);
    let (spool, report) = Spool::open(dir, config(300, 1 << 20)).unwrap();
    assert!(report.is_clean());
    assert_eq!(report.pending_records, 35);
    let rest = drain(&spool);
    assert_eq!(records_of(&rest), recs(25..60));

    spool.ack(rest.last().unwrap().0).unwrap();
    assert_eq!(segment_files(dir), Vec::<String>::new());
    let status = spool.status().unwrap();
    assert_eq!(
        (status.segments, status.bytes, status.pending_records),
        (0, 0, 0)
    );
    assert_eq!(status.oldest_record_age, None);
    drop(spool);

    // Segment ids are never reused, so the checkpoint cannot cover new records.
    let (spool, report) = Spool::open(dir, config(300, 1 << 20)).unwrap();
    assert_eq!((report.pending_records, report.segments), (0, 0));
    spool.append(&rec(99)).unwrap();
    let files = segment_files(dir);
    assert_eq!(files.len(), 1);
    assert!(files[0] > before.last().unwrap().clone(), "{files:?}");
    let again = drain(&spool);
    assert_eq!(records_of(&again), vec![rec(99)]);
    drop(spool);
    let (spool, report) = Spool::open(dir, config(300, 1 << 20)).unwrap();
    assert_eq!(report.pending_records, 1);
    assert_eq!(records_of(&drain(&spool)), vec![rec(99)]);
}

#[test]
fn rewind_redelivers_the_same_records_in_the_same_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(tmp.path(), config(300, 1 << 20)).unwrap();
    spool.append_batch(&recs(0..20)).unwrap();

    let a = spool.replay_batch(5).unwrap();
    spool.ack(a[1].0).unwrap();
    let b = spool.replay_batch(5).unwrap();
    assert_eq!(records_of(&b), recs(5..10));
    spool.rewind().unwrap();
    assert_eq!(spool.status().unwrap().in_flight_records, 0);

    // Positions handed out before the rewind cannot be acknowledged until handed out again.
    let err = spool.ack(b[4].0).unwrap_err();
    assert!(matches!(err, SpoolError::InvalidAck { .. }), "{err}");

    let again = spool.replay_batch(8).unwrap();
    let mut expected = a[2..].to_vec();
    expected.extend(b.iter().cloned());
    assert_eq!(again, expected);
    spool.rewind().unwrap();
    assert_eq!(spool.replay_batch(8).unwrap(), expected);
    spool.ack(b[4].0).unwrap();
    assert_eq!(records_of(&drain(&spool)), recs(10..20));
    assert_eq!(spool.status().unwrap().pending_records, 10);
}

#[test]
fn truncated_tail_keeps_the_valid_prefix_and_sets_the_rest_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fill(dir, 30, 300);
    let all = inspected(dir);
    let last_segment = all.last().unwrap().0.segment();
    let in_last: Vec<_> = all
        .iter()
        .filter(|(p, _)| p.segment() == last_segment)
        .collect();
    assert!(in_last.len() >= 2, "the last segment holds several records");

    // A crash in the middle of writing the last record.
    let name = segment::segment_name(last_segment);
    let path = dir.join(&name);
    let original = fs::read(&path).unwrap();
    let cut_record = in_last.last().unwrap().0;
    let cut_at = cut_record.offset() as usize + 13;
    fs::write(&path, &original[..cut_at]).unwrap();

    let (spool, report) = Spool::open(dir, config(300, 1 << 20)).unwrap();
    assert_eq!(report.damage.len(), 1, "{:?}", report.damage);
    let d = &report.damage[0];
    assert_eq!(d.segment, name);
    assert_eq!(d.offset, cut_record.offset());
    assert_eq!(d.bytes, 13);
    assert_eq!(d.records_lost, Some(1));
    assert_eq!(d.kind, DamageKind::Truncated);
    let corrupt = d.moved_to.clone().unwrap();
    assert_eq!(corrupt, dir.join(format!("{name}.corrupt")));
    assert_eq!(
        fs::read(&corrupt).unwrap(),
        &original[cut_record.offset() as usize..cut_at]
    );
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        cut_record.offset(),
        "the segment is cut to its valid prefix"
    );
    assert!(d.to_string().contains(&name), "{d}");
    assert_eq!(report.pending_records, 29);

    // The prefix replays, and new records follow it in a new segment.
    spool.append(&rec(500)).unwrap();
    let mut expected = recs(0..29);
    expected.push(rec(500));
    assert_eq!(records_of(&drain(&spool)), expected);
    assert!(segment_files(dir).last().unwrap() > &name);
    drop(spool);

    // Reopening finds nothing new.
    let (_spool, report) = Spool::open(dir, config(300, 1 << 20)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.pending_records, 30);
}

#[test]
fn bit_flip_in_a_middle_segment_loses_only_its_damaged_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fill(dir, 40, 400);
    let all = inspected(dir);
    let segments = segment_files(dir);
    assert!(segments.len() >= 4);

    // Flip one bit in the payload of the second record of the second segment.
    let victim_segment = all[0].0.segment() + 1;
    let in_victim: Vec<SpoolPosition> = all
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| p.segment() == victim_segment)
        .collect();
    assert!(in_victim.len() >= 3);
    let victim = in_victim[1];
    let name = segment::segment_name(victim_segment);
    let path = dir.join(&name);
    let mut bytes = fs::read(&path).unwrap();
    let original = bytes.clone();
    bytes[victim.offset() as usize + 8 + 10] ^= 0x20;
    fs::write(&path, &bytes).unwrap();

    let (spool, report) = Spool::open(dir, config(400, 1 << 20)).unwrap();
    assert_eq!(report.damage.len(), 1);
    let d = &report.damage[0];
    assert_eq!(d.segment, name);
    assert_eq!(d.offset, victim.offset());
    assert_eq!(d.kind, DamageKind::Checksum);
    assert_eq!(d.bytes, original.len() as u64 - victim.offset());
    // The damaged record and the intact ones after it in the same segment.
    assert_eq!(d.records_lost, Some(in_victim.len() as u64 - 1));
    assert_eq!(
        fs::read(d.moved_to.as_ref().unwrap()).unwrap(),
        &bytes[victim.offset() as usize..]
    );
    assert!(d.detail.contains("checksum mismatch"), "{}", d.detail);

    let expected: Vec<(SpoolPosition, Record)> = all
        .iter()
        .filter(|(p, _)| p.segment() != victim_segment || *p < victim)
        .cloned()
        .collect();
    assert_eq!(report.pending_records, expected.len() as u64);
    let replayed = drain(&spool);
    assert_eq!(replayed, expected);
    assert!(
        replayed
            .iter()
            .any(|(p, _)| p.segment() > victim_segment + 1),
        "later intact segments replay"
    );
}

#[test]
fn inspect_reports_damage_without_changing_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fill(dir, 40, 400);
    let all = inspected(dir);
    let first = segment::segment_name(all[0].0.segment());
    let last_id = all.last().unwrap().0.segment();
    let last = segment::segment_name(last_id);

    // A bit flip in the first record of the first segment, and a cut-off last segment.
    let mut bytes = fs::read(dir.join(&first)).unwrap();
    bytes[HEADER_LEN as usize + 8 + 3] ^= 1;
    fs::write(dir.join(&first), &bytes).unwrap();
    let last_len = fs::metadata(dir.join(&last)).unwrap().len();
    let f = OpenOptions::new()
        .write(true)
        .open(dir.join(&last))
        .unwrap();
    f.set_len(last_len - 3).unwrap();
    drop(f);

    let before = snapshot(dir);
    let summary = inspect(dir).unwrap().summarize().unwrap();
    assert_eq!(snapshot(dir), before, "inspect changes nothing");
    assert_eq!(summary.damage.len(), 2, "{:?}", summary.damage);
    let d0 = &summary.damage[0];
    assert_eq!(
        (d0.segment.as_str(), d0.offset, d0.kind),
        (first.as_str(), HEADER_LEN, DamageKind::Checksum)
    );
    assert_eq!(d0.moved_to, None);
    let d1 = &summary.damage[1];
    assert_eq!(
        (d1.segment.as_str(), d1.kind),
        (last.as_str(), DamageKind::Truncated)
    );
    assert_eq!(d1.records_lost, Some(1));
    let in_first = all
        .iter()
        .filter(|(p, _)| p.segment() == all[0].0.segment())
        .count() as u64;
    assert_eq!(d0.records_lost, Some(in_first));
    assert_eq!(summary.records, 40 - in_first - 1);
    assert_eq!(summary.pending_records, summary.records);
    assert_eq!(
        summary.segments,
        before.keys().filter(|k| k.ends_with(".seg")).count()
    );
    assert_eq!(summary.checkpoint, None);
    assert!(summary.corrupt_files.is_empty());

    // Opening moves the damage aside and reports the same; inspect then sees the .corrupt
    // files and no damage, and works while the spool is open (it takes no lock).
    let (spool, report) = Spool::open(dir, config(400, 1 << 20)).unwrap();
    let strip = |d: &Damage| Damage {
        moved_to: None,
        ..d.clone()
    };
    assert_eq!(
        report.damage.iter().map(strip).collect::<Vec<_>>(),
        summary.damage
    );
    let summary = inspect(dir).unwrap().summarize().unwrap();
    assert!(summary.damage.is_empty());
    assert_eq!(
        summary.corrupt_files,
        vec![format!("{first}.corrupt"), format!("{last}.corrupt")]
    );
    assert_eq!(summary.records, 40 - in_first - 1);

    // Acknowledged records show as such.
    let batch = spool.replay_batch(3).unwrap();
    spool.ack(batch[2].0).unwrap();
    let summary = inspect(dir).unwrap().summarize().unwrap();
    assert_eq!(summary.pending_records, summary.records - 3);
    assert!(summary.checkpoint.is_some());
}

#[test]
fn full_spool_with_on_full_error_fails_at_once_and_drops_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig {
        on_full: OnFull::Error,
        ..config(300, 1000)
    };
    let (spool, _) = Spool::open(tmp.path(), cfg).unwrap();
    let mut stored = Vec::new();
    let err = loop {
        let r = rec(stored.len() + 2);
        match spool.append(&r) {
            Ok(()) => stored.push(r),
            Err(e) => break e,
        }
        assert!(stored.len() < 100, "never filled up");
    };
    match &err {
        SpoolError::Full {
            used,
            max_bytes,
            needed,
            waited,
        } => {
            assert_eq!(*max_bytes, 1000);
            assert!(used + needed > 1000);
            assert_eq!(*waited, Duration::ZERO);
        }
        other => panic!("expected Full, got {other:?}"),
    }
    assert!(err.is_retriable());
    assert!(spool.status().unwrap().bytes <= 1000);
    assert_eq!(spool.counters().appended_records, stored.len() as u64);

    let replayed = drain(&spool);
    assert_eq!(records_of(&replayed), stored);
    spool.ack(replayed.last().unwrap().0).unwrap();
    spool.append(&rec(7)).unwrap();

    // A record that cannot fit even in an empty spool is refused as too large.
    let huge = Record::new("t", vec![0u8; 2000]);
    let err = spool.append(&huge).unwrap_err();
    assert!(matches!(err, SpoolError::TooLarge { .. }), "{err}");
    assert!(!err.is_retriable());
}

/// Fills a spool in `dir` (limit 1000 bytes, 300-byte segments) and returns what it holds.
fn fill_to_the_limit(dir: &Path) -> Vec<Record> {
    let cfg = SpoolConfig {
        on_full: OnFull::Error,
        ..config(300, 1000)
    };
    let (spool, _) = Spool::open(dir, cfg).unwrap();
    let mut stored = Vec::new();
    while spool.append(&rec(stored.len() + 2)).is_ok() {
        stored.push(rec(stored.len() + 2));
    }
    stored
}

#[test]
fn full_spool_with_on_full_block_waits_until_an_ack_frees_space() {
    let tmp = tempfile::tempdir().unwrap();
    let stored = fill_to_the_limit(tmp.path());
    let cfg = SpoolConfig {
        on_full: OnFull::Block,
        block_timeout_ms: 20_000,
        ..config(300, 1000)
    };
    let (spool, _) = Spool::open(tmp.path(), cfg).unwrap();
    let spool = Arc::new(spool);

    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let appender = {
        let spool = Arc::clone(&spool);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let started = Instant::now();
            let result = spool.append(&rec(1000));
            done.store(true, Ordering::SeqCst);
            tx.send((result, started.elapsed())).unwrap();
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !done.load(Ordering::SeqCst),
        "append waits while the spool is full"
    );

    // Replaying without acknowledging frees nothing.
    let first = spool.replay_batch(stored.len()).unwrap();
    assert_eq!(records_of(&first), stored);
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());

    // Acknowledging the first segment's records deletes it and releases the appender.
    let first_segment = first[0].0.segment();
    let last_in_first = first
        .iter()
        .rev()
        .find(|(p, _)| p.segment() == first_segment)
        .unwrap()
        .0;
    spool.ack(last_in_first).unwrap();
    let (result, waited) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    result.unwrap();
    appender.join().unwrap();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");

    // The blocked record comes after everything appended before it.
    spool.rewind().unwrap();
    let rest = drain(&spool);
    let acked = first
        .iter()
        .filter(|(p, _)| p.segment() == first_segment)
        .count();
    let mut expected = stored[acked..].to_vec();
    expected.push(rec(1000));
    assert_eq!(records_of(&rest), expected);
}

#[test]
fn full_spool_with_on_full_block_times_out_when_nothing_is_acked() {
    let tmp = tempfile::tempdir().unwrap();
    let stored = fill_to_the_limit(tmp.path());
    let cfg = SpoolConfig {
        on_full: OnFull::Block,
        block_timeout_ms: 250,
        ..config(300, 1000)
    };
    let (spool, _) = Spool::open(tmp.path(), cfg).unwrap();
    let started = Instant::now();
    let err = spool.append(&rec(1000)).unwrap_err();
    let elapsed = started.elapsed();
    match err {
        SpoolError::Full { waited, .. } => assert!(waited >= Duration::from_millis(250)),
        other => panic!("expected Full, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert_eq!(
        records_of(&drain(&spool)),
        stored,
        "nothing dropped or added"
    );
}

#[test]
fn second_open_of_the_same_folder_fails_while_the_first_is_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (first, _) = Spool::open(tmp.path(), config(300, 1 << 20)).unwrap();
    first.append(&rec(1)).unwrap();
    let err = Spool::open(tmp.path(), config(300, 1 << 20)).unwrap_err();
    assert!(matches!(err, SpoolError::Locked { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("already open in another StreamLake process"),
        "{msg}"
    );
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    assert!(!err.is_retriable());
    drop(first);
    let (again, report) = Spool::open(tmp.path(), config(300, 1 << 20)).unwrap();
    assert_eq!(report.pending_records, 1);
    assert_eq!(records_of(&drain(&again)), vec![rec(1)]);
}

#[test]
fn unusable_checkpoint_replays_everything_rather_than_lose_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let (spool, _) = Spool::open(dir, config(300, 1 << 20)).unwrap();
        spool.append_batch(&recs(0..10)).unwrap();
        let batch = spool.replay_batch(4).unwrap();
        spool.ack(batch[3].0).unwrap();
    }
    fs::write(dir.join(checkpoint::FILE_NAME), b"garbage").unwrap();
    let (spool, report) = Spool::open(dir, config(300, 1 << 20)).unwrap();
    let problem = report.checkpoint_problem.clone().unwrap();
    assert!(problem.contains("delivered twice"), "{problem}");
    assert!(!report.is_clean());
    // Segments already deleted are gone; everything still on disk is replayed.
    let replayed = records_of(&drain(&spool));
    assert_eq!(replayed.last(), Some(&rec(9)));
    assert!(replayed.len() >= 6, "{}", replayed.len());
    assert_eq!(replayed[..], recs(10 - replayed.len()..10)[..]);
}

#[test]
fn segment_of_a_newer_format_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fill(dir, 10, 300);
    let name = segment_files(dir)[1].clone();
    let mut bytes = fs::read(dir.join(&name)).unwrap();
    bytes[8] = 9;
    fs::write(dir.join(&name), &bytes).unwrap();
    let before = snapshot(dir);
    let err = Spool::open(dir, config(300, 1 << 20)).unwrap_err();
    match &err {
        SpoolError::UnsupportedVersion {
            segment, version, ..
        } => assert_eq!((segment.as_str(), *version), (name.as_str(), 9)),
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    let mut after = snapshot(dir);
    // Only the lock file is (re)written by the attempt.
    after.remove(lock::FILE_NAME);
    let mut before = before;
    before.remove(lock::FILE_NAME);
    assert_eq!(after, before);
}

#[test]
fn interval_policy_syncs_in_the_background_and_stops_on_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig {
        fsync: FsyncPolicy::Interval,
        fsync_interval_ms: 10,
        ..config(300, 1 << 20)
    };
    let (spool, _) = Spool::open(tmp.path(), cfg.clone()).unwrap();
    spool.append_batch(&recs(0..5)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !spool.shared.lock().unwrap().writer.as_ref().unwrap().dirty,
        "the background thread synced the segment"
    );
    spool.append(&rec(5)).unwrap();
    spool.sync().unwrap();
    drop(spool);
    let (spool, report) = Spool::open(tmp.path(), cfg).unwrap();
    assert_eq!(report.pending_records, 6);
    assert_eq!(records_of(&drain(&spool)), recs(0..6));
}

#[test]
fn configured_spool_is_off_without_a_folder() {
    assert!(Spool::open_configured(&SpoolConfig::default())
        .unwrap()
        .is_none());
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig {
        fsync: FsyncPolicy::Never,
        ..SpoolConfig::with_dir(tmp.path().join("s"))
    };
    let (spool, _) = Spool::open_configured(&cfg).unwrap().unwrap();
    assert_eq!(spool.dir(), tmp.path().join("s"));
    let bad = SpoolConfig {
        segment_bytes: 3,
        ..cfg
    };
    assert!(matches!(
        Spool::open_configured(&bad),
        Err(SpoolError::Config(_))
    ));
}

#[test]
fn spool_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Spool>();
}

#[test]
fn space_needed_counts_new_segment_headers() {
    // Empty spool: one header, then a roll after 2 frames of 100 in 250-byte segments.
    assert_eq!(
        space_needed(None, &[100, 100, 100], 250),
        16 + 200 + 16 + 100
    );
    // An active segment with room for one more frame.
    assert_eq!(space_needed(Some(150), &[100, 100], 250), 100 + 16 + 100);
    // A frame larger than a segment gets a segment of its own.
    assert_eq!(space_needed(Some(16), &[1000], 250), 1000);
}
