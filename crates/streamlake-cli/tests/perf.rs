//! `streamlake perf` and `streamlake perf consume`, run as users run them, against a real
//! tansu broker. What perf reports is checked against what is really in the topic.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use streamlake_test_support::{broker, cli_command, new_topic, repo_root, text, unique_topic};

/// The headers of every perf record, in order.
const HEADERS: [&str; 6] = [
    "ingestion_id",
    "source",
    "schema",
    "traceparent",
    "content_type",
    "perf_sent_us",
];

/// Every record of `topic`, as `consume --print json` prints them.
fn read_topic(topic: &str, extra: &[&str]) -> Vec<Value> {
    streamlake_test_support::consume_json(env!("CARGO_BIN_EXE_streamlake"), topic, extra)
}

fn streamlake() -> Command {
    cli_command(env!("CARGO_BIN_EXE_streamlake"))
}

fn run(args: &[&str]) -> Output {
    streamlake()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs `perf` with `args` on `topic`, expects success, and returns the one JSON object it
/// printed on stdout (and stderr).
fn perf_json(topic: &str, args: &[&str]) -> (Value, String) {
    let b = &broker().bootstrap;
    let mut all = vec!["perf", "-b", b, "-t", topic, "--json"];
    all.extend_from_slice(args);
    let out = run(&all);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "perf failed: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "--json prints one line and nothing else: {stdout}"
    );
    (serde_json::from_str(lines[0]).unwrap(), stderr)
}

/// Runs `perf consume` with `args` on `topic` and returns its JSON and exit status.
fn perf_consume_json(topic: &str, args: &[&str]) -> (Value, Output) {
    let b = &broker().bootstrap;
    let mut all = vec!["perf", "consume", "-b", b, "-t", topic, "--json"];
    all.extend_from_slice(args);
    let out = run(&all);
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}\n{}", text(&out.stderr));
    (serde_json::from_str(lines[0]).unwrap(), out)
}

fn f(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing: {v}"))
}

fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing: {v}"))
}

fn assert_ordered_percentiles(v: &Value) {
    let p: Vec<f64> = ["p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms"]
        .iter()
        .map(|k| f(v, k))
        .collect();
    assert!(p[0] > 0.0, "{v}");
    assert!(
        p.windows(2).all(|w| w[0] <= w[1]),
        "p50<=p95<=p99<=p999<=max: {v}"
    );
}

/// Offsets of each partition run 0, 1, 2, … with no gap or repeat.
fn assert_contiguous_offsets(records: &[Value]) {
    let mut by_partition: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for r in records {
        by_partition
            .entry(r["partition"].as_i64().unwrap())
            .or_default()
            .push(r["offset"].as_i64().unwrap());
    }
    for (p, mut offsets) in by_partition {
        offsets.sort_unstable();
        let want: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, want, "partition {p}");
    }
}

#[test]
fn perf_records_json_reports_them_all_and_the_topic_holds_them_with_keys_and_headers() {
    let t = new_topic("perf-json", 3);
    let (r, _) = perf_json(&t, &["--records", "20000"]);
    for field in [
        "records",
        "records_per_sec",
        "mb_per_sec",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "p999_ms",
        "max_ms",
        "errors",
        "bytes",
        "duration_secs",
        "producers",
        "target_throughput",
        "errors_by_kind",
    ] {
        assert!(r.get(field).is_some(), "{field} in {r}");
    }
    assert_eq!(u(&r, "records"), 20_000, "{r}");
    assert_eq!(u(&r, "delivered"), 20_000, "{r}");
    assert_eq!(u(&r, "errors"), 0, "{r}");
    assert_eq!(r["errors_by_kind"], serde_json::json!({}));
    assert_eq!(u(&r, "warmup_records"), 2_000, "auto warm-up: a tenth");
    assert_eq!(u(&r, "producers"), 1);
    assert_eq!(r["target_throughput"], Value::Null);
    assert_ordered_percentiles(&r);
    assert!(
        f(&r, "records_per_sec") > 0.0 && f(&r, "mb_per_sec") > 0.0,
        "{r}"
    );
    assert!(f(&r, "duration_secs") > 0.0);
    assert_eq!(f(&r, "avg_value_bytes"), 120.0);
    let rate = f(&r, "records_per_sec") * f(&r, "duration_secs");
    assert!(
        (rate - 20_000.0).abs() < 1.0,
        "rate x duration = records: {r}"
    );

    // The topic holds the measured and the warm-up records, each once.
    let records = read_topic(&t, &[]);
    assert_eq!(records.len(), 22_000);
    assert_contiguous_offsets(&records);
    let (mut keys, mut orders, mut bytes) = (HashSet::new(), HashSet::new(), 0u64);
    for rec in &records {
        let key = rec["key"].as_str().unwrap();
        assert!(
            key.len() == 11 && key.starts_with("cust-") && key[5..].parse::<u32>().unwrap() < 1000,
            "{key}"
        );
        keys.insert(key.to_owned());
        let names: Vec<&str> = rec["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["key"].as_str().unwrap())
            .collect();
        assert_eq!(names, HEADERS, "{rec}");
        let header = |name: &str| {
            rec["headers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["key"] == name)
                .unwrap()["value"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(header("source"), "streamlake-perf");
        assert_eq!(header("content_type"), "application/json");
        let sent_us: i64 = header("perf_sent_us").parse().unwrap();
        let ts_ms = rec["timestamp"].as_i64().unwrap();
        assert!(
            (sent_us / 1000 - ts_ms).abs() < 5_000,
            "{sent_us} vs {ts_ms}"
        );
        let value = rec["value"].as_str().unwrap();
        assert_eq!(value.len(), 120, "{value}");
        let doc: Value = serde_json::from_str(value).unwrap();
        assert_eq!(doc["customer"], key, "{doc}");
        let order = doc["order_id"].as_str().unwrap();
        orders.insert(order.to_owned());
        // Records are numbered from 0; the first 2,000 were the warm-up.
        if order["ord-".len()..].parse::<u64>().unwrap() >= 2_000 {
            bytes += (key.len() + value.len()) as u64;
            for h in rec["headers"].as_array().unwrap() {
                bytes +=
                    (h["key"].as_str().unwrap().len() + h["value"].as_str().unwrap().len()) as u64;
            }
        }
    }
    assert_eq!(orders.len(), 22_000, "every record is a different order");
    assert!(
        keys.len() > 900 && keys.len() <= 1000,
        "{} keys",
        keys.len()
    );
    assert_eq!(bytes, u(&r, "bytes"), "bytes are the measured records' own");
}

#[test]
fn perf_throughput_paces_a_duration_run() {
    let t = new_topic("perf-paced", 1);
    let (r, stderr) = perf_json(&t, &["--throughput", "2000", "--duration", "3s"]);
    let records = u(&r, "records");
    assert!(
        (5_100..=6_900).contains(&records),
        "about 2000/s for 3 s: {records}"
    );
    assert_eq!(u(&r, "errors"), 0);
    assert_eq!(f(&r, "target_throughput"), 2000.0);
    let rate = f(&r, "records_per_sec");
    assert!((1_700.0..=2_300.0).contains(&rate), "{rate}");
    assert_ordered_percentiles(&r);
    let progress = stderr.lines().filter(|l| l.starts_with('[')).count();
    assert!(progress >= 2, "a progress line every second: {stderr}");
    let warmup = u(&r, "warmup_records");
    assert_eq!(
        read_topic(&t, &[]).len() as u64,
        records + warmup,
        "the topic holds what was reported"
    );
}

#[test]
fn perf_consume_reads_exactly_what_perf_wrote_and_reports_end_to_end_latency() {
    let t = new_topic("perf-consume", 3);
    let (r, _) = perf_json(&t, &["--records", "20000", "--warmup", "0"]);
    assert_eq!((u(&r, "records"), u(&r, "warmup_records")), (20_000, 0));

    let (c, out) = perf_consume_json(&t, &["--records", "20000", "--from", "beginning"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(u(&c, "records"), 20_000, "{c}");
    assert_eq!(u(&c, "latency_from_header"), 20_000, "{c}");
    assert_eq!(u(&c, "partitions"), 3);
    assert_eq!(c["complete"], true);
    assert_eq!(c["idle_timeout"], false);
    assert_ordered_percentiles(&c);
    assert!(
        f(&c, "records_per_sec") > 0.0 && f(&c, "mb_per_sec") > 0.0,
        "{c}"
    );
    assert_eq!(
        u(&c, "bytes"),
        u(&r, "bytes"),
        "the bytes perf wrote are read"
    );

    // Asking for more than there is ends at the idle timeout, as a failure.
    let (c, out) = perf_consume_json(&t, &["--records", "20001", "--idle-timeout", "2s"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        (u(&c, "records"), c["idle_timeout"].clone()),
        (20_000, Value::Bool(true))
    );
    assert!(
        text(&out.stderr).contains("read 20,000 of 20,001 records"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn human_output_is_a_summary_table_on_stdout() {
    let t = new_topic("perf-human", 2);
    let b = &broker().bootstrap;
    let out = run(&[
        "perf",
        "-b",
        b,
        "-t",
        &t,
        "--records",
        "3000",
        "--warmup",
        "500",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("topic           {t} (2 partitions)")),
        "{stdout}"
    );
    assert!(
        stdout.contains("records         3,000 measured, 3,000 delivered (+500 warm-up"),
        "{stdout}"
    );
    assert!(stdout.contains("errors          0\n"), "{stdout}");
    for row in [
        "latency (ms)",
        "p99.9",
        "from intended",
        "from hand-over",
        "records/s",
    ] {
        assert!(stdout.contains(row), "{row} in {stdout}");
    }
    assert!(!stdout.contains('{'), "no JSON without --json: {stdout}");

    let out = run(&["perf", "consume", "-b", b, "-t", &t, "--records", "3500"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("records         3,500 read, 0 errors"),
        "{stdout}"
    );
    assert!(stdout.contains("end-to-end"), "{stdout}");
    assert!(stdout.contains("3,500 perf_sent_us headers"), "{stdout}");
}

#[test]
fn an_unknown_topic_is_named_and_create_partitions_makes_it() {
    let t = unique_topic("perf-new");
    let b = &broker().bootstrap;
    let out = run(&["perf", "-b", b, "-t", &t, "--records", "10"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("topic `{t}` does not exist")) && err.contains("--create-partitions"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let (r, stderr) = perf_json(
        &t,
        &[
            "--records",
            "100",
            "--warmup",
            "0",
            "--create-partitions",
            "2",
        ],
    );
    assert!(
        stderr.contains(&format!("created topic {t} with 2 partition(s)")),
        "{stderr}"
    );
    assert_eq!(u(&r, "records"), 100);
    let records = read_topic(&t, &[]);
    assert_eq!(records.len(), 100);
    let partitions: HashSet<i64> = records
        .iter()
        .map(|r| r["partition"].as_i64().unwrap())
        .collect();
    assert_eq!(partitions, HashSet::from([0, 1]));

    let out = run(&[
        "perf",
        "consume",
        "-b",
        b,
        "-t",
        "perf-no-such-topic",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("topic `perf-no-such-topic` does not exist"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn payload_file_without_keys_or_headers_is_cycled_as_is() {
    let t = new_topic("perf-file", 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload.jsonl");
    std::fs::write(&file, "{\"n\":1}\n\n{\"n\":2}\n{\"n\":3,\"x\":\"y\"}\n").unwrap();
    let file = file.display().to_string();
    let (r, _) = perf_json(
        &t,
        &[
            "--payload-file",
            &file,
            "--no-keys",
            "--no-headers",
            "--records",
            "30",
            "--warmup",
            "0",
        ],
    );
    assert_eq!((u(&r, "records"), u(&r, "errors")), (30, 0));
    let records = read_topic(&t, &[]);
    let values: Vec<&str> = records
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = ["{\"n\":1}", "{\"n\":2}", "{\"n\":3,\"x\":\"y\"}"]
        .iter()
        .cycle()
        .take(30)
        .copied()
        .collect();
    assert_eq!(values, want, "one partition: in order, cycled");
    for rec in &records {
        assert_eq!(rec["key"], Value::Null);
        assert_eq!(rec["headers"], serde_json::json!([]));
    }
    // No send-time header: perf consume measures from the record timestamps.
    let (c, out) = perf_consume_json(&t, &["--records", "30"]);
    assert!(out.status.success());
    assert_eq!(
        (
            u(&c, "latency_from_timestamp"),
            u(&c, "latency_from_header")
        ),
        (30, 0)
    );

    // A line that is not JSON is named.
    std::fs::write(dir.path().join("bad.jsonl"), "{\"n\":1}\nnot json\n").unwrap();
    let bad = dir.path().join("bad.jsonl").display().to_string();
    let out = run(&[
        "perf",
        "-b",
        &broker().bootstrap,
        "-t",
        &t,
        "--payload-file",
        &bad,
        "--records",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("line 2"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn ctrl_c_stops_early_and_still_reports() {
    let t = new_topic("perf-sigint", 1);
    let mut child = streamlake()
        .args([
            "perf",
            "-b",
            &broker().bootstrap,
            "-t",
            &t,
            "--throughput",
            "1000",
            "--warmup",
            "200",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first progress lines of the measured part, then interrupt.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("] measure") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "perf ended early");
    }
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{rest}");
    let r: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(r["interrupted"], true, "{r}");
    assert_eq!(u(&r, "errors"), 0);
    let records = u(&r, "records");
    assert!(records > 0, "{r}");
    assert_eq!(
        read_topic(&t, &[]).len() as u64,
        records + u(&r, "warmup_records"),
        "everything sent before the stop was delivered and counted"
    );
}

#[test]
fn avro_values_through_the_registry() {
    let t = new_topic("perf-avro", 2);
    let url = streamlake_test_support::registry().url();
    let schema = repo_root().join("schemas/order.avsc").display().to_string();
    let (r, stderr) = perf_json(
        &t,
        &[
            "--schema-registry",
            &url,
            "--value-format",
            "avro",
            "--value-schema",
            &schema,
            "--records",
            "500",
            "--warmup",
            "0",
        ],
    );
    assert!(stderr.contains("value schema id"), "{stderr}");
    assert_eq!((u(&r, "records"), u(&r, "errors")), (500, 0));
    let records = read_topic(&t, &["--schema-registry", &url, "--value-format", "avro"]);
    assert_eq!(records.len(), 500);
    for rec in &records {
        assert!(rec["value"]["order_id"].is_string(), "{rec}");
        assert!(rec["value"]["lines"].is_array(), "{rec}");
        let content_type = rec["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["key"] == "content_type")
            .unwrap()["value"]
            .clone();
        assert_eq!(content_type, "application/vnd.apache.avro+binary");
    }
}
