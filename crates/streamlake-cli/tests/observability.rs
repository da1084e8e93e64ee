//! What operators see of a running `streamlake`: JSON logs with correlation ids, the
//! `--metrics-addr` endpoint, `streamlake health`, and spans exported over OTLP, against a real
//! tansu broker.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use streamlake_test_support::{
    broker, cli_command, free_port, http_get, metrics_addr, new_topic, run_with, sample, signal,
    stderr_lines, terminate, text, unique_topic, unreachable_bootstrap,
};

/// Every record of `topic`, as `consume --print json` prints them.
fn consume_json(topic: &str, extra: &[&str]) -> Vec<Value> {
    streamlake_test_support::consume_json(env!("CARGO_BIN_EXE_streamlake"), topic, extra)
}

fn streamlake() -> Command {
    cli_command(env!("CARGO_BIN_EXE_streamlake"))
}

/// Starts `cmd` with stderr piped and waits for its metrics endpoint: the child, its stderr
/// lines after the endpoint's, and the endpoint's address.
fn spawn_with_metrics(cmd: &mut Command) -> (std::process::Child, Receiver<String>, String) {
    let mut child = cmd
        .args(["--metrics-addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let addr = metrics_addr(&lines);
    (child, lines, addr)
}

/// `produce --ingestion-ids` of `lines` to a broker that is not there, with a 1 s delivery
/// timeout: every record fails.
fn produce_unacknowledged(global: &[&str], lines: &str) -> std::process::Output {
    run_with(
        streamlake()
            .args(global)
            .args(["produce", "--ingestion-ids", "-t", "t"])
            .args(["-b", &unreachable_bootstrap()])
            .env("STREAMLAKE_PRODUCER__DELIVERY_TIMEOUT_MS", "1000")
            .env("STREAMLAKE_PRODUCER__REQUEST_TIMEOUT_MS", "500"),
        lines,
    )
}

#[test]
fn json_logs_name_the_line_and_ingestion_id_of_every_failed_record() {
    let out = produce_unacknowledged(&["--log-format", "json"], "x\ny\n");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    // Every line of stderr is one JSON event.
    let events: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let failed: Vec<&Value> = events.iter().filter(|e| e["outcome"] == "failed").collect();
    assert_eq!(failed.len(), 2, "{err}");
    let mut lines: Vec<u64> = failed.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    lines.sort_unstable();
    assert_eq!(lines, [1, 2]);
    let mut ids = Vec::new();
    for e in &failed {
        assert_eq!(e["level"], "WARN");
        assert!(
            e["reason"]
                .as_str()
                .unwrap()
                .contains("not acknowledged within the delivery timeout"),
            "{e}"
        );
        let id = e["ingestion_id"].as_str().unwrap();
        let uuid = uuid_version(id);
        assert_eq!(uuid, Some(7), "{id}");
        ids.push(id.to_owned());
    }
    assert_ne!(ids[0], ids[1]);
    // The summary is an event too, inside the command's span.
    let summary = events
        .iter()
        .find(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("0 delivered, 2 failed"))
        })
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(summary["level"], "INFO", "{summary}");
    assert_eq!(summary["span"]["command"], "produce", "{summary}");
}

/// The version digit of a UUID in its text form, when `s` is one.
fn uuid_version(s: &str) -> Option<u32> {
    let parts: Vec<&str> = s.split('-').collect();
    let shape = parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()));
    shape.then(|| parts[2].chars().next().and_then(|c| c.to_digit(16)))?
}

#[test]
fn text_logs_name_the_ingestion_id_of_a_failed_record() {
    let out = produce_unacknowledged(&[], "x\n");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("failed: line 1 (ingestion_id "))
        .unwrap_or_else(|| panic!("{err}"));
    let id = line
        .split("ingestion_id ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap();
    assert_eq!(uuid_version(id), Some(7), "{line}");
    // stderr is a pipe here: log events are plain text, without colour codes.
    assert!(err.contains(" librdkafka: "), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[test]
fn produce_serves_its_metrics_while_it_runs() {
    let t = new_topic("obs-metrics", 2);
    let (mut child, lines, addr) = spawn_with_metrics(
        streamlake()
            .args(["produce", "-b", &broker().bootstrap, "-t", &t])
            .args(["--key-separator", ":"])
            .env("STREAMLAKE_STATISTICS_INTERVAL_MS", "500")
            .stdin(Stdio::piped()),
    );
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..25 {
        writeln!(stdin, "k{}:value-{i}", i % 5).unwrap();
    }
    stdin.flush().unwrap();

    // The records are counted as they are delivered, while the command is still reading.
    let delivered = format!("streamlake_producer_records_total{{topic=\"{t}\"}}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let (status, page) = http_get(&addr, "/metrics").unwrap();
        assert_eq!(status, 200);
        let up = sample(
            &page,
            "streamlake_producer_outcomes_total{outcome=\"delivered\",reason=\"none\"}",
        );
        let ready = http_get(&addr, "/readyz").unwrap().0 == 200;
        if sample(&page, &delivered) == Some(25.0) && up == Some(25.0) && ready {
            break page;
        }
        assert!(Instant::now() < deadline, "{page}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(http_get(&addr, "/healthz").unwrap().0, 200);
    assert_eq!(
        sample(&page, "streamlake_producer_in_flight"),
        Some(0.0),
        "{page}"
    );
    let up = page
        .lines()
        .filter(|l| l.starts_with("streamlake_broker_up{") && l.ends_with(" 1"))
        .count();
    assert!(up >= 1, "{page}");

    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("25 delivered, 0 failed")),
        "{rest:?}"
    );
}

#[test]
fn perf_serves_its_metrics_while_it_runs() {
    let t = new_topic("obs-perf", 1);
    let (mut child, _lines, addr) = spawn_with_metrics(
        streamlake()
            .args([
                "perf",
                "-b",
                &broker().bootstrap,
                "-t",
                &t,
                "--duration",
                "60s",
            ])
            .args(["--throughput", "200"])
            .stdin(Stdio::null()),
    );
    let name = format!("streamlake_producer_records_total{{topic=\"{t}\"}}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = http_get(&addr, "/metrics").unwrap();
        if sample(&page, &name).is_some_and(|n| n >= 100.0) {
            break;
        }
        assert!(Instant::now() < deadline, "{page}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = terminate(&mut child);
    assert!(status.success(), "{status}");
}

#[test]
fn health_passes_on_a_live_cluster_and_fails_on_a_missing_topic_or_a_dead_broker() {
    let t = new_topic("obs-health", 3);
    let b = &broker().bootstrap;
    let out = run_with(
        streamlake().args(["health", "-b", b, "-t", &t, "--probe", &t, "--json"]),
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["healthy"], true, "{report}");
    assert!(
        !report["brokers"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(report["topics"][0]["name"], t.as_str());
    assert_eq!(report["topics"][0]["partitions"], 3);
    assert!(
        report["probe"]["end_to_end_ms"].as_f64().is_some(),
        "{report}"
    );
    // The probe's record is really in the topic.
    let records = consume_json(&t, &[]);
    assert_eq!(records.len(), 1, "{records:?}");

    let missing = unique_topic("obs-missing");
    let out = run_with(streamlake().args(["health", "-b", b, "-t", &missing]), "");
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("topic {missing}: FAIL does not exist")),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("unhealthy"), "{stdout}");

    let started = Instant::now();
    let out = run_with(
        streamlake().args(["health", "-b", &unreachable_bootstrap(), "--timeout", "3s"]),
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        text(&out.stdout).contains("brokers: FAIL"),
        "{}",
        text(&out.stdout)
    );
}

/// One OTLP/HTTP request as the collector received it.
#[derive(Debug, Clone)]
struct Export {
    path: String,
    content_type: String,
    body: Vec<u8>,
}

/// A minimal OTLP/HTTP collector: answers 200 to every POST and keeps what it got.
fn collector() -> (String, Arc<Mutex<Vec<Export>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&got);
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let kept = Arc::clone(&kept);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                loop {
                    let mut request = String::new();
                    if reader.read_line(&mut request).unwrap_or(0) == 0 {
                        return;
                    }
                    let (mut length, mut content_type) = (0usize, String::new());
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (name, value) = h.split_once(':').unwrap();
                        match name.to_ascii_lowercase().as_str() {
                            "content-length" => length = value.trim().parse().unwrap(),
                            "content-type" => value.trim().clone_into(&mut content_type),
                            _ => {}
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
                    kept.lock().unwrap().push(Export {
                        path,
                        content_type,
                        body,
                    });
                    conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
                        .unwrap();
                }
            });
        }
    });
    (addr, got)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn gateway_spans_are_exported_over_otlp_and_records_name_the_request_span() {
    let (collector, exports) = collector();
    let endpoint = format!("http://{collector}");
    let gw = serve(&["--otlp-endpoint", &endpoint], "", "", &[]);
    let mut child = gw.child;
    let (trace, caller_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let resp = post_events(
        &gw.addr,
        &format!("traceparent: 00-{trace}-{caller_span}-01\r\n"),
        r#"{"order_id":"o-1","amount":3}"#,
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let raw = gw.raw;

    // The record's traceparent names the gateway's span: same trace, a span of its own.
    let records = consume_json(&raw, &[]);
    let record = records
        .first()
        .unwrap_or_else(|| panic!("no record in {raw}"));
    let tp = record["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["key"] == "traceparent")
        .and_then(|h| h["value"].as_str())
        .unwrap_or_else(|| panic!("{record}"));
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!(parts[1], trace, "{tp}");
    assert_ne!(parts[2], caller_span, "{tp}");

    // Stopping the gateway sends what is left; the collector has the request span, in the
    // caller's trace, as the parent of the span named in the record.
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
    let exports = exports.lock().unwrap().clone();
    assert!(!exports.is_empty(), "nothing exported");
    for e in &exports {
        assert_eq!(e.path, "/v1/traces");
        assert_eq!(e.content_type, "application/x-protobuf");
    }
    let all: Vec<u8> = exports.iter().flat_map(|e| e.body.clone()).collect();
    assert!(contains(&all, b"ingest"), "no ingest span");
    assert!(contains(&all, b"streamlake"), "no service name");
    assert!(
        contains(&all, &hex(trace)),
        "the caller's trace id is missing"
    );
    assert!(
        contains(&all, &hex(caller_span)),
        "the caller's span is not a parent"
    );
    assert!(
        contains(&all, &hex(parts[2])),
        "the record's span was not exported"
    );
}

/// A `serve` child on a free port with one dataset `orders` (fresh raw and DLQ topics):
/// `top` and `dataset` are more YAML lines for the file and the dataset, `files` are written
/// beside it. Returns the child, its address, the topics and the folder.
struct Served {
    child: std::process::Child,
    addr: String,
    raw: String,
    dlq: String,
    _dir: tempfile::TempDir,
}

fn serve(global: &[&str], top: &str, dataset: &str, files: &[(&str, &str)]) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let (raw, dlq) = (new_topic("obs-serve-raw", 1), new_topic("obs-serve-dlq", 1));
    let port = free_port();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let cfg = dir.path().join("gateway.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:{port}\n{top}kafka:\n  bootstrap_servers: {}\ndatasets:\n  orders:\n    topic: {raw}\n    dlq_topic: {dlq}\n    key: /order_id\n{dataset}",
            broker().bootstrap
        ),
    )
    .unwrap();
    let mut child = streamlake()
        .args(global)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    streamlake_test_support::wait_listening(&mut child, &addr);
    Served {
        child,
        addr,
        raw,
        dlq,
        _dir: dir,
    }
}

impl Served {
    /// SIGTERM, then everything the gateway wrote on stderr; it must exit 0.
    fn stop(&mut self) -> String {
        signal(&self.child, "TERM");
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(self.child.wait().unwrap().success(), "{stderr}");
        stderr
    }
}

/// One request over its own connection: the whole response as text (a server that answers
/// before the whole body is sent may close the connection on the rest).
fn post_events(addr: &str, extra_headers: &str, body: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let _ = write!(
        s,
        "POST /v1/datasets/orders/events HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-ndjson\r\n{extra_headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024.0
}

#[test]
fn gateway_memory_stays_bounded_under_big_idempotent_batches_and_floods_of_tiny_events() {
    let mut gw = serve(
        &[],
        "limits:\n  max_events_per_request: 20000\nidempotency:\n  max_bytes: 2097152\n",
        "",
        &[],
    );
    let pid = gw.child.id();
    let before = rss_mib(pid);
    let batch: String = (0..20_000)
        .map(|i| format!("{{\"order_id\":\"k{}\",\"n\":{i}}}\n", i % 10))
        .collect();
    let mut peak: f64 = 0.0;
    for round in 0..12 {
        let resp = post_events(
            &gw.addr,
            &format!("Idempotency-Key: mem-{round}\r\n"),
            &batch,
        );
        assert!(
            resp.starts_with("HTTP/1.1 200"),
            "{}",
            &resp[..resp.len().min(300)]
        );
        peak = peak.max(rss_mib(pid));
    }
    // 8 bodies of 120,000 tiny events at once: refused for their event count, not held.
    let flood: String = (0..120_000).map(|_| "{\"x\":1}\n").collect();
    assert_eq!(flood.len(), 960_000);
    let addr = gw.addr.clone();
    let floods: Vec<_> = (0..8)
        .map(|_| {
            let (addr, flood) = (addr.clone(), flood.clone());
            std::thread::spawn(move || post_events(&addr, "", &flood))
        })
        .collect();
    for f in floods {
        let resp = f.join().unwrap();
        assert!(
            resp.starts_with("HTTP/1.1 413"),
            "{}",
            &resp[..resp.len().min(300)]
        );
    }
    peak = peak.max(rss_mib(pid));
    let stderr = gw.stop();
    assert!(stderr.contains("240000 event(s) accepted"), "{stderr}");
    // Unbounded replay entries of whole responses took 40 such requests past 700 MiB.
    eprintln!("serve resident memory: {before:.1} MiB idle, {peak:.1} MiB at the most");
    assert!(
        peak - before < 200.0,
        "resident memory grew from {before:.0} to {peak:.0} MiB"
    );
}

#[test]
fn gateway_logs_of_invalid_events_name_the_field_and_rule_never_the_value() {
    let mut gw = serve(
        &["--log-level", "info"],
        "",
        "    schema: card.schema.json\n",
        &[(
            "card.schema.json",
            r#"{"type":"object","properties":{"card":{"type":"string","pattern":"^[0-9]{4}$"}}}"#,
        )],
    );
    let card = "4111111111111111";
    let body = format!("{{\"order_id\":\"o-1\",\"card\":\"{card}\"}}");
    let resp = post_events(&gw.addr, "", &body);
    assert!(resp.starts_with("HTTP/1.1 422"), "{resp}");
    // The caller is told the whole reason; the DLQ keeps the original bytes.
    assert!(resp.contains("/card"), "{resp}");
    let dead = consume_json(&gw.dlq, &[]);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["value"], body.as_str());
    let stderr = gw.stop();
    assert!(stderr.contains("invalid event dead-lettered"), "{stderr}");
    assert!(stderr.contains("/card: pattern"), "{stderr}");
    assert!(
        !stderr.contains(card),
        "the card number reached the log:\n{stderr}"
    );
    assert!(
        stderr.contains(
            "0 event(s) accepted, 1 dead-lettered, 0 failed (retriable), 0 rejected (permanent)"
        ),
        "{stderr}"
    );
}
