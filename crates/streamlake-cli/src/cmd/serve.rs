//! `streamlake serve`: the HTTP ingestion gateway.

use crate::args::{print_notes, runtime};
use crate::out::say;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use streamlake::config::ConfigLoader;
use streamlake::gateway::{app, serve, Gateway, GatewayConfig};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Gateway config (YAML): listen, producer_service, datasets, and an optional `kafka:` section
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Bootstrap servers, overriding the file [env: STREAMLAKE_BOOTSTRAP_SERVERS]
    #[arg(short = 'b', long, value_name = "SERVERS")]
    bootstrap_servers: Option<String>,
    /// Address to listen on, overriding the file
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Schema Registry URL(s) for datasets in a registry format, overriding the file
    /// [env: STREAMLAKE_SCHEMA_REGISTRY_URL]
    #[arg(long, value_name = "URL")]
    schema_registry: Option<String>,
}

pub fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let gw_config = GatewayConfig::from_file(&a.config).map_err(anyhow::Error::msg)?;
    let mut loader = ConfigLoader::new();
    if let Some(section) = gw_config.kafka.clone() {
        loader = loader.file_section(&a.config, section);
    }
    loader = loader.process_env();
    if let Some(b) = &a.bootstrap_servers {
        loader = loader.flag("bootstrap_servers", b.as_str(), "--bootstrap-servers");
    }
    if let Some(url) = &a.schema_registry {
        loader = loader.flag("schema_registry.url", url.as_str(), "--schema-registry");
    }
    let loaded = loader.load()?;
    print_notes(&loaded);
    let rt = runtime()?;
    let _in_runtime = rt.enter();
    let gateway = Arc::new(rt.block_on(Gateway::new(&gw_config, &loaded.config))?);
    let listen = a.listen.unwrap_or_else(|| gw_config.listen.clone());
    let delivery_timeout = Duration::from_millis(loaded.config.producer.delivery_timeout_ms);
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        say!(
            "listening on http://{}  (datasets: {})",
            listener.local_addr()?,
            gw_config
                .datasets
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("signal handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            say!("stopping: no new requests; finishing those in flight");
        };
        // Requests in flight finish (each waits for its acknowledgements) before this returns,
        // or the shutdown deadline closes their connections (their events still get outcomes).
        let served = serve(
            listener,
            app(Arc::clone(&gateway)),
            &gw_config.http,
            shutdown,
        )
        .await;
        if served.dropped_connections > 0 {
            say!(
                "shutdown deadline passed: {} connection(s) closed with requests unfinished",
                served.dropped_connections
            );
        }
        anyhow::Ok(())
    })?;
    let report = gateway.close(delivery_timeout + Duration::from_secs(5));
    say!(
        "stopped: {} event(s) accepted, {} dead-lettered, {} failed (retriable), {} rejected (permanent); {} record(s) undelivered at close",
        report.accepted,
        report.dead_lettered,
        report.failed,
        report.rejected,
        report.producer.purged
    );
    Ok(ExitCode::SUCCESS)
}
