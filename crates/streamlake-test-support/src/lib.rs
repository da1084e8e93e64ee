//! The shared test rig for StreamLake's real-broker tests.
//!
//! - [`broker`] starts one real tansu broker (in-memory storage) per test binary, on a free
//!   loopback port, the first time a test asks for it. It is killed when the test process exits
//!   (parent-death signal), which also removes every topic the tests created.
//! - [`unique_topic`] names topics so tests never share one; [`create_topic`] creates them.
//! - [`python`] finds a Python with `confluent_kafka` for interoperability tests.
//!
//! tansu is installed by `scripts/setup.sh` (`STREAMLAKE_TANSU` may point at another binary).

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
    if let Ok(p) = std::env::var("STREAMLAKE_TANSU") {
        return PathBuf::from(p);
    }
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        });
    let candidate = home.join("bin").join("tansu");
    if candidate.exists() {
        candidate
    } else {
        PathBuf::from("tansu")
    }
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
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let bin = tansu_binary();
    let (tx, rx) = std::sync::mpsc::channel();
    // The child gets SIGKILL when the thread that spawned it ends; this thread lives as long as
    // the test process.
    std::thread::Builder::new()
        .name("tansu-owner".into())
        .spawn(move || {
            let mut cmd = Command::new(&bin);
            cmd.args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
            kill_with_parent(&mut cmd);
            let spawned = cmd.spawn().map_err(|e| {
                format!(
                    "cannot start {} ({e}); run scripts/setup.sh to install tansu",
                    bin.display()
                )
            });
            let ok = spawned.is_ok();
            tx.send(spawned.map(|_| ())).expect("report start");
            if ok {
                loop {
                    std::thread::park();
                }
            }
        })
        .expect("spawn tansu owner thread");
    if let Err(e) = rx.recv().expect("tansu start result") {
        panic!("{e}");
    }
    let bootstrap = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&bootstrap).is_err() {
        assert!(
            Instant::now() < deadline,
            "tansu did not listen on {bootstrap} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Broker { bootstrap }
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
