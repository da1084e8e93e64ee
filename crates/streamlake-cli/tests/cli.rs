//! The `streamlake` binary, run as users run it, against a real tansu broker, the embedded
//! cluster, a crabka broker for transactions, and Python's confluent-kafka.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use streamlake_test_support::{
    broker, cli_command, create_topic, http_post, new_topic, python, repo_root, run_with, signal,
    terminate, text, transactional_broker, unique_topic, unreachable_bootstrap,
};

/// Every record of `topic`, as `consume --print json` prints them.
fn consume_json(topic: &str, extra: &[&str]) -> Vec<Value> {
    streamlake_test_support::consume_json(env!("CARGO_BIN_EXE_streamlake"), topic, extra)
}

fn streamlake() -> Command {
    cli_command(env!("CARGO_BIN_EXE_streamlake"))
}

fn run(args: &[&str], stdin: &str) -> Output {
    run_with(streamlake().args(args), stdin)
}

#[test]
fn produce_jsonl_with_key_field_and_headers_then_consume_as_json() {
    let t = new_topic("cli-jsonl", 3);
    let input: String = (0..50)
        .map(|i| format!("{{\"id\":\"order-{}\",\"n\":{i}}}\n", i % 7))
        .collect();
    let out = run(
        &[
            "produce",
            "-b",
            &broker().bootstrap,
            "-t",
            &t,
            "--format",
            "jsonl",
            "--key-field",
            "/id",
            "-H",
            "src=cli",
            "-H",
            "env=test",
        ],
        &input,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("50 delivered, 0 failed, 0 skipped"),
        "{}",
        text(&out.stderr)
    );

    let records = consume_json(&t, &[]);
    assert_eq!(records.len(), 50);
    let mut ns: Vec<i64> = Vec::new();
    for r in &records {
        let value: Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
        assert_eq!(r["key"], value["id"], "key comes from /id");
        assert_eq!(r["topic"], t.as_str());
        assert_eq!(
            r["headers"],
            serde_json::json!([{"key":"src","value":"cli"},{"key":"env","value":"test"}])
        );
        assert!(r["timestamp"].as_i64().unwrap() > 0);
        ns.push(value["n"].as_i64().unwrap());
    }
    ns.sort();
    assert_eq!(ns, (0..50).collect::<Vec<_>>());
    // Same key, same partition.
    let mut by_key = std::collections::HashMap::new();
    for r in &records {
        let p = by_key
            .entry(r["key"].as_str().unwrap().to_owned())
            .or_insert(r["partition"].as_i64().unwrap());
        assert_eq!(*p, r["partition"].as_i64().unwrap());
    }
}

#[test]
fn a_bad_line_is_named_and_on_error_decides() {
    let t = new_topic("cli-bad", 1);
    let b = &broker().bootstrap;
    let input = "{\"id\":1}\n{\"id\":2}\n{\"id\":3,}\n{\"nokey\":4}\n{\"id\":5}\n";
    let fail = run(
        &[
            "produce",
            "-b",
            b,
            "-t",
            &t,
            "--format",
            "jsonl",
            "--key-field",
            "/id",
        ],
        input,
    );
    assert_eq!(fail.status.code(), Some(1));
    let err = text(&fail.stderr);
    assert!(err.contains("line 3: invalid JSON"), "{err}");
    assert!(
        err.contains("2 delivered"),
        "lines before the bad one are still delivered: {err}"
    );

    let skip = run(
        &[
            "produce",
            "-b",
            b,
            "-t",
            &t,
            "--format",
            "jsonl",
            "--key-field",
            "/id",
            "--on-error",
            "skip",
        ],
        input,
    );
    let err = text(&skip.stderr);
    assert!(skip.status.success(), "{err}");
    assert!(err.contains("skipped: line 3: invalid JSON"), "{err}");
    assert!(
        err.contains("skipped: line 4: key field /id is missing"),
        "{err}"
    );
    assert!(err.contains("3 delivered, 0 failed, 2 skipped"), "{err}");
    let values: Vec<String> = consume_json(&t, &[])
        .iter()
        .map(|r| r["value"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        values,
        [
            "{\"id\":1}",
            "{\"id\":2}",
            "{\"id\":1}",
            "{\"id\":2}",
            "{\"id\":5}"
        ]
    );
}

#[test]
fn key_separator_lines_and_partition_and_offsets() {
    let t = new_topic("cli-sep", 2);
    let b = &broker().bootstrap;
    let out = run(
        &[
            "produce",
            "-b",
            b,
            "-t",
            &t,
            "--key-separator",
            "\\t",
            "--partition",
            "1",
        ],
        "k1\tv1\nk2\tv2\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A run of its own: tansu serves reads that start on a batch boundary.
    let out = run(
        &[
            "produce",
            "-b",
            b,
            "-t",
            &t,
            "--key-separator",
            "\\t",
            "--partition",
            "1",
        ],
        "k3\tv3\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all = consume_json(&t, &["-p", "1"]);
    let got: Vec<(String, String, i64, i64)> = all
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().into(),
                r["value"].as_str().unwrap().into(),
                r["partition"].as_i64().unwrap(),
                r["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("k1".into(), "v1".into(), 1, 0),
            ("k2".into(), "v2".into(), 1, 1),
            ("k3".into(), "v3".into(), 1, 2)
        ]
    );
    let out = run(
        &[
            "consume", "-b", b, "-t", &t, "-p", "1", "--from", "-1", "-n", "1",
        ],
        "",
    );
    assert_eq!(text(&out.stdout), "v3\n", "{}", text(&out.stderr));
    assert!(consume_json(&t, &["-p", "0"]).is_empty());
}

#[test]
fn a_group_resumes_where_the_last_run_stopped() {
    let t = new_topic("cli-group", 1);
    let b = &broker().bootstrap;
    let group = unique_topic("g");
    // Separate runs, separate batches: the commit lands on a batch boundary.
    assert!(run(&["produce", "-b", b, "-t", &t], "a\nb\n")
        .status
        .success());
    assert!(run(&["produce", "-b", b, "-t", &t], "c\nd\ne\n")
        .status
        .success());
    let first = run(&["consume", "-b", b, "-t", &t, "-g", &group, "-n", "2"], "");
    assert_eq!(text(&first.stdout), "a\nb\n", "{}", text(&first.stderr));
    let second = run(&["consume", "-b", b, "-t", &t, "-g", &group, "-e"], "");
    assert_eq!(
        text(&second.stdout),
        "c\nd\ne\n",
        "{}",
        text(&second.stderr)
    );
    let third = run(&["consume", "-b", b, "-t", &t, "-g", &group, "-e"], "");
    assert_eq!(text(&third.stdout), "", "{}", text(&third.stderr));
    let bad = run(
        &["consume", "-b", b, "-t", &t, "-g", &group, "--from", "5"],
        "",
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("--partition"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn unreachable_broker_fails_clearly_and_in_time() {
    let started = Instant::now();
    let out = run_with(
        streamlake()
            .args(["produce", "-b", &unreachable_bootstrap(), "-t", "t"])
            .env("STREAMLAKE_PRODUCER__DELIVERY_TIMEOUT_MS", "1000")
            .env("STREAMLAKE_PRODUCER__REQUEST_TIMEOUT_MS", "500"),
        "x\ny\n",
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("failed: line 1: not acknowledged within the delivery timeout"),
        "{err}"
    );
    assert!(err.contains("0 delivered, 2 failed"), "{err}");
}

/// A `topics config --set` argument without `=` (empty, or with invalid UTF-8 replaced) is
/// refused, naming the argument, before any broker is asked and before any change is sent.
#[test]
fn topics_config_refuses_a_set_without_a_value_before_connecting() {
    let started = Instant::now();
    for bad in ["retention.ms", "", "retention.ms\u{fffd}3600"] {
        let out = run(
            &[
                "topics",
                "config",
                "-b",
                &unreachable_bootstrap(),
                "orders",
                "--set",
                "min.insync.replicas=2",
                "--set",
                bad,
            ],
            "",
        );
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("--set {bad}: expected KEY=VALUE")),
            "{bad:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{bad:?}: {}", text(&out.stdout));
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn config_show_names_sources_and_redacts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client.properties");
    std::fs::write(
        &file,
        "bootstrap.servers=broker.example:9092\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-256\nsasl.username=app\nsasl.password=pa55word\nkey.serializer=org.apache.kafka.common.serialization.StringSerializer\n",
    )
    .unwrap();
    let out = run_with(
        streamlake()
            .args([
                "config",
                "show",
                "--librdkafka",
                "--config",
                file.to_str().unwrap(),
                "-X",
                "socket.keepalive.enable=true",
            ])
            .env("STREAMLAKE_PRODUCER__LINGER_MS", "12"),
        "",
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!stdout.contains("pa55word"), "{stdout}");
    assert!(
        stdout.contains("security.sasl_password = [redacted]"),
        "{stdout}"
    );
    assert!(stdout.contains("sasl.password = [redacted]"), "{stdout}");
    let from_file = format!("# file {}", file.display());
    assert!(
        stdout.lines().any(
            |l| l.starts_with("bootstrap_servers = \"broker.example:9092\"")
                && l.ends_with(&from_file)
        ),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("producer.linger_ms = 12")
                && l.ends_with("# env STREAMLAKE_PRODUCER__LINGER_MS")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(
            |l| l.starts_with("properties.\"socket.keepalive.enable\" = \"true\"")
                && l.ends_with("# flag -X")
        ),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("producer.acks = \"all\"") && l.ends_with("# default")),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("key.serializer` ignored"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn config_check_reports_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "bootstrap_servers: nohost\nproducer:\n  lingr_ms: 5\n  acks: leader\n  properties:\n    no.such.thing: 1\nconsumer:\n  group_id: 7\n").unwrap();
    let out = run(&["config", "check", bad.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for needle in [
        "producer.lingr_ms: unknown key",
        "did you mean `producer.linger_ms`",
        "consumer.group_id: invalid type",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "bootstrap_servers = \"a:9092\"\n[producer]\ncompression = \"zstd\"\n[producer.properties]\n\"no.such.thing\" = \"1\"\n").unwrap();
    let out = run(&["config", "check", good.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("producer.properties.\"no.such.thing\": librdkafka has no property"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(
        &good,
        "bootstrap_servers = \"a:9092\"\n[producer]\ncompression = \"zstd\"\n",
    )
    .unwrap();
    let out = run(&["config", "check", good.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Semantic problems once the types are right.
    std::fs::write(
        &bad,
        "bootstrap_servers: nohost\nproducer:\n  acks: leader\n",
    )
    .unwrap();
    let err = text(&run(&["config", "check", bad.to_str().unwrap()], "").stderr);
    assert!(
        err.contains("bootstrap_servers: `nohost` is not host:port"),
        "{err}"
    );
    assert!(
        err.contains("producer.acks: must be `all` while producer.enable_idempotence is true"),
        "{err}"
    );
}

fn interop_script() -> String {
    repo_root()
        .join("tests/interop/kafka_interop.py")
        .display()
        .to_string()
}

#[test]
fn python_confluent_kafka_reads_what_streamlake_writes() {
    let t = new_topic("interop-out", 3);
    let b = &broker().bootstrap;
    let input: String = (0..20)
        .map(|i| format!("k{}\tvalue-{i}\n", i % 4))
        .collect();
    let out = run(
        &[
            "produce",
            "-b",
            b,
            "-t",
            &t,
            "--key-separator",
            "\\t",
            "-H",
            "dataset=orders",
            "-H",
            "schema_version=v1",
        ],
        &input,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let py = Command::new(python())
        .args([interop_script().as_str(), "consume", b, &t, "20"])
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", text(&py.stderr));
    let mut got: Vec<(String, String)> = text(&py.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(
                v["headers"],
                serde_json::json!([["dataset", "orders"], ["schema_version", "v1"]])
            );
            (
                v["key"].as_str().unwrap().to_owned(),
                v["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort_by_key(|(_, v)| v[6..].parse::<u32>().unwrap());
    let want: Vec<(String, String)> = (0..20)
        .map(|i| (format!("k{}", i % 4), format!("value-{i}")))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn streamlake_reads_what_python_confluent_kafka_writes() {
    let t = new_topic("interop-in", 2);
    let b = &broker().bootstrap;
    let input: String = (0..15)
        .map(|i| serde_json::json!({"key": format!("user-{}", i % 3), "value": format!("{{\"n\":{i}}}"), "headers": [["origin", "python"], ["n", i.to_string()]]}).to_string() + "\n")
        .collect();
    let py = run_with(
        Command::new(python()).args([interop_script().as_str(), "produce", b, &t]),
        &input,
    );
    assert!(
        py.status.success(),
        "{} {}",
        text(&py.stdout),
        text(&py.stderr)
    );
    let records = consume_json(&t, &[]);
    assert_eq!(records.len(), 15);
    let mut seen: Vec<i64> = records
        .iter()
        .map(|r| {
            let n: i64 = r["headers"][1]["value"].as_str().unwrap().parse().unwrap();
            assert_eq!(r["key"], format!("user-{}", n % 3).as_str());
            assert_eq!(r["value"], format!("{{\"n\":{n}}}").as_str());
            assert_eq!(
                r["headers"][0],
                serde_json::json!({"key":"origin","value":"python"})
            );
            n
        })
        .collect();
    seen.sort();
    assert_eq!(seen, (0..15).collect::<Vec<_>>());
}

/// A topic on the transactional broker (crabka), which keeps aborted transactions.
fn transactional_topic(prefix: &str, partitions: i32) -> (String, &'static str) {
    let b = &transactional_broker().bootstrap;
    let t = unique_topic(prefix);
    create_topic(b, &t, partitions);
    (t, b)
}

#[test]
fn python_confluent_kafka_reads_what_streamlake_writes_in_transactions_once() {
    let (t, b) = transactional_topic("txn-out", 2);
    let input: String = (0..30)
        .map(|i| format!("k{}\tvalue-{i}\n", i % 3))
        .collect();
    let id = unique_topic("cli-txn");
    let out = run(
        &[
            "produce",
            "-b",
            b,
            "-t",
            &t,
            "--key-separator",
            "\\t",
            "--transactional-id",
            &id,
            "--transaction-records",
            "7",
        ],
        &input,
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("5 transaction(s)"), "{stderr}");
    assert!(stderr.contains(": 30 delivered, 0 failed"), "{stderr}");
    // confluent-kafka reads read_committed: 30 records, and no more in the 3 s after them.
    let py = Command::new(python())
        .args([interop_script().as_str(), "consume", b, &t, "30", "3"])
        .output()
        .unwrap();
    let mut got: Vec<(String, String)> = text(&py.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["key"].as_str().unwrap().to_owned(),
                v["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(py.status.success(), "{}", text(&py.stderr));
    got.sort_by_key(|(_, v)| v[6..].parse::<u32>().unwrap());
    let want: Vec<(String, String)> = (0..30)
        .map(|i| (format!("k{}", i % 3), format!("value-{i}")))
        .collect();
    assert_eq!(got, want);
}

/// Values of the first `n` records of `topic` on the transactional broker, read by `consume` at
/// `isolation`; fails after 60 s (a transaction left open would hold a read_committed reader).
fn transactional_values(b: &str, topic: &str, isolation: &str, n: usize) -> Vec<String> {
    let out = run_with(
        cli_command("timeout")
            .args([
                "60",
                env!("CARGO_BIN_EXE_streamlake"),
                "consume",
                "-b",
                b,
                "-t",
                topic,
            ])
            .args(["--print", "json", "-n", &n.to_string()])
            .env("STREAMLAKE_CONSUMER__ISOLATION_LEVEL", isolation),
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["value"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn a_transactional_produce_killed_mid_transaction_leaves_only_whole_transactions() {
    let (t, b) = transactional_topic("txn-kill", 1);
    let id = unique_topic("cli-txn-kill");
    let produce = |stdin: Stdio| {
        streamlake()
            .args(["produce", "-b", b, "-t", &t, "--transactional-id", &id])
            .args(["--transaction-records", "10"])
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // 25 lines: two transactions commit, the third is open with 5 records sent when the process
    // is killed.
    let mut first = produce(Stdio::piped());
    let mut stdin = first.stdin.take().unwrap();
    for i in 0..25 {
        writeln!(stdin, "first-{i}").unwrap();
    }
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    signal(&first, "KILL");
    first.wait().unwrap();
    drop(stdin);

    // The next run under the same transactional id fences the killed one, whose open
    // transaction is aborted, and commits its own records.
    let mut second = produce(Stdio::piped());
    let mut stdin = second.stdin.take().unwrap();
    for i in 0..10 {
        writeln!(stdin, "second-{i}").unwrap();
    }
    drop(stdin);
    let out = second.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    let committed: Vec<String> = (0..20)
        .map(|i| format!("first-{i}"))
        .chain((0..10).map(|i| format!("second-{i}")))
        .collect();
    assert_eq!(transactional_values(b, &t, "read_committed", 30), committed);
    // The killed run's open transaction was written; a read_uncommitted reader sees it.
    let all = transactional_values(b, &t, "read_uncommitted", 35);
    let open: Vec<String> = (20..25).map(|i| format!("first-{i}")).collect();
    assert_eq!(all[20..25], open[..], "{all:?}");
}

#[test]
fn consume_hides_the_transactions_python_confluent_kafka_aborted() {
    let (t, b) = transactional_topic("txn-in", 1);
    let line = |v: &str| serde_json::json!({"key": "k", "value": v}).to_string() + "\n";
    let mut input = String::new();
    for (txn, end) in [(0, "commit"), (1, "abort"), (2, "commit"), (3, "abort")] {
        for i in 0..5 {
            input += &line(&format!("{end}-{txn}-{i}"));
        }
        input += &(serde_json::json!({ "end": end }).to_string() + "\n");
    }
    let id = unique_topic("py-txn");
    let py = run_with(
        Command::new(python()).args([
            interop_script().as_str(),
            "produce-transactions",
            b,
            &t,
            &id,
        ]),
        &input,
    );
    assert!(py.status.success(), "{}", text(&py.stderr));
    assert_eq!(text(&py.stdout).trim(), r#"{"committed": 2, "aborted": 2}"#);

    // Ten records, the committed ones (crabka never reports the end of a partition to
    // librdkafka, so `--exit-at-end` would wait): an aborted record shown would be among them.
    let values = transactional_values(b, &t, "read_committed", 10);
    let want: Vec<String> = [0, 2]
        .iter()
        .flat_map(|txn| (0..5).map(move |i| format!("commit-{txn}-{i}")))
        .collect();
    assert_eq!(values, want);
}

#[test]
fn demo_runs_on_the_embedded_cluster_and_verifies_every_event() {
    let out = run(&["demo", "--duration", "2s", "--rate", "2000"], "");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cluster: embedded, 3 brokers"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("0 missing, 0 duplicates, 0 out of order per key"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verified: every event delivered and read back exactly once"),
        "{stdout}"
    );
}

#[test]
fn dev_cluster_serves_the_other_commands_until_sigterm() {
    let mut dev = streamlake()
        .args(["dev", "--topic", "dev-orders:2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(dev.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with("embedded cluster: 3 brokers at "),
        "{first}"
    );
    let export = lines.next().unwrap().unwrap();
    let bootstrap = export
        .strip_prefix("export STREAMLAKE_BOOTSTRAP_SERVERS=")
        .unwrap()
        .to_owned();
    let out = run_with(
        streamlake()
            .args(["produce", "-t", "dev-orders"])
            .env("STREAMLAKE_BOOTSTRAP_SERVERS", &bootstrap),
        "one\ntwo\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run_with(
        streamlake()
            .args(["consume", "-t", "dev-orders", "-e"])
            .env("STREAMLAKE_BOOTSTRAP_SERVERS", &bootstrap),
        "",
    );
    let mut got: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    got.sort();
    assert_eq!(got, ["one", "two"], "{}", text(&out.stderr));
    let describe = run_with(
        streamlake()
            .args(["topics", "describe", "dev-orders"])
            .env("STREAMLAKE_BOOTSTRAP_SERVERS", &bootstrap),
        "",
    );
    assert_eq!(
        text(&describe.stdout)
            .lines()
            .filter(|l| l.contains("replicas ["))
            .count(),
        2,
        "{}",
        text(&describe.stdout)
    );
    assert!(
        text(&describe.stdout)
            .lines()
            .skip(1)
            .all(|l| l.matches(',').count() == 4),
        "3 replicas and 3 in sync: {}",
        text(&describe.stdout)
    );
    let status = terminate(&mut dev);
    assert!(status.success(), "{status:?}");
}

#[test]
fn ctrl_c_on_consume_commits_what_was_printed_and_leaves_the_group() {
    let t = new_topic("cli-sigint", 1);
    let b = &broker().bootstrap;
    let group = unique_topic("g-sigint");
    assert!(run(&["produce", "-b", b, "-t", &t], "one\ntwo\nthree\n")
        .status
        .success());
    let mut child = streamlake()
        .args(["consume", "-b", b, "-t", &t, "-g", &group])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let printed: Vec<String> = (0..3).map(|_| lines.next().unwrap().unwrap()).collect();
    assert_eq!(printed, ["one", "two", "three"]);
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("consumed 3 record(s)"),
        "{}",
        text(&out.stderr)
    );
    // Everything printed was committed: the group has nothing left to read.
    assert!(run(&["produce", "-b", b, "-t", &t], "four\n")
        .status
        .success());
    let next = run(&["consume", "-b", b, "-t", &t, "-g", &group, "-e"], "");
    assert_eq!(text(&next.stdout), "four\n", "{}", text(&next.stderr));
}

const ORDER_AVSC: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
    {"name":"id","type":"long"},{"name":"order_id","type":"string"},{"name":"amount","type":"double"},
    {"name":"note","type":["null","string"],"default":null},
    {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}},
    {"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[{"name":"sku","type":"string"},{"name":"qty","type":"int"}]}}}]}"#;
const ORDER_JSON_SCHEMA: &str = r#"{"title":"shop.Order","type":"object","required":["order_id","amount"],
    "properties":{"id":{"type":"integer"},"order_id":{"type":"string"},"amount":{"type":"number","minimum":0},"tags":{"type":"array","items":{"type":"string"}}}}"#;

fn schema_file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// One interoperability case: the format as StreamLake and as the Python script name it, the
/// schema file, and documents that fit it.
struct Case {
    value_format: &'static str,
    python_format: &'static str,
    schema: String,
    docs: Vec<Value>,
    _dir: tempfile::TempDir,
}

fn case(format: &str) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let n = 12;
    let (value_format, python_format, schema, docs): (_, _, String, Vec<Value>) = match format {
        "avro" => (
            "avro",
            "avro",
            schema_file(&dir, "order.avsc", ORDER_AVSC),
            (0..n)
                .map(|i| {
                    serde_json::json!({"id": i, "order_id": format!("ORD-{i}"), "amount": i as f64 + 0.25,
                        "note": if i % 2 == 0 { Value::Null } else { Value::from("gift") },
                        "status": if i % 3 == 0 { "PAID" } else { "NEW" },
                        "items": [{"sku": format!("SKU-{i}"), "qty": i + 1}]})
                })
                .collect(),
        ),
        "json" => (
            "json-schema",
            "json",
            schema_file(&dir, "order.json", ORDER_JSON_SCHEMA),
            (0..n).map(|i| serde_json::json!({"id": i, "order_id": format!("ORD-{i}"), "amount": i, "tags": ["a", format!("t{i}")]})).collect(),
        ),
        _ => (
            "protobuf",
            "protobuf:Shoe",
            repo_root().join("schemas/shoe.proto").display().to_string(),
            (0..n)
                .map(|i| {
                    serde_json::json!({"id": i, "brand": format!("Brand-{}", i % 3), "name": format!("Runner {i}"),
                        "sale_price": 10.5 + i as f64, "rating": 1.0 + (i % 5) as f64})
                })
                .collect(),
        ),
    };
    Case {
        value_format,
        python_format,
        schema,
        docs,
        _dir: dir,
    }
}

/// The broker's bootstrap address and the registry's URL.
fn endpoints() -> (&'static str, String) {
    (
        &broker().bootstrap,
        streamlake_test_support::registry().url(),
    )
}

impl Case {
    /// The documents as JSON lines.
    fn lines(&self) -> String {
        self.docs.iter().map(|d| d.to_string() + "\n").collect()
    }
}

/// Sorted by `id`; Python's `MessageToDict` writes int64 as a string (proto3 JSON mapping).
fn sorted_by_id(mut docs: Vec<Value>) -> Vec<Value> {
    for d in &mut docs {
        if let Some(s) = d["id"].as_str() {
            d["id"] = Value::from(s.parse::<i64>().unwrap());
        }
    }
    docs.sort_by_key(|d| d["id"].as_i64().unwrap());
    docs
}

fn schema_script() -> String {
    repo_root()
        .join("tests/interop/schema_interop.py")
        .display()
        .to_string()
}

fn python_reads_streamlake(format: &str) {
    let c = case(format);
    let t = new_topic(&format!("sr-out-{format}"), 2);
    let (b, r) = endpoints();
    let input = c.lines();
    let out = run(
        &[
            "produce",
            "-b",
            b,
            "--schema-registry",
            &r,
            "-t",
            &t,
            "--value-format",
            c.value_format,
            "--value-schema",
            &c.schema,
        ],
        &input,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let count = c.docs.len().to_string();
    let py = Command::new(python())
        .args([
            schema_script().as_str(),
            "consume",
            c.python_format,
            b,
            &r,
            &t,
            &count,
            &c.schema,
        ])
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", text(&py.stderr));
    let got: Vec<Value> = text(&py.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(sorted_by_id(got), c.docs);
}

fn streamlake_reads_python(format: &str) {
    let c = case(format);
    let t = new_topic(&format!("sr-in-{format}"), 2);
    let (b, r) = endpoints();
    let input = c.lines();
    // For Protobuf the script needs the id the .proto has in the registry (see the script).
    let registered = run(
        &[
            "schema",
            "register",
            "--schema-registry",
            &r,
            "-s",
            &format!("{t}-value"),
            &c.schema,
        ],
        "",
    );
    assert!(registered.status.success(), "{}", text(&registered.stderr));
    let mut child = Command::new(python())
        .args([
            schema_script().as_str(),
            "produce",
            c.python_format,
            b,
            &r,
            &t,
            &c.schema,
        ])
        .env("SCHEMA_ID", text(&registered.stdout).trim())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let py = child.wait_with_output().unwrap();
    assert!(py.status.success(), "{}", text(&py.stderr));
    let records = consume_json(
        &t,
        &["--schema-registry", &r, "--value-format", c.value_format],
    );
    let got: Vec<Value> = records.iter().map(|rec| rec["value"].clone()).collect();
    assert_eq!(sorted_by_id(got), c.docs);
}

#[test]
fn confluent_avro_deserializer_reads_streamlake_avro() {
    python_reads_streamlake("avro");
}

#[test]
fn streamlake_reads_confluent_avro_serializer_output() {
    streamlake_reads_python("avro");
}

#[test]
fn confluent_json_deserializer_reads_streamlake_json_schema() {
    python_reads_streamlake("json");
}

#[test]
fn streamlake_reads_confluent_json_serializer_output() {
    streamlake_reads_python("json");
}

#[test]
fn confluent_protobuf_deserializer_reads_streamlake_protobuf() {
    python_reads_streamlake("protobuf");
}

#[test]
fn streamlake_reads_confluent_protobuf_serializer_output() {
    streamlake_reads_python("protobuf");
}

#[test]
fn schema_commands_register_get_and_check_evolution() {
    let dir = tempfile::tempdir().unwrap();
    let r = streamlake_test_support::registry().url();
    let subject = unique_topic("cli-subject") + "-value";
    let v1 = schema_file(
        &dir,
        "v1.avsc",
        r#"{"type":"record","name":"T","fields":[{"name":"a","type":"long"}]}"#,
    );
    let v2 = schema_file(
        &dir,
        "v2.avsc",
        r#"{"type":"record","name":"T","fields":[{"name":"a","type":"long"},{"name":"b","type":"string","default":""}]}"#,
    );
    let bad = schema_file(
        &dir,
        "bad.avsc",
        r#"{"type":"record","name":"T","fields":[{"name":"a","type":"string"}]}"#,
    );
    let reg = |args: &[&str]| {
        run(
            &[&["schema"], args, &["--schema-registry", &r]].concat(),
            "",
        )
    };
    let out = reg(&["register", "-s", &subject, &v1]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id1: u32 = text(&out.stdout).trim().parse().unwrap();
    // rivven-schema ignores its --compatibility flag; set the level the way operators do.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = streamlake::registry::Registry::new(&streamlake::config::SchemaRegistryConfig {
        url: Some(r.clone()),
        ..Default::default()
    })
    .unwrap();
    rt.block_on(client.set_compatibility(Some(&subject), "BACKWARD"))
        .unwrap();

    let ok = reg(&["check", "-s", &subject, &v2]);
    assert!(ok.status.success(), "{}", text(&ok.stdout));
    let refused = reg(&["check", "-s", &subject, &bad]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stdout).starts_with("incompatible:"),
        "{}",
        text(&refused.stdout)
    );
    assert!(
        text(&refused.stdout).contains("writer=Long, reader=String"),
        "{}",
        text(&refused.stdout)
    );
    let register_bad = reg(&["register", "-s", &subject, &bad]);
    assert!(!register_bad.status.success());
    assert!(
        text(&register_bad.stderr).contains("409"),
        "{}",
        text(&register_bad.stderr)
    );

    let out = reg(&["register", "-s", &subject, &v2]);
    let id2: u32 = text(&out.stdout).trim().parse().unwrap();
    assert_ne!(id1, id2);
    let latest = reg(&["get", "-s", &subject]);
    let schema: Value = serde_json::from_str(&text(&latest.stdout)).unwrap();
    assert_eq!(schema["fields"][1]["name"], "b");
    assert!(
        text(&latest.stderr).contains(&format!("id {id2} (AVRO, {subject} version 2)")),
        "{}",
        text(&latest.stderr)
    );
    let first = reg(&["get", "--id", &id1.to_string()]);
    let schema: Value = serde_json::from_str(&text(&first.stdout)).unwrap();
    assert_eq!(schema["fields"].as_array().unwrap().len(), 1);
    assert!(text(&reg(&["subjects"]).stdout)
        .lines()
        .any(|l| l == subject));
}

#[test]
fn a_record_that_does_not_fit_its_schema_names_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let schema = schema_file(&dir, "order.avsc", ORDER_AVSC);
    let t = new_topic("sr-bad", 1);
    let r = streamlake_test_support::registry().url();
    let good = case("avro").docs[0].to_string();
    let input = format!("{good}\n{}\n", good.replace("\"PAID\"", "\"LOST\""));
    let out = run(
        &[
            "produce",
            "-b",
            &broker().bootstrap,
            "--schema-registry",
            &r,
            "-t",
            &t,
            "--value-format",
            "avro",
            "--value-schema",
            &schema,
        ],
        &input,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 2: field /status: `LOST` is not one of NEW, PAID"),
        "{err}"
    );
    assert!(err.contains("1 delivered"), "{err}");
    let no_registry = run(
        &[
            "produce",
            "-b",
            &broker().bootstrap,
            "-t",
            &t,
            "--value-format",
            "avro",
            "--value-schema",
            &schema,
        ],
        &input,
    );
    assert!(
        text(&no_registry.stderr).contains("needs a schema registry"),
        "{}",
        text(&no_registry.stderr)
    );
}

#[test]
fn protobuf_message_choice_and_field_errors() {
    let dir = tempfile::tempdir().unwrap();
    let schema = schema_file(&dir, "shop.proto", "syntax = \"proto3\";\npackage shop;\nmessage Shoe { int64 id = 1; }\nmessage Order { string order_id = 1; repeated Line lines = 2; message Line { string sku = 1; int32 qty = 2; } }\n");
    let t = new_topic("sr-proto-msg", 1);
    let (b, r) = endpoints();
    let input = "{\"order_id\":\"O-1\",\"lines\":[{\"sku\":\"A\",\"qty\":2}]}\n{\"order_id\":\"O-2\",\"lines\":[{\"sku\":\"B\",\"qty\":\"two\"}]}\n";
    let out = run(
        &[
            "produce",
            "-b",
            b,
            "--schema-registry",
            &r,
            "-t",
            &t,
            "--value-format",
            "protobuf",
            "--value-schema",
            &schema,
            "--value-message",
            "Order",
            "--on-error",
            "skip",
        ],
        input,
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("skipped: line 2: field /lines/0/qty:"),
        "{err}"
    );
    let records = consume_json(&t, &["--schema-registry", &r, "--value-format", "protobuf"]);
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0]["value"],
        serde_json::json!({"order_id":"O-1","lines":[{"sku":"A","qty":2}]})
    );
}

fn summary_count(stderr: &str, word: &str) -> u64 {
    // "... : 1,234 delivered, 0 failed"
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("generated "))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    let before = line.split(&format!(" {word}")).next().unwrap();
    before
        .rsplit(' ')
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

#[test]
fn datagen_registers_shoe_proto_and_produces_protobuf() {
    let t = new_topic("datagen-shoes", 3);
    let (b, r) = endpoints();
    let schema = repo_root().join("schemas/shoe.proto").display().to_string();
    let out = run(
        &[
            "datagen",
            "-b",
            b,
            "--schema-registry",
            &r,
            "-s",
            &schema,
            "-t",
            &t,
            "-n",
            "300",
            "--key-field",
            "/id",
            "--seed",
            "42",
        ],
        "",
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("schema streamlake.examples.Shoe registered"),
        "{err}"
    );
    assert_eq!(summary_count(&err, "delivered"), 300, "{err}");
    let subject = run(
        &[
            "schema",
            "get",
            "--schema-registry",
            &r,
            "-s",
            &format!("{t}-value"),
        ],
        "",
    );
    assert!(
        text(&subject.stderr).contains("PROTOBUF"),
        "{}",
        text(&subject.stderr)
    );

    let records = consume_json(&t, &["--schema-registry", &r, "--value-format", "protobuf"]);
    assert_eq!(records.len(), 300);
    let mut ids: Vec<i64> = records
        .iter()
        .map(|rec| {
            let v = &rec["value"];
            assert_eq!(rec["key"], v["id"].to_string().as_str(), "key is /id");
            assert!(
                v["brand"].as_str().is_some_and(|s| !s.is_empty()) && v["name"].as_str().is_some(),
                "{v}"
            );
            let price = v["sale_price"].as_f64().unwrap();
            assert!((5.0..=500.0).contains(&price), "{v}");
            v["id"].as_i64().unwrap()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, (1..=300).collect::<Vec<_>>());
    let again = run(
        &[
            "datagen",
            "-s",
            &schema,
            "--dry-run",
            "-n",
            "5",
            "--seed",
            "42",
        ],
        "",
    );
    let once = run(
        &[
            "datagen",
            "-s",
            &schema,
            "--dry-run",
            "-n",
            "5",
            "--seed",
            "42",
        ],
        "",
    );
    assert_eq!(
        text(&again.stdout),
        text(&once.stdout),
        "same seed, same records"
    );
    let first: Value = serde_json::from_str(text(&once.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(
        records.iter().find(|r| r["value"]["id"] == 1).unwrap()["value"],
        first,
        "the seeded run produced the same first record"
    );
}

#[test]
fn datagen_holds_its_rate_within_five_percent_over_ten_seconds() {
    let t = new_topic("datagen-rate", 1);
    let schema = repo_root()
        .join("schemas/order.schema.json")
        .display()
        .to_string();
    let started = Instant::now();
    let out = run(
        &[
            "datagen",
            "-b",
            &broker().bootstrap,
            "-s",
            &schema,
            "-t",
            &t,
            "--format",
            "json",
            "--rate",
            "300",
            "--duration",
            "10s",
        ],
        "",
    );
    let took = started.elapsed();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let sent = summary_count(&err, "delivered");
    assert!(
        (2850..=3150).contains(&sent),
        "300/s for 10 s within 5%: {sent}\n{err}"
    );
    assert!(
        took >= Duration::from_millis(9_500) && took < Duration::from_secs(20),
        "{took:?}"
    );
}

#[test]
fn ctrl_c_on_datagen_flushes_and_reports() {
    let t = new_topic("datagen-sigint", 1);
    let schema = repo_root().join("schemas/order.avsc").display().to_string();
    let r = streamlake_test_support::registry().url();
    let child = streamlake()
        .args([
            "datagen",
            "-b",
            &broker().bootstrap,
            "--schema-registry",
            &r,
            "-s",
            &schema,
            "-t",
            &t,
            "--rate",
            "200",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2_500));
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let delivered = summary_count(&err, "delivered");
    // How many depends on how fast the process started on a busy machine; that some were
    // sent and all of them are in the topic is what counts.
    assert!(delivered > 0, "{err}");
    assert!(err.contains(" 0 failed"), "{err}");
    let records = consume_json(&t, &["--schema-registry", &r, "--value-format", "avro"]);
    assert_eq!(
        records.len() as u64,
        delivered,
        "everything reported delivered is in the topic"
    );
}

#[test]
fn keys_and_values_both_through_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let key_schema = schema_file(
        &dir,
        "key.avsc",
        r#"{"type":"record","name":"OrderKey","namespace":"shop","fields":[{"name":"region","type":"string"},{"name":"n","type":"long"}]}"#,
    );
    let t = new_topic("sr-keys", 2);
    let (b, r) = endpoints();
    let input = "{\"k\":{\"region\":\"eu\",\"n\":1},\"id\":1,\"brand\":\"Acme\"}\n";
    // A structured Avro key taken from /k; the whole line is the value, as plain JSON.
    let out = run(
        &[
            "produce",
            "-b",
            b,
            "--schema-registry",
            &r,
            "-t",
            &t,
            "--format",
            "jsonl",
            "--key-field",
            "/k",
            "--key-format",
            "avro",
            "--key-schema",
            &key_schema,
            "--value-format",
            "json",
        ],
        input,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let subject = run(
        &[
            "schema",
            "get",
            "--schema-registry",
            &r,
            "-s",
            &format!("{t}-key"),
        ],
        "",
    );
    assert!(
        text(&subject.stderr).contains("AVRO"),
        "{}",
        text(&subject.stderr)
    );
    let records = consume_json(
        &t,
        &[
            "--schema-registry",
            &r,
            "--key-format",
            "avro",
            "--value-format",
            "json",
        ],
    );
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["key"], serde_json::json!({"region":"eu","n":1}));
    assert_eq!(records[0]["value"]["brand"], "Acme");
    // A string key through a string Avro schema, with a Protobuf value.
    let string_key = schema_file(&dir, "string.avsc", r#""string""#);
    let t2 = new_topic("sr-keys2", 1);
    let shoes = "{\"id\":7,\"brand\":\"Globex\",\"name\":\"Air Glide\",\"sale_price\":9.5,\"rating\":4.5}\n";
    let out = run(
        &[
            "produce",
            "-b",
            b,
            "--schema-registry",
            &r,
            "-t",
            &t2,
            "--format",
            "jsonl",
            "--key-field",
            "/brand",
            "--key-format",
            "avro",
            "--key-schema",
            &string_key,
            "--value-format",
            "protobuf",
            "--value-schema",
            &repo_root().join("schemas/shoe.proto").display().to_string(),
        ],
        shoes,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let records = consume_json(
        &t2,
        &[
            "--schema-registry",
            &r,
            "--key-format",
            "avro",
            "--value-format",
            "protobuf",
        ],
    );
    assert_eq!(records[0]["key"], "Globex");
    assert_eq!(records[0]["value"]["id"], 7);
}

/// `streamlake serve --config cfg` listening on `port`.
fn start_serve(cfg: &std::path::Path, port: u16) -> (std::process::Child, String) {
    let mut child = streamlake()
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    streamlake_test_support::wait_listening(&mut child, &addr);
    (child, addr)
}

#[test]
fn serve_accepts_events_and_a_sigterm_loses_none_that_got_a_2xx() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, dlq) = (new_topic("gw-raw", 2), new_topic("gw-dlq", 1));
    let port = streamlake_test_support::free_port();
    std::fs::write(
        dir.path().join("order.schema.json"),
        r#"{"type":"object","required":["order_id"],"properties":{"order_id":{"type":"string"}}}"#,
    )
    .unwrap();
    let cfg = dir.path().join("gateway.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:{port}\nproducer_service: ingestion-api\nkafka:\n  bootstrap_servers: {}\ndatasets:\n  orders:\n    topic: {raw}\n    dlq_topic: {dlq}\n    key: /order_id\n    schema: order.schema.json\n",
            broker().bootstrap
        ),
    )
    .unwrap();
    let (mut child, addr) = start_serve(&cfg, port);
    let (status, body) = http_post(
        &addr,
        "/v1/datasets/orders/events",
        "application/json",
        r#"{"order_id":"first"}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");

    // Clients in flight while the gateway is told to stop.
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let events: String = (0..25)
                    .map(|j| format!("{{\"order_id\":\"c{i}-{j}\"}}\n"))
                    .collect();
                (
                    i,
                    http_post(
                        &addr,
                        "/v1/datasets/orders/events",
                        "application/x-ndjson",
                        &events,
                    )
                    .ok(),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(30));
    signal(&child, "TERM");
    let answers: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("stopped:"), "{stderr}");

    let mut acknowledged: Vec<String> = vec!["first".into()];
    for (i, answer) in answers {
        let Some((status, body)) = answer else {
            continue;
        };
        if (200..300).contains(&status) {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["accepted"].as_u64(), Some(25), "{v}");
            acknowledged.extend((0..25).map(|j| format!("c{i}-{j}")));
        }
    }
    let in_topic: std::collections::HashSet<String> = consume_json(&raw, &[])
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_owned())
        .collect();
    acknowledged.retain(|k| !in_topic.contains(k));
    assert!(
        acknowledged.is_empty(),
        "acknowledged but missing: {acknowledged:?}"
    );
    let accepted_batches = in_topic.iter().filter(|k| k.starts_with('c')).count();
    assert_eq!(
        accepted_batches % 25,
        0,
        "whole batches only: {accepted_batches}"
    );
}

#[test]
fn the_gateway_answers_as_its_openapi_document_says() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, dlq) = (new_topic("gw-api-raw", 1), new_topic("gw-api-dlq", 1));
    let port = streamlake_test_support::free_port();
    let cfg = dir.path().join("gateway.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:{port}\nmax_body_bytes: 65536\nkafka:\n  bootstrap_servers: {}\ndatasets:\n  orders:\n    topic: {raw}\n    dlq_topic: {dlq}\n    key: /order_id\n    required: [amount]\n",
            broker().bootstrap
        ),
    )
    .unwrap();
    let (mut child, addr) = start_serve(&cfg, port);
    let schemathesis = python().with_file_name("schemathesis");
    let out = Command::new(&schemathesis)
        .args([
            "run",
            &format!("http://{addr}/openapi.json"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
            "--max-examples",
            "30",
            "--seed",
            "7",
        ])
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh --test", schemathesis.display()));
    let status = terminate(&mut child);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found differences:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(status.success());
    // The generated requests reached Kafka: every one is accepted or dead-lettered.
    let written = consume_json(&raw, &[]).len() + consume_json(&dlq, &[]).len();
    assert!(written > 0, "no generated event was written\n{stdout}");
}

#[test]
fn records_spooled_with_no_broker_survive_sigkill_and_replay_when_it_comes() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let port = streamlake_test_support::free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let topic = unique_topic("spooled-cli");
    let (keys, per_key) = (4, 25);
    let mut child = streamlake()
        .args([
            "produce",
            "-b",
            &bootstrap,
            "-t",
            &topic,
            "--key-field",
            "/k",
        ])
        .arg("--spool-dir")
        .arg(&spool)
        .env("STREAMLAKE_PRODUCER__DELIVERY_TIMEOUT_MS", "1000")
        .env("STREAMLAKE_PRODUCER__REQUEST_TIMEOUT_MS", "500")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for seq in 0..per_key {
        for k in 0..keys {
            writeln!(stdin, "{{\"k\":\"k{k}\",\"seq\":{seq}}}").unwrap();
        }
    }
    stdin.flush().unwrap();
    // Wait until every record is on disk, then kill the producer without warning.
    let status = |expect_ok: bool| {
        let out = run(&["spool", "status", spool.to_str().unwrap()], "");
        assert_eq!(out.status.success(), expect_ok, "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let want = format!("{} pending", keys * per_key);
    loop {
        if spool.exists() && status(true).contains(&want) {
            break;
        }
        assert!(Instant::now() < deadline, "{}", status(true));
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    let inspected = run(&["spool", "inspect", spool.to_str().unwrap()], "");
    let text = String::from_utf8(inspected.stdout).unwrap();
    assert_eq!(
        text.matches(" pending topic=").count(),
        keys * per_key,
        "{text}"
    );
    assert!(
        text.contains("key=k0 value={\"k\":\"k0\",\"seq\":0}"),
        "{text}"
    );

    // The broker comes up; replay drains the spool to it.
    let broker_dir = tempfile::tempdir().unwrap();
    let _tansu = streamlake_test_support::start_persistent_broker(port, broker_dir.path());
    create_topic(&bootstrap, &topic, 2);
    let out = run(
        &[
            "spool",
            "replay",
            "-b",
            &bootstrap,
            spool.to_str().unwrap(),
            "--timeout",
            "60s",
        ],
        "",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("replayed {} record(s); 0 left", keys * per_key)),
        "{stderr}"
    );
    assert!(status(true).contains(" 0 pending"));

    let out = run(
        &[
            "consume",
            "-b",
            &bootstrap,
            "-t",
            &topic,
            "--print",
            "json",
            "--exit-at-end",
        ],
        "",
    );
    let mut seqs: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let v: Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
        seqs.entry(r["key"].as_str().unwrap().to_owned())
            .or_default()
            .push(v["seq"].as_i64().unwrap());
    }
    assert_eq!(seqs.len(), keys);
    for (k, s) in seqs {
        assert_eq!(s, (0..per_key as i64).collect::<Vec<_>>(), "key {k}");
    }
}

#[test]
fn sigterm_under_load_with_a_spool_accounts_for_every_record_read() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let t = new_topic("sigterm-spool", 3);
    let mut child = streamlake()
        .args([
            "produce",
            "-b",
            &broker().bootstrap,
            "-t",
            &t,
            "--key-field",
            "/k",
        ])
        .arg("--spool-dir")
        .arg(&spool)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // Far more than can be read before the signal; stops when the pipe closes.
        for n in 0..2_000_000u64 {
            if writeln!(stdin, "{{\"k\":\"k{}\",\"n\":{n}}}", n % 13).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(1_500));
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let read: u64 = err
        .split("interrupted after line ")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(read > 0, "{err}");
    assert!(err.contains(" 0 failed"), "{err}");
    let in_topic = consume_json(&t, &[]).len() as u64;
    let status = text(&run(&["spool", "status", spool.to_str().unwrap()], "").stdout);
    let pending: u64 = status
        .split(" record(s), ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(
        in_topic + pending,
        read,
        "every record read is in the topic or the spool\n{err}\n{status}"
    );
}

#[test]
fn a_second_signal_exits_at_once_with_every_record_in_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    // Nothing listens here, and the delivery timeout is long: records wait in the client.
    let bootstrap = format!("127.0.0.1:{}", streamlake_test_support::free_port());
    let lines = 500;
    let mut child = streamlake()
        .args([
            "produce",
            "-b",
            &bootstrap,
            "-t",
            "second-signal",
            "--key-field",
            "/k",
        ])
        .arg("--spool-dir")
        .arg(&spool)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for n in 0..lines {
        writeln!(stdin, "{{\"k\":\"k{}\",\"n\":{n}}}", n % 5).unwrap();
    }
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    let term = || {
        signal(&child, "TERM");
    };
    // The first signal starts a graceful stop that would wait for the delivery timeout...
    term();
    std::thread::sleep(Duration::from_millis(700));
    // ...the second one does not wait for Kafka.
    let second = Instant::now();
    term();
    let out = child.wait_with_output().unwrap();
    let waited = second.elapsed();
    drop(stdin);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        waited < Duration::from_secs(5),
        "exited after {waited:?}\n{err}"
    );
    assert!(
        err.contains(&format!(
            "second signal: {lines} record(s) in the spool over this run, 0 without an outcome"
        )),
        "{err}"
    );
    let inspected = text(&run(&["spool", "inspect", spool.to_str().unwrap(), "--all"], "").stdout);
    assert_eq!(
        inspected.matches(" pending topic=").count(),
        lines,
        "{inspected}"
    );
    for k in 0..5 {
        // Per key, the spool holds the records in the order they were read.
        let ns: Vec<u64> = inspected
            .lines()
            .filter(|l| l.contains(&format!("key=k{k} ")))
            .filter_map(|l| l.split("\"n\":").nth(1))
            .filter_map(|s| s.trim_end_matches('}').parse().ok())
            .collect();
        assert_eq!(
            ns,
            (0..lines as u64).filter(|n| n % 5 == k).collect::<Vec<_>>(),
            "key k{k}"
        );
    }
}

/// Runs the binary with `stdin` as raw bytes.
fn run_bytes(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // Written from a thread: the command may stop reading (and exit) before the input ends.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// The raw values of a one-partition topic, as `consume --print value` writes them.
fn raw_values(topic: &str) -> Vec<u8> {
    let out = run(
        &[
            "consume",
            "-b",
            &broker().bootstrap,
            "-t",
            topic,
            "--print",
            "value",
            "--exit-at-end",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    out.stdout
}

/// A command's arguments, its environment, and a text its error must contain.
type FailingRun = (Vec<String>, Vec<(&'static str, String)>, String);

#[test]
fn no_secret_reaches_the_output_of_failing_commands() {
    const SECRET: &str = "s3cr3t-XyZzy";
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path.display().to_string()
    };
    let files = [
        (
            write(
                "typo.yaml",
                format!("producer:\n  properties:\n    sasl.pasword: {SECRET}\n"),
            ),
            "producer.properties.\"sasl.pasword\"",
        ),
        (
            write(
                "quote.yaml",
                format!("security:\n  sasl_password: \"{SECRET}\n"),
            ),
            "line 3 column 1",
        ),
        (
            write("tag.yaml", format!("security:\n  sasl_password: !!int {SECRET}\n")),
            "line 2 column 18",
        ),
        (
            write(
                "int.yaml",
                "security:\n  protocol: sasl_ssl\n  sasl_mechanism: PLAIN\n  sasl_username: u\n  sasl_password: 1234567890\n".into(),
            ),
            "security.sasl_password: invalid type",
        ),
        (
            write(
                "broken.json",
                format!("{{\"security\": {{\"sasl_password\": \"{SECRET}\" \"x\": 1}}}}"),
            ),
            "line 1 column",
        ),
        (
            write("bare.toml", format!("[security]\nsasl_password = {SECRET}\n")),
            "line 2 column 17",
        ),
        (
            write(
                "spaced.toml",
                format!("[properties]\n\"sasl.password \" = \"{SECRET}\"\n"),
            ),
            "properties.\"sasl.password \": the property name has spaces around it",
        ),
        (
            write(
                "client.properties",
                format!("bootstrap.servers=a:9092\nSASL.PASSWORD={SECRET}\nsasl.jaas.config={SECRET}\nssl.key.pasword={SECRET}\n"),
            ),
            "line 3 `sasl.jaas.config`: unsupported login module",
        ),
    ];
    let b = unreachable_bootstrap();
    let produce = |extra: &[&str]| {
        let mut args = vec!["produce", "-b", b.as_str(), "-t", "never"];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let x = |p: &str| format!("{p}={SECRET}");
    let mut cases: Vec<FailingRun> = vec![
        (
            produce(&["-X", &x("SASL.PASSWORD")]),
            vec![],
            "property names are lower-case: `sasl.password`".into(),
        ),
        (
            produce(&["-X", &x("sasl.pasword")]),
            vec![],
            "did you mean `sasl.password`?".into(),
        ),
        (
            produce(&["-X", &x("Sasl.Password")]),
            vec![],
            "properties.\"Sasl.Password\"".into(),
        ),
        (
            produce(&["-X", &x("sasl.password ")]),
            vec![],
            "properties.\"sasl.password \": the property name has spaces around it; write `sasl.password`".into(),
        ),
        (
            produce(&["-X", SECRET]),
            vec![],
            "-X number 1 of 1: expected KEY=VALUE".into(),
        ),
        (
            produce(&[]),
            vec![("STREAMLAKE_PROPERTIES__SASL_PASWORD", SECRET.to_owned())],
            "properties.\"sasl.pasword\"".into(),
        ),
        (
            produce(&[]),
            vec![("STREAMLAKE_SECURITY__SASL_PASSWORD", SECRET.to_owned())],
            "security.sasl_password: is set but security.protocol is plaintext".into(),
        ),
        (
            produce(&[]),
            vec![("STREAMLAKE_SECURITY__SASL_PASWROD", SECRET.to_owned())],
            "did you mean `security.sasl_password`?".into(),
        ),
        (
            ["config", "show", "-X", &x("sasl.password ")]
                .map(str::to_owned)
                .to_vec(),
            vec![],
            "the property name has spaces around it".into(),
        ),
        (
            ["config", "show", "--librdkafka", "-X", &x("ssl.key.pasword")]
                .map(str::to_owned)
                .to_vec(),
            vec![],
            "properties.\"ssl.key.pasword\"".into(),
        ),
    ];
    for (file, needle) in &files {
        cases.push((
            ["config", "check", file.as_str()]
                .map(str::to_owned)
                .to_vec(),
            vec![],
            (*needle).to_owned(),
        ));
        cases.push((
            produce(&["--config", file.as_str()]),
            vec![],
            (*needle).to_owned(),
        ));
    }
    for (args, env, needle) in &cases {
        let out = run_with(streamlake().args(args).envs(env.iter().cloned()), "line\n");
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
        assert!(
            !stdout.contains(SECRET) && !stderr.contains(SECRET),
            "{args:?} {env:?} shows the secret:\n{stdout}\n{stderr}"
        );
        assert!(
            stderr.contains(needle.as_str()),
            "{args:?}: `{needle}` not in\n{stderr}"
        );
    }
}

#[test]
fn config_check_reports_librdkafka_objections_with_the_other_problems() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "bootstrap_servers: nohost\nproducer:\n  lingr_ms: 5\n  partitioner: sideways\n  properties:\n    no.such.thing: 1\n",
    )
    .unwrap();
    let out = run(&["config", "check", "--json", bad.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(report["ok"], false);
    let keys: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "producer.lingr_ms",
            "bootstrap_servers",
            "producer.properties.\"no.such.thing\"",
            "producer.partitioner"
        ]
    );
    let messages = report["problems"].to_string();
    assert!(
        messages.contains("librdkafka rejects `partitioner`"),
        "{messages}"
    );
    assert!(
        messages.contains("librdkafka has no property `no.such.thing`"),
        "{messages}"
    );

    let good = dir.path().join("good.toml");
    std::fs::write(&good, "bootstrap_servers = \"a:9092\"\n").unwrap();
    let out = run(&["config", "check", "--json", good.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["problems"], serde_json::json!([]));
}

#[test]
fn bytes_that_are_not_utf8_are_sent_as_they_are_and_skipped_where_text_is_needed() {
    let b = &broker().bootstrap;
    // The default byte mode: every line lands with its exact bytes, in order.
    let t = new_topic("cli-bytes", 1);
    let input: &[u8] = b"plain\n\xff\xfebin\x00ary\ncaf\xe9 cr\r\nlast\n";
    let out = run_bytes(streamlake().args(["produce", "-b", b, "-t", &t]), input);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("4 delivered, 0 failed, 0 skipped"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        raw_values(&t),
        b"plain\n\xff\xfebin\x00ary\ncaf\xe9 cr\nlast\n"
    );

    // Split at a key separator, bytes still as they are.
    let t = new_topic("cli-bytes-key", 1);
    let out = run_bytes(
        streamlake().args(["produce", "-b", b, "-t", &t, "--key-separator", "\\t"]),
        b"k\xff\tv\xfe\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let records = consume_json(&t, &[]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["key"], "a/8=", "base64 of k\\xff");
    assert_eq!(records[0]["key_encoding"], "base64");
    assert_eq!(records[0]["value"], "dv4=", "base64 of v\\xfe");

    // JSON lines must be text: with skip, the bad line is named and the later ones are sent.
    let t = new_topic("cli-bytes-jsonl", 1);
    let input: &[u8] = b"{\"n\":1}\n{\"n\":\"\xff\"}\n{\"n\":3}\n{\"n\":4}\n";
    let out = run_bytes(
        streamlake().args([
            "produce",
            "-b",
            b,
            "-t",
            &t,
            "--format",
            "jsonl",
            "--on-error",
            "skip",
        ]),
        input,
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("skipped: line 2: not valid UTF-8 (from byte 6 of the line)"),
        "{err}"
    );
    assert!(err.contains("3 delivered, 0 failed, 1 skipped"), "{err}");
    // Without skip the run stops there, naming the line; what came before is delivered.
    let out = run_bytes(
        streamlake().args(["produce", "-b", b, "-t", &t, "--format", "jsonl"]),
        input,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("line 2: not valid UTF-8"), "{err}");
    assert!(err.contains("1 delivered"), "{err}");
    assert_eq!(
        raw_values(&t),
        b"{\"n\":1}\n{\"n\":3}\n{\"n\":4}\n{\"n\":1}\n"
    );
}

#[test]
fn a_line_longer_than_the_largest_message_is_refused_and_the_rest_sent() {
    let b = &broker().bootstrap;
    let t = new_topic("cli-long", 1);
    let mut input = b"first\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 3_000_000));
    input.extend_from_slice(b"\nsecond\n");
    input.extend(std::iter::repeat_n(b'y', 1_000_001));
    input.extend_from_slice(b"\nlast\n");
    let out = run_bytes(
        streamlake().args(["produce", "-b", b, "-t", &t, "--on-error", "skip"]),
        &input,
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("skipped: line 2: 3000000 bytes, longer than the largest message that can be sent (1000000 bytes, producer message.max.bytes)"),
        "{err}"
    );
    assert!(err.contains("skipped: line 4: 1000001 bytes"), "{err}");
    assert!(err.contains("3 delivered, 0 failed, 2 skipped"), "{err}");
    assert_eq!(raw_values(&t), b"first\nsecond\nlast\n");

    // The limit is the effective message.max.bytes; without skip the run stops at the line.
    let t = new_topic("cli-long-max", 1);
    let out = run_bytes(
        streamlake()
            .args(["produce", "-b", b, "-t", &t])
            .env("STREAMLAKE_PRODUCER__PROPERTIES__MESSAGE_MAX_BYTES", "4000")
            .env("STREAMLAKE_PRODUCER__BATCH_SIZE_BYTES", "4000"),
        format!("ok\n{}\nnever\n", "z".repeat(4001)).as_bytes(),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "line 2: 4001 bytes, longer than the largest message that can be sent (4000 bytes"
        ),
        "{err}"
    );
    assert!(err.contains("1 delivered"), "{err}");
    assert_eq!(raw_values(&t), b"ok\n");
}

#[test]
fn flags_that_cannot_work_are_refused_before_anything_is_sent() {
    let b = &broker().bootstrap;
    let t = new_topic("cli-flags", 1);
    let dir = tempfile::tempdir().unwrap();
    let avsc = schema_file(
        &dir,
        "order.avsc",
        r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}"#,
    );
    let cases: [(&[&str], &str); 6] = [
        (
            &["--value-schema", &avsc],
            "--value-schema is given but --value-format bytes takes no schema",
        ),
        (
            &["--value-format", "json", "--value-schema", &avsc],
            "--value-format json takes no schema",
        ),
        (
            &["--key-format", "string", "--key-schema", &avsc],
            "--key-schema is given but --key-format string takes no schema",
        ),
        (
            &["--key-separator", ""],
            "--key-separator: the key separator is empty",
        ),
        (
            &["--format", "jsonl", "--key-field", "order_id"],
            "--key-field: the key field `order_id` is not a JSON pointer",
        ),
        (
            &[
                "--value-format",
                "avro",
                "--value-schema",
                &avsc,
                "--value-message",
                "shop.Order",
            ],
            "--value-message names a Protobuf message but --value-format is avro",
        ),
    ];
    for (flags, needle) in cases {
        let out = run_with(
            streamlake()
                .args(["produce", "-b", b, "-t", &t])
                .args(flags),
            "{\"order_id\":\"a\"}\n",
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {err}");
        assert!(err.contains(needle), "{flags:?}: `{needle}` not in {err}");
        assert!(!err.contains("delivered"), "{flags:?}: {err}");
    }
    assert!(consume_json(&t, &[]).is_empty());
}
