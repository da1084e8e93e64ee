//! `streamlake dev`: an embedded cluster to point the other commands at.

use crate::out::say;
use clap::Args;
use std::process::ExitCode;
use streamlake::embedded::EmbeddedCluster;

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Brokers
    #[arg(long, default_value_t = 3)]
    brokers: i32,
    /// Topics to create up front, as NAME or NAME:PARTITIONS (repeatable)
    #[arg(short, long = "topic", value_name = "NAME[:PARTITIONS]")]
    topics: Vec<String>,
}

pub fn run(a: DevArgs) -> anyhow::Result<ExitCode> {
    let cluster = EmbeddedCluster::start(a.brokers)?;
    let replication = a.brokers.min(3);
    for t in &a.topics {
        let (name, partitions) = match t.split_once(':') {
            Some((n, p)) => (
                n,
                p.parse()
                    .map_err(|_| anyhow::anyhow!("--topic {t}: partitions must be a number"))?,
            ),
            None => (t.as_str(), 6),
        };
        cluster.create_topic(name, partitions, replication)?;
        say!("created topic {name} ({partitions} partitions, replication factor {replication})");
    }
    let bootstrap = cluster.bootstrap_servers();
    println!("embedded cluster: {} brokers at {bootstrap}", a.brokers);
    println!("export STREAMLAKE_BOOTSTRAP_SERVERS={bootstrap}");
    say!("data is kept in memory until this process stops; Ctrl-C to stop");
    use std::io::Write;
    std::io::stdout().flush()?;
    let rt = crate::args::runtime()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    })?;
    drop(cluster);
    say!("embedded cluster stopped");
    Ok(ExitCode::SUCCESS)
}
