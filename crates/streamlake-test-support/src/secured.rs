//! A crabka-broker node that requires SASL/SCRAM on a plaintext connection (SASL_PLAINTEXT),
//! with SCRAM users written into the cluster's metadata when its folder is formatted, for
//! tests that must authenticate for real. One per test binary, data in a temporary folder,
//! killed with the test process.
//!
//! crabka-broker 0.3.0 takes security settings only from a config file, and with one it puts
//! its controller on 127.0.0.1:9093, whatever the client listener: only one such node can run
//! on a machine at a time (cargo runs test binaries one after another).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// A SCRAM user of [`scram_broker`].
#[derive(Debug, Clone)]
pub struct ScramUser {
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`: the one mechanism the user has a credential for.
    pub mechanism: &'static str,
    /// User name.
    pub name: &'static str,
    /// Password.
    pub password: &'static str,
}

/// The users [`scram_broker`] knows.
pub const SCRAM_USERS: [ScramUser; 2] = [
    ScramUser {
        mechanism: "SCRAM-SHA-512",
        name: "alice",
        password: "alice-pw-512-Zq8",
    },
    ScramUser {
        mechanism: "SCRAM-SHA-256",
        name: "bob",
        password: "bob-pw-256-Kx3",
    },
];

/// A broker that requires SASL/SCRAM.
#[derive(Debug)]
pub struct SecuredBroker {
    /// `host:port` of its SASL_PLAINTEXT listener.
    pub bootstrap: String,
}

/// The SCRAM broker of this test binary, started on first use.
pub fn scram_broker() -> &'static SecuredBroker {
    static BROKER: OnceLock<SecuredBroker> = OnceLock::new();
    BROKER.get_or_init(start)
}

fn start() -> SecuredBroker {
    let pid = std::process::id();
    let dir = super::owned_temp_dir("streamlake-scram-", pid);
    let data = dir.join("data");
    let mut format = Command::new(super::cargo_bin("crabka", "STREAMLAKE_CRABKA_CLI"));
    format
        .arg("format")
        .arg("--log-dir")
        .arg(&data)
        .args(["--feature", "transaction.version=0"]);
    for u in &SCRAM_USERS {
        format.arg("--add-scram").arg(format!(
            "{}=[name={},password={}]",
            u.mechanism, u.name, u.password
        ));
    }
    let out = format
        .output()
        .expect("run crabka format (scripts/setup.sh --test installs it)");
    assert!(
        out.status.success(),
        "crabka format failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = super::free_port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.join("broker.toml");
    write_config(&config, &data, &addr);
    super::spawn_crabka(&["--config-file", &config.display().to_string()], &addr);
    SecuredBroker { bootstrap: addr }
}

/// One SASL_PLAINTEXT listener, which is also the inter-broker one: crabka advertises only
/// that listener in its metadata.
fn write_config(path: &Path, data: &Path, addr: &str) {
    let text = format!(
        "broker_id = 1\nlog_dir = \"{}\"\ninter_broker_listener_name = \"sasl\"\n\n\
         [[listeners]]\nname = \"sasl\"\nbind_addr = \"{addr}\"\nadvertised = \"{addr}\"\n\
         protocol = \"SaslPlaintext\"\n\
         sasl_config = {{ enabled_mechanisms = [\"SCRAM-SHA-256\", \"SCRAM-SHA-512\"] }}\n",
        data.display()
    );
    std::fs::write(path, text).expect("write the broker's config file");
}
