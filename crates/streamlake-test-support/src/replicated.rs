//! A real three-broker replicated cluster for failover tests: the cluster of
//! `scripts/cluster.sh` (three crabka-broker processes, each a controller and a broker, data on
//! disk), one per test binary, on loopback addresses and a port of its own, data in a temporary
//! folder, killed with the test process.
//!
//! The script does the work that must not drift between the two: `cluster.sh format` formats
//! the three data folders (one cluster id, one three-voter controller quorum, classic
//! transactions), and each broker runs as `cluster.sh exec N`, which `exec`s crabka-broker with
//! the same flags `cluster.sh up` uses (so the process the rig signals is the broker itself).
//!
//! Brokers are numbered 1-3, their broker ids. Tests that stop a broker share the cluster with
//! the other tests of their binary, so they bring it back before they end.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The port crabka-broker always gives its controller, on the address it listens on.
const CONTROLLER_PORT: u16 = 9093;

/// The topic (one partition, three replicas) the rig writes to when the cluster starts.
const PROBE_TOPIC: &str = "streamlake-cluster-probe";

/// The three-broker cluster of this test binary, started on first use.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::boot)
}

/// A three-broker crabka cluster (see the module docs).
#[derive(Debug)]
pub struct Cluster {
    /// `host:port,host:port,host:port`, brokers 1-3.
    pub bootstrap: String,
    /// The state folder (`STREAMLAKE_CLUSTER_DIR` of the script): `broker-N/` data and
    /// `broker-N.log` logs.
    pub dir: PathBuf,
    nodes: Vec<Node>,
}

#[derive(Debug)]
struct Node {
    addr: String,
    process: Mutex<Option<Running>>,
}

#[derive(Debug, Clone)]
struct Running {
    pid: u32,
    exited: Arc<AtomicBool>,
    frozen: bool,
}

/// One partition as the cluster's metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// Leader broker id, -1 without one.
    pub leader: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
}

impl Cluster {
    fn boot() -> Cluster {
        let pid = std::process::id();
        let hosts = addresses(pid);
        let port = common_free_port(&hosts);
        let dir = super::owned_temp_dir("streamlake-cluster-", pid);
        let cluster = Cluster {
            bootstrap: hosts
                .iter()
                .map(|h| format!("{h}:{port}"))
                .collect::<Vec<_>>()
                .join(","),
            dir,
            nodes: hosts
                .iter()
                .map(|h| Node {
                    addr: format!("{h}:{port}"),
                    process: Mutex::new(None),
                })
                .collect(),
        };
        let hosts = hosts.map(|h| h.to_string()).join(" ");
        let out = cluster
            .script()
            .arg("format")
            .env("STREAMLAKE_CLUSTER_HOSTS", &hosts)
            .env("STREAMLAKE_CLUSTER_PORT", port.to_string())
            .output()
            .expect("run scripts/cluster.sh format");
        assert!(
            out.status.success(),
            "scripts/cluster.sh format failed (run scripts/setup.sh --test to install crabka): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for n in 1..=3 {
            cluster.launch(n);
        }
        for n in 1..=3 {
            cluster.wait_listening(n);
        }
        cluster.wait_until_it_takes_a_write();
        cluster
    }

    /// `bash scripts/cluster.sh` for this cluster's folder.
    fn script(&self) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(super::repo_root().join("scripts/cluster.sh"))
            .env("STREAMLAKE_CLUSTER_DIR", &self.dir)
            .stdin(Stdio::null());
        cmd
    }

    fn node(&self, n: i32) -> &Node {
        assert!((1..=3).contains(&n), "broker {n}: brokers are 1, 2 and 3");
        &self.nodes[(n - 1) as usize]
    }

    /// Broker `n`'s `host:port`.
    pub fn addr(&self, n: i32) -> &str {
        &self.node(n).addr
    }

    /// Broker `n`'s log file.
    pub fn log(&self, n: i32) -> PathBuf {
        self.dir.join(format!("broker-{n}.log"))
    }

    /// The last `lines` lines of each broker's log, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for n in 1..=3 {
            let log = std::fs::read_to_string(self.log(n)).unwrap_or_default();
            let all: Vec<&str> = log.lines().collect();
            out.push_str(&format!("--- broker {n} ({})\n", self.log(n).display()));
            for l in &all[all.len().saturating_sub(lines)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Broker `n` runs (possibly frozen).
    pub fn is_running(&self, n: i32) -> bool {
        let p = self.node(n).process.lock().expect("node lock");
        p.as_ref().is_some_and(|r| !r.exited.load(Ordering::SeqCst))
    }

    /// Starts broker `n` on its data and waits until it listens. It must not be running.
    ///
    /// While other brokers run, it first waits (up to 60 s) until they follow a controller other
    /// than `n`: crabka 0.3.0 keeps the last controller leader it knew in its quorum state file,
    /// so a controller leader started again before the others have elected a new one comes back
    /// believing it leads, never calls an election, and the others keep following it (the
    /// cluster has no controller, and the broker never opens its client port).
    pub fn start(&self, n: i32) {
        if (1..=3).any(|m| m != n && self.is_running(m)) {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let c = self.controller();
                if c >= 1 && c != n {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the running brokers have no controller other than broker {n} after 60 s \
                     (last seen: {c})\n{}",
                    self.log_tails(30)
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        self.launch(n);
        self.wait_listening(n);
    }

    /// Runs broker `n` (`cluster.sh exec N`), not waiting for it.
    fn launch(&self, n: i32) {
        let mut process = self.node(n).process.lock().expect("node lock");
        assert!(
            process
                .as_ref()
                .is_none_or(|r| r.exited.load(Ordering::SeqCst)),
            "broker {n} is already running"
        );
        let mut cmd = self.script();
        cmd.args(["exec", &n.to_string()]);
        *process = Some(spawn_watched(cmd));
    }

    /// Waits until broker `n` takes connections: it opens its client port only once its
    /// controller has joined a quorum (two of the three running).
    fn wait_listening(&self, n: i32) {
        let node = self.node(n);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(&node.addr).is_err() {
            assert!(
                self.is_running(n),
                "broker {n} exited at start:\n{}",
                self.log_tails(30)
            );
            assert!(
                Instant::now() < deadline,
                "broker {n} did not listen on {} within 60 s:\n{}",
                node.addr,
                self.log_tails(30)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL to broker `n`; returns once it is gone.
    pub fn kill(&self, n: i32) {
        self.end(n, "KILL", Duration::from_secs(10));
    }

    /// Stops broker `n` cleanly and waits until it has exited (crabka-broker shuts down on
    /// SIGINT; it has no SIGTERM handler, so SIGTERM would end it like a crash).
    pub fn stop(&self, n: i32) {
        self.end(n, "INT", Duration::from_secs(30));
    }

    fn end(&self, n: i32, signal: &str, within: Duration) {
        let mut process = self.node(n).process.lock().expect("node lock");
        let Some(running) = process.take() else {
            panic!("broker {n} is not running")
        };
        send_signal(running.pid, signal);
        if running.frozen && signal != "KILL" {
            send_signal(running.pid, "CONT");
        }
        let deadline = Instant::now() + within;
        while !running.exited.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "broker {n} still runs {within:?} after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGSTOP to broker `n`: its process and connections stay, it answers nothing.
    pub fn freeze(&self, n: i32) {
        self.set_frozen(n, true);
    }

    /// SIGCONT to a frozen broker `n`.
    pub fn resume(&self, n: i32) {
        self.set_frozen(n, false);
    }

    fn set_frozen(&self, n: i32, frozen: bool) {
        let mut process = self.node(n).process.lock().expect("node lock");
        let running = process.as_mut().expect("broker is running");
        send_signal(running.pid, if frozen { "STOP" } else { "CONT" });
        running.frozen = frozen;
    }

    /// Broker `n` is frozen (stopped with SIGSTOP and not resumed).
    pub fn is_frozen(&self, n: i32) -> bool {
        let p = self.node(n).process.lock().expect("node lock");
        p.as_ref()
            .is_some_and(|r| r.frozen && !r.exited.load(Ordering::SeqCst))
    }

    /// Brings the cluster back to three running brokers: resumes frozen ones, starts stopped
    /// ones (see [`Cluster::start`]), and waits (up to `within`) until the replicas of every
    /// partition of the rig's probe topic are in sync. For a test to start from a healthy
    /// cluster whatever an earlier test left.
    pub fn heal(&self, within: Duration) -> Result<(), Vec<PartitionState>> {
        for n in 1..=3 {
            if self.is_frozen(n) {
                self.resume(n);
            }
        }
        for n in 1..=3 {
            if !self.is_running(n) {
                self.start(n);
            }
        }
        self.wait_for_full_isr(PROBE_TOPIC, within)
    }

    /// The broker that coordinates the transactions of `transactional_id`: the leader of its
    /// `__transaction_state` partition (crabka, like Kafka, places a transactional id by the
    /// murmur2 hash of its bytes among the topic's 50 partitions), -1 if that partition has no
    /// leader or the topic does not exist yet (it is created by the first transactional
    /// producer's `FindCoordinator`).
    pub fn transaction_coordinator(&self, transactional_id: &str) -> i32 {
        let p = partition_for_transactional_id(transactional_id);
        self.partitions("__transaction_state")
            .ok()
            .and_then(|parts| parts.get(p as usize).map(|s| s.leader))
            .unwrap_or(-1)
    }

    /// The brokers that run and are not frozen, as a bootstrap list: a metadata request sent to
    /// a frozen broker would wait for its whole timeout.
    fn live_bootstrap(&self) -> String {
        let live: Vec<&str> = (1..=3)
            .filter(|&n| {
                let p = self.node(n).process.lock().expect("node lock");
                p.as_ref()
                    .is_some_and(|r| !r.frozen && !r.exited.load(Ordering::SeqCst))
            })
            .map(|n| self.addr(n))
            .collect();
        assert!(!live.is_empty(), "no broker of the cluster is running");
        live.join(",")
    }

    fn admin(&self) -> AdminClient<DefaultClientContext> {
        ClientConfig::new()
            .set("bootstrap.servers", self.live_bootstrap())
            .set("log_level", "3")
            .create()
            .expect("admin client")
    }

    /// Creates a topic with replication factor 3 and `min.insync.replicas` 2 (crabka has no
    /// broker-side defaults for either: every topic says so itself) and waits until every
    /// partition has a leader.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.create_topic_with(name, partitions, 3, &[("min.insync.replicas", "2")]);
    }

    /// Creates `name` with `partitions` partitions of `replication` replicas and the topic
    /// configs `configs`, and waits until every partition has a leader.
    pub fn create_topic_with(
        &self,
        name: &str,
        partitions: i32,
        replication: i32,
        configs: &[(&str, &str)],
    ) {
        let admin = self.admin();
        let topic = configs.iter().fold(
            NewTopic::new(name, partitions, TopicReplication::Fixed(replication)),
            |t, (k, v)| t.set(k, v),
        );
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = futures::executor::block_on(admin.create_topics([&topic], &opts))
            .expect("create_topics");
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
        }
        self.wait_for_leaders(name, partitions);
    }

    /// Waits (30 s at most) until `name` has `partitions` partitions, each with a leader.
    pub fn wait_for_leaders(&self, name: &str, partitions: i32) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(parts) = self.partitions(name) {
                if parts.len() == partitions as usize && parts.iter().all(|p| p.leader >= 0) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "topic {name} has no leader for every partition after 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The controller (the metadata quorum's leader) the live brokers follow, -1 if they know
    /// none.
    pub fn controller(&self) -> i32 {
        let admin = self.admin();
        // Fetch metadata first: the controller id comes with it.
        let _ = admin.inner().fetch_metadata(None, Duration::from_secs(5));
        // SAFETY: the pointer is the live client of `admin`, which outlives the call.
        #[allow(unsafe_code)]
        unsafe {
            rdkafka::bindings::rd_kafka_controllerid(admin.inner().native_ptr(), 5_000)
        }
    }

    /// Every partition of `topic`, by id, as the metadata of a live broker shows it.
    pub fn partitions(&self, topic: &str) -> Result<Vec<PartitionState>, String> {
        let admin = self.admin();
        let md = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        let t = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(|| format!("no metadata for {topic}"))?;
        if let Some(e) = t.error() {
            return Err(format!("{topic}: {e:?}"));
        }
        let mut parts: Vec<_> = t.partitions().iter().collect();
        parts.sort_by_key(|p| p.id());
        Ok(parts
            .iter()
            .map(|p| PartitionState {
                leader: p.leader(),
                replicas: p.replicas().to_vec(),
                isr: p.isr().to_vec(),
            })
            .collect())
    }

    /// The leader of `topic`'s `partition` (a broker id, -1 without one).
    pub fn leader(&self, topic: &str, partition: i32) -> i32 {
        let parts = self.partitions(topic).unwrap_or_else(|e| panic!("{e}"));
        parts
            .get(partition as usize)
            .unwrap_or_else(|| panic!("{topic} has no partition {partition}"))
            .leader
    }

    /// Waits until every partition of `topic` has a leader and all three replicas in sync;
    /// the last state seen if that does not happen within `within`.
    pub fn wait_for_full_isr(
        &self,
        topic: &str,
        within: Duration,
    ) -> Result<(), Vec<PartitionState>> {
        let deadline = Instant::now() + within;
        let mut last = Vec::new();
        loop {
            if let Ok(parts) = self.partitions(topic) {
                if parts.iter().all(|p| p.leader >= 0 && p.isr.len() == 3) {
                    return Ok(());
                }
                last = parts;
            }
            if Instant::now() >= deadline {
                return Err(last);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until three brokers are registered and a topic with three in-sync replicas takes
    /// a record with `acks=all`.
    fn wait_until_it_takes_a_write(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let fail = |what: &str| -> ! {
            panic!(
                "the cluster in {} is not ready after 90 s: {what}\n{}",
                self.dir.display(),
                self.log_tails(40)
            )
        };
        loop {
            let admin = self.admin();
            if let Ok(md) = admin.inner().fetch_metadata(None, Duration::from_secs(5)) {
                if md.brokers().len() == 3 {
                    break;
                }
            }
            if Instant::now() >= deadline {
                fail("three brokers registered");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let probe = PROBE_TOPIC;
        loop {
            let admin = self.admin();
            let topic =
                NewTopic::new(probe, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
            let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
            let _ = futures::executor::block_on(admin.create_topics([&topic], &opts));
            if self
                .partitions(probe)
                .is_ok_and(|p| p.len() == 1 && p[0].leader >= 0 && p[0].isr.len() == 3)
            {
                break;
            }
            if Instant::now() >= deadline {
                fail("a topic with three in-sync replicas");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("acks", "all")
            .set("message.timeout.ms", "10000")
            .set("log_level", "3")
            .create()
            .expect("probe producer");
        loop {
            let sent = producer
                .send_result(FutureRecord::<(), str>::to(probe).payload("probe"))
                .map_err(|(e, _)| e.to_string())
                .and_then(|d| {
                    futures::executor::block_on(d)
                        .map_err(|e| e.to_string())?
                        .map_err(|(e, _)| e.to_string())
                });
            match sent {
                Ok(_) => return,
                Err(e) if Instant::now() >= deadline => fail(&format!("a write ({e})")),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

/// Three loopback addresses for process `pid`, out of the range the transactional broker
/// takes (127.100-163.x.y) and the script's default (127.0.0.x), each with the controller port
/// free.
fn addresses(pid: u32) -> [Ipv4Addr; 3] {
    // 127.164.0.1 to 127.253.255.254: 90 × 256 × 254 addresses.
    const SPACE: u64 = 90 * 256 * 254;
    let mut out = Vec::new();
    let mut n = u64::from(pid) * 3;
    while out.len() < 3 {
        let m = n % SPACE;
        let ip = Ipv4Addr::new(
            127,
            164 + (m / (256 * 254)) as u8,
            ((m / 254) % 256) as u8,
            (m % 254 + 1) as u8,
        );
        if !out.contains(&ip) && TcpListener::bind((ip, CONTROLLER_PORT)).is_ok() {
            out.push(ip);
        }
        // The next address, or (past the three of this process) a jump away from the other
        // processes' addresses.
        n += if n % 3 == 2 { 1_000_003 } else { 1 };
    }
    [out[0], out[1], out[2]]
}

/// A port free on all three addresses.
fn common_free_port(hosts: &[Ipv4Addr; 3]) -> u16 {
    loop {
        let port = TcpListener::bind((hosts[0], 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        if port != CONTROLLER_PORT
            && hosts[1..]
                .iter()
                .all(|h| TcpListener::bind((*h, port)).is_ok())
        {
            return port;
        }
    }
}

/// Starts `cmd` killed with the test process (parent-death signal, from a thread that lives as
/// long as the process), and a flag that turns true once it has exited.
fn spawn_watched(mut cmd: Command) -> Running {
    let exited = Arc::new(AtomicBool::new(false));
    let flag = exited.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("cluster-broker-owner".into())
        .spawn(move || {
            cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
            super::kill_with_parent(&mut cmd);
            match cmd.spawn() {
                Ok(mut child) => {
                    tx.send(Ok(child.id())).expect("report start");
                    let _ = child.wait();
                    flag.store(true, Ordering::SeqCst);
                    // The parent-death signal is tied to this thread: it stays.
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => tx
                    .send(Err(format!("cannot run scripts/cluster.sh ({e})")))
                    .expect("report start"),
            }
        })
        .expect("spawn owner thread");
    let pid = rx
        .recv()
        .expect("start result")
        .unwrap_or_else(|e| panic!("{e}"));
    Running {
        pid,
        exited,
        frozen: false,
    }
}

/// The `__transaction_state` partition of a transactional id: `Utils.abs(murmur2(id)) % 50`,
/// as crabka (and Kafka's coordinator placement by hash) computes it.
fn partition_for_transactional_id(transactional_id: &str) -> i32 {
    let h = murmur2(transactional_id.as_bytes());
    (if h == i32::MIN { 0 } else { h.abs() }) % 50
}

/// Kafka's murmur2 (the Java client's `Utils.murmur2`), as a signed 32-bit value.
fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = SEED ^ (data.len() as u32);
    let chunks = data.chunks_exact(4);
    let rem = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    if rem.len() >= 3 {
        h ^= u32::from(rem[2]) << 16;
    }
    if rem.len() >= 2 {
        h ^= u32::from(rem[1]) << 8;
    }
    if !rem.is_empty() {
        h ^= u32::from(rem[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status();
}

#[cfg(test)]
mod tests {
    #[test]
    fn transactional_ids_map_to_the_partitions_the_java_client_computes() {
        // crabka's reference vectors, from `Utils.abs(Utils.murmur2(id)) % 50`.
        for (id, p) in [("my-tid", 43), ("producer-1", 45), ("tx-orders-prod", 26)] {
            assert_eq!(super::partition_for_transactional_id(id), p, "{id}");
        }
    }
}
