//! The shared test rig for StreamLake's real-broker tests.
//!
//! - [`broker`] starts one real tansu broker (in-memory storage) per test binary, on a free
//!   loopback port, the first time a test asks for it. It is killed when the test process exits
//!   (parent-death signal), which also removes every topic the tests created.
//! - [`unique_topic`] names topics so tests never share one; [`create_topic`] creates them.
//! - [`python`] finds a Python with `confluent_kafka` for interoperability tests.
//!
//! - [`start_persistent_broker`] starts a broker of a test's own with SQLite storage, for tests
//!   that stop and restart it.
//! - [`registry`] starts one rivven-schema registry per test binary; [`start_registry`] one of a
//!   test's own.
//! - [`transactional_broker`] starts one crabka broker per test binary, a second independently
//!   written Kafka-compatible broker, for what tansu 0.6.0 lacks: transactions (`EndTxn`,
//!   aborted records hidden from `read_committed` readers, offsets committed in a transaction).
//! - [`cluster()`] starts one three-broker replicated crabka cluster per test binary (the cluster
//!   of `scripts/cluster.sh`), with brokers to kill, stop, start, freeze and resume.
//!
//! tansu, rivven-schema, crabka-broker and crabka (crabka-cli) are installed by
//! `scripts/setup.sh --test` (`STREAMLAKE_TANSU`, `STREAMLAKE_RIVVEN_SCHEMA`, `STREAMLAKE_CRABKA`
//! and `STREAMLAKE_CRABKA_CLI` may point at other binaries).

mod replicated;
mod secured;
pub use replicated::{cluster, Cluster, PartitionState};
pub use secured::{scram_broker, ScramUser, SecuredBroker, SCRAM_USERS};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A running tansu broker.
#[derive(Debug)]
pub struct Broker {
    /// `127.0.0.1:port`.
    pub bootstrap: String,
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The tansu binary: `STREAMLAKE_TANSU`, then `tansu` in cargo's bin dir, then on `PATH`.
pub fn tansu_binary() -> PathBuf {
    cargo_bin("tansu", "STREAMLAKE_TANSU")
}

/// The broker for this test binary, started on first use.
pub fn broker() -> &'static Broker {
    static BROKER: OnceLock<Broker> = OnceLock::new();
    BROKER.get_or_init(|| start_broker(&[]))
}

/// A second broker of this test binary that requires SASL/SCRAM authentication and knows no
/// users, for authentication-failure tests.
pub fn broker_requiring_authentication() -> &'static Broker {
    static BROKER: OnceLock<Broker> = OnceLock::new();
    BROKER.get_or_init(|| start_broker(&["--authentication"]))
}

fn start_broker(extra: &'static [&'static str]) -> Broker {
    let service = start_tansu(free_port(), "memory://tansu/", extra);
    Broker {
        bootstrap: service.addr,
    }
}

/// Starts tansu on `port` with `storage` and waits until it listens.
fn start_tansu(port: u16, storage: &str, extra: &[&str]) -> Service {
    let url = format!("tcp://127.0.0.1:{port}");
    let mut args: Vec<String> = [
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
        "--storage-engine",
        storage,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let pid = spawn_owned(
        tansu_binary(),
        args,
        "run scripts/setup.sh --test to install tansu",
    );
    let addr = format!("127.0.0.1:{port}");
    wait_for_port(&addr, "tansu");
    Service { pid, addr }
}

/// A tansu broker of the test's own with SQLite storage in `dir`, on `port`: topics and records
/// survive [`Service::kill`] and a new start on the same port and folder.
pub fn start_persistent_broker(port: u16, dir: &std::path::Path) -> Service {
    // tansu reads the part after `sqlite:///` as the path, so an absolute path keeps its slash.
    let storage = format!("sqlite:///{}", dir.join("tansu.db").display());
    start_tansu(port, &storage, &[])
}

/// The transactional broker for this test binary (crabka-broker, one node, data in a temporary
/// folder), started on first use and killed when the test process exits.
pub fn transactional_broker() -> &'static Broker {
    static BROKER: OnceLock<Broker> = OnceLock::new();
    BROKER.get_or_init(start_crabka)
}

fn start_crabka() -> Broker {
    // crabka-broker puts its controller on port 9093 of the address it listens on, so every
    // broker gets a loopback address of its own, made from the process id.
    let pid = std::process::id();
    let ip = std::net::Ipv4Addr::new(
        127,
        100 + ((pid >> 16) & 0x3f) as u8,
        (pid >> 8) as u8,
        pid as u8,
    );
    let port = TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let dir = crabka_data_dir(pid);
    // A node's folder must name its directory id before the first start (what `crabka format`
    // writes); the rest of the cluster's state is created on that start.
    std::fs::write(
        dir.join("meta.properties.json"),
        format!(
            r#"{{"version":1,"node_id":1,"directory_id":"{:08x}-0000-4000-8000-{:012x}"}}"#,
            pid,
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 & 0xffff_ffff_ffff)
                .unwrap_or(1)
        ),
    )
    .expect("write meta.properties.json");
    let addr = format!("{ip}:{port}");
    spawn_crabka(
        &[
            "--listen-addr",
            &addr,
            "--log-dir",
            &dir.display().to_string(),
        ],
        &addr,
    );
    use_classic_transactions(&addr);
    Broker { bootstrap: addr }
}

/// Starts crabka-broker with `args` (without its metrics endpoint and disk scans), owned by
/// this process, and waits until it listens on `addr`.
fn spawn_crabka(args: &[&str], addr: &str) {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(
        [
            "--metrics-listen-addr",
            "none",
            "--partition-disk-scan-interval-secs",
            "0",
        ]
        .map(String::from),
    );
    spawn_owned(
        cargo_bin("crabka-broker", "STREAMLAKE_CRABKA"),
        all,
        "run scripts/setup.sh --test to install crabka-broker",
    );
    wait_for_port(addr, "crabka-broker");
}

/// Finalizes `transaction.version` at 0 (classic transactions, as on a Kafka 3 cluster).
///
/// crabka-broker 0.3.0 starts a new cluster at transaction version 2 (KIP-890) and then bumps a
/// transactional producer's epoch at every commit and abort, whatever the `EndTxn` version the
/// client sent. Kafka does that only for clients that send `EndTxn` v5 or later and so learn
/// the new epoch; librdkafka sends v1 and keeps its epoch, so its second transaction would be
/// fenced. No client library exposes `UpdateFeatures`, so this sends the request (API key 57,
/// version 0) itself and checks the answer.
fn use_classic_transactions(addr: &str) {
    use std::io::{Read, Write};
    fn uvarint(out: &mut Vec<u8>, n: usize) {
        assert!(n < 0x80, "short lengths only");
        out.push(n as u8);
    }
    let feature = b"transaction.version";
    let mut req = Vec::new();
    req.extend_from_slice(&57i16.to_be_bytes()); // UpdateFeatures
    req.extend_from_slice(&0i16.to_be_bytes()); // version 0 (flexible)
    req.extend_from_slice(&1i32.to_be_bytes()); // correlation id
    req.extend_from_slice(&10i16.to_be_bytes());
    req.extend_from_slice(b"streamlake");
    uvarint(&mut req, 0); // header tagged fields
    req.extend_from_slice(&10_000i32.to_be_bytes()); // timeout_ms
    uvarint(&mut req, 2); // one feature update
    uvarint(&mut req, feature.len() + 1);
    req.extend_from_slice(feature);
    req.extend_from_slice(&0i16.to_be_bytes()); // max_version_level 0: remove the feature
    req.push(1); // allow_downgrade
    uvarint(&mut req, 0);
    uvarint(&mut req, 0);
    let mut stream = TcpStream::connect(addr).expect("connect to crabka-broker");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("read timeout");
    stream
        .write_all(&(req.len() as i32).to_be_bytes())
        .and_then(|()| stream.write_all(&req))
        .expect("send UpdateFeatures");
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("UpdateFeatures answer");
    let mut resp = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut resp).expect("UpdateFeatures answer");
    // correlation id (4), header tagged fields (1), throttle (4), then the error code.
    let error = i16::from_be_bytes([resp[9], resp[10]]);
    // After the error message (null: 1 byte) and the array length (1): the feature name, then
    // the feature's own error code.
    let at = 13 + feature.len() + 1;
    let feature_error = i16::from_be_bytes([resp[at], resp[at + 1]]);
    assert!(
        error == 0 && feature_error == 0,
        "crabka-broker refused transaction.version=0 (errors {error}, {feature_error})"
    );
}

/// A new data folder for the crabka broker of process `pid`.
fn crabka_data_dir(pid: u32) -> PathBuf {
    owned_temp_dir("streamlake-crabka-", pid)
}

/// A new temporary folder `{prefix}{pid}` for process `pid`, after removing the folders of
/// that prefix whose processes have exited (their brokers die with them and cannot clean up).
fn owned_temp_dir(prefix: &str, pid: u32) -> PathBuf {
    let root = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let name = e.file_name();
            let owner = name
                .to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|p| p.parse::<u32>().ok());
            if owner.is_some_and(|p| !PathBuf::from(format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = root.join(format!("{prefix}{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary folder");
    dir
}

/// A process started by [`spawn_owned`]; [`Service::kill`] stops it early.
#[derive(Debug)]
pub struct Service {
    /// Process id.
    pub pid: u32,
    /// `host:port` it listens on.
    pub addr: String,
}

impl Service {
    /// Stops the process (SIGKILL) and waits until its port is closed.
    pub fn kill(&self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&self.addr).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A Confluent-compatible Schema Registry (rivven-schema, in memory) on a free loopback port,
/// shared by the tests of this binary. Its URL is `http://127.0.0.1:port`.
pub fn registry() -> &'static Service {
    static REGISTRY: OnceLock<Service> = OnceLock::new();
    REGISTRY.get_or_init(start_registry)
}

/// A registry of the test's own, for tests that stop it.
pub fn start_registry() -> Service {
    let port = free_port();
    let bin = cargo_bin("rivven-schema", "STREAMLAKE_RIVVEN_SCHEMA");
    let args = [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--log-level",
        "warn",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let pid = spawn_owned(
        bin,
        args,
        "run scripts/setup.sh --test to install rivven-schema",
    );
    let addr = format!("127.0.0.1:{port}");
    wait_for_port(&addr, "rivven-schema");
    Service { pid, addr }
}

impl Service {
    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn cargo_bin(name: &str, env: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        });
    let candidate = home.join("bin").join(name);
    if candidate.exists() {
        candidate
    } else {
        PathBuf::from(name)
    }
}

fn wait_for_port(addr: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {addr} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a process that is killed when the test process exits: it is spawned from a thread
/// that lives as long as the process, with a parent-death signal.
fn spawn_owned(bin: PathBuf, args: Vec<String>, hint: &'static str) -> u32 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("service-owner".into())
        .spawn(move || {
            let mut cmd = Command::new(&bin);
            cmd.args(&args)
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            kill_with_parent(&mut cmd);
            match cmd.spawn() {
                Ok(child) => {
                    tx.send(Ok(child.id())).expect("report start");
                    let mut child = child;
                    // Reap it when it exits (killed by a test), then keep the thread alive.
                    let _ = child.wait();
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => tx
                    .send(Err(format!("cannot start {} ({e}); {hint}", bin.display())))
                    .expect("report start"),
            }
        })
        .expect("spawn owner thread");
    rx.recv()
        .expect("start result")
        .unwrap_or_else(|e| panic!("{e}"))
}

#[allow(unsafe_code)]
fn kill_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A topic name no other test uses.
pub fn unique_topic(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a topic (replication 1) on `bootstrap` and waits until its metadata is visible.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results =
        futures::executor::block_on(admin.create_topics([&topic], &opts)).expect("create_topics");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let md = admin
            .inner()
            .fetch_metadata(Some(name), Duration::from_secs(5))
            .expect("metadata");
        if md.topics().iter().any(|t| {
            t.name() == name && t.error().is_none() && t.partitions().len() == partitions as usize
        }) {
            return;
        }
        assert!(Instant::now() < deadline, "topic {name} did not appear");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A broker address nothing listens on.
pub fn unreachable_bootstrap() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// A Python interpreter that can `import confluent_kafka`: `STREAMLAKE_PYTHON`, the repo's
/// `.venv`, or `python3`.
pub fn python() -> PathBuf {
    let root = repo_root();
    let candidates = [
        std::env::var("STREAMLAKE_PYTHON").ok().map(PathBuf::from),
        Some(root.join(".venv/bin/python")),
        Some(PathBuf::from("python3")),
    ];
    for c in candidates.into_iter().flatten() {
        let ok = Command::new(&c)
            .args(["-c", "import confluent_kafka"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return c;
        }
    }
    panic!("no Python with confluent_kafka found; run scripts/setup.sh");
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// The `streamlake` binary at `bin` (a CLI test's `env!("CARGO_BIN_EXE_streamlake")`), with no
/// `STREAMLAKE_*` setting inherited from the test's environment and only errors logged.
pub fn cli_command(bin: &str) -> Command {
    let mut cmd = Command::new(bin);
    for (k, _) in
        std::env::vars().filter(|(k, _)| k.starts_with("STREAMLAKE_") || k.starts_with("OTEL_"))
    {
        cmd.env_remove(k);
    }
    cmd.env("STREAMLAKE_LOG", "error");
    cmd
}

/// `GET http://addr/path` over a fresh connection: the status code and the body.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
}

/// A topic of its own on the shared [`broker`], created with `partitions` partitions.
pub fn new_topic(prefix: &str, partitions: i32) -> String {
    let t = unique_topic(prefix);
    create_topic(&broker().bootstrap, &t, partitions);
    t
}

/// Runs `cmd` with `stdin` as its input and collects its output.
pub fn run_with(cmd: &mut Command, stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `POST http://addr/path` with a body over a fresh connection: the status code and the body.
pub fn http_post(
    addr: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    http(
        addr,
        &format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()),
    )
}

/// One request, the connection closed after the answer: the status code and the body.
fn http(addr: &str, request: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(request.as_bytes())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// The child's stderr, line by line, on a channel, so a test can wait for one line.
pub fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Sends `signal` (`TERM`, `INT`, …) to the child with the `kill` command.
pub fn signal(child: &std::process::Child, signal: &str) {
    let ok = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{signal} {} failed", child.id());
}

/// Waits until `addr` accepts a TCP connection (20 s at most) while `child`, the server that
/// is to listen there, runs; fails the test with the child's stderr (when piped) if it exits.
pub fn wait_listening(child: &mut std::process::Child, addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            panic!("the server for {addr} exited with {status}: {stderr}");
        }
        assert!(
            Instant::now() < deadline,
            "nothing listened on {addr} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (30 s at most) for the `metrics on http://ADDR/metrics` line a command prints when
/// its metrics endpoint is up, among the child's stderr `lines`, and returns ADDR.
pub fn metrics_addr(lines: &std::sync::mpsc::Receiver<String>) -> String {
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the command printed no `metrics on http://…` line within 30 s");
        if let Some(rest) = line.strip_prefix("metrics on http://") {
            return rest.trim_end_matches("/metrics").to_owned();
        }
    }
}

/// The value of the sample `name{labels}` in a Prometheus text page (labels as printed).
pub fn sample(page: &str, name_and_labels: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// SIGTERM to the child, then its exit status.
pub fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    signal(child, "TERM");
    child.wait().expect("wait")
}

/// Every record of `topic` on the shared [`broker`], one JSON object each, as
/// `streamlake consume --print json --exit-at-end` prints them; `bin` is the `streamlake`
/// binary and `extra` adds flags. Fails the test if the command fails.
pub fn consume_json(bin: &str, topic: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = run_with(
        cli_command(bin)
            .args(["consume", "-b", &broker().bootstrap, "-t", topic])
            .args(["--print", "json", "--exit-at-end"])
            .args(extra),
        "",
    );
    assert!(
        out.status.success(),
        "consume failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("consume prints JSON lines"))
        .collect()
}
