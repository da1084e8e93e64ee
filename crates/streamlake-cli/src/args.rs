//! Flags shared by every command that talks to Kafka.

use crate::out::say;
use clap::Args;
use std::path::PathBuf;
use streamlake::config::{ConfigLoader, LoadedConfig};

/// Where the cluster is and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Bootstrap servers, host:port[,host:port…] [env: STREAMLAKE_BOOTSTRAP_SERVERS]
    #[arg(short = 'b', long, value_name = "SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// Config file: YAML, TOML, or a Java-style client.properties
    #[arg(long, value_name = "FILE", env = "STREAMLAKE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Raw librdkafka property for every client, e.g. -X socket.keepalive.enable=true
    #[arg(short = 'X', long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// Schema Registry URL(s) [env: STREAMLAKE_SCHEMA_REGISTRY_URL]
    #[arg(long, value_name = "URL")]
    pub schema_registry: Option<String>,
}

impl KafkaArgs {
    /// The layered loader: defaults < file < env < these flags (plus the command's own).
    pub fn loader(&self) -> anyhow::Result<ConfigLoader> {
        let mut loader = ConfigLoader::new();
        if let Some(path) = &self.config {
            loader = loader.file(path);
        }
        loader = loader.process_env();
        if let Some(b) = &self.bootstrap_servers {
            loader = loader.flag("bootstrap_servers", b.as_str(), "--bootstrap-servers");
        }
        if let Some(url) = &self.schema_registry {
            loader = loader.flag("schema_registry.url", url.as_str(), "--schema-registry");
        }
        for (i, p) in self.properties.iter().enumerate() {
            // Not echoed: an argument without `=` may be a secret typed in the wrong place.
            let (k, v) = p.split_once('=').ok_or_else(|| {
                anyhow::anyhow!(
                    "-X number {} of {}: expected KEY=VALUE, found no `=` (the argument is not shown)",
                    i + 1,
                    self.properties.len()
                )
            })?;
            loader = loader.property("properties", k, v, "-X");
        }
        Ok(loader)
    }

    /// Loads the configuration with no command-specific flags.
    pub fn load(&self) -> anyhow::Result<LoadedConfig> {
        Ok(self.loader()?.load()?)
    }
}

/// Prints notes from loading (ignored Java-only properties) to stderr.
pub fn print_notes(loaded: &LoadedConfig) {
    for note in &loaded.notes {
        say!("note: {note}");
    }
}

/// A runtime for the async parts of a command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// What a second signal does before the process exits (set once by the running command).
static ON_SECOND_SIGNAL: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>> =
    std::sync::OnceLock::new();

/// Registers what a second signal does before exiting: it must be quick (it runs while the
/// user waits) and leave nothing accepted unaccounted for.
pub fn on_second_signal(f: impl Fn() + Send + Sync + 'static) {
    let _ = ON_SECOND_SIGNAL.set(Box::new(f));
}

/// A flag set by the first SIGINT or SIGTERM; a second signal runs the hook of
/// [`on_second_signal`] and exits at once with status 130.
pub fn stop_on_signal(
    rt: &tokio::runtime::Runtime,
) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    // The streams are created here, before returning, so no signal can arrive unobserved.
    let _guard = rt.enter();
    let streams = (
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()),
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()),
    );
    rt.spawn(async move {
        let (Ok(mut int), Ok(mut term)) = streams else {
            return;
        };
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if flag.swap(true, Ordering::SeqCst) {
                if let Some(f) = ON_SECOND_SIGNAL.get() {
                    f();
                }
                say!("second signal: exiting now");
                std::process::exit(130);
            }
            say!("stopping: finishing in-flight records (signal again to exit now)");
        }
    });
    stop
}

/// A registry client when the configuration names one.
pub fn registry(
    config: &streamlake::Config,
) -> anyhow::Result<Option<std::sync::Arc<streamlake::registry::Registry>>> {
    if config.schema_registry.url.is_none() {
        return Ok(None);
    }
    Ok(Some(std::sync::Arc::new(
        streamlake::registry::Registry::new(&config.schema_registry)?,
    )))
}

/// `--metrics-addr` for long-running commands.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at /metrics, and /healthz and /readyz, on this address while
    /// the command runs, e.g. 127.0.0.1:9464
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl MetricsArgs {
    /// Starts the endpoint when `--metrics-addr` is given: `register` adds the command's
    /// metrics; `/readyz` answers 503 while no broker connection is up.
    pub fn serve(
        &self,
        rt: &tokio::runtime::Runtime,
        register: impl FnOnce(&mut streamlake::metrics::Metrics),
        brokers: streamlake::metrics::BrokerMetrics,
    ) -> anyhow::Result<()> {
        rt.block_on(self.start(register, brokers))
    }

    /// [`MetricsArgs::serve`] from async code.
    pub async fn start(
        &self,
        register: impl FnOnce(&mut streamlake::metrics::Metrics),
        brokers: streamlake::metrics::BrokerMetrics,
    ) -> anyhow::Result<()> {
        let Some(addr) = self.metrics_addr else {
            return Ok(());
        };
        let ready: streamlake::metrics::Readiness =
            std::sync::Arc::new(move || match brokers.up_count() {
                Some(0) => Err("no broker connection is up".into()),
                _ => Ok(()),
            });
        serve_metrics(addr, register, ready).await
    }
}

/// Serves `/metrics` (what `register` adds), `/healthz` and `/readyz` (answered by `ready`) on
/// `addr` (the `--metrics-addr` flag) and says where.
pub async fn serve_metrics(
    addr: std::net::SocketAddr,
    register: impl FnOnce(&mut streamlake::metrics::Metrics),
    ready: streamlake::metrics::Readiness,
) -> anyhow::Result<()> {
    let mut metrics = streamlake::metrics::Metrics::new();
    register(&mut metrics);
    let bound = streamlake::metrics::serve(addr, std::sync::Arc::new(metrics), ready)
        .await
        .map_err(|e| anyhow::anyhow!("--metrics-addr {addr}: {e}"))?;
    say!("metrics on http://{bound}/metrics");
    Ok(())
}
