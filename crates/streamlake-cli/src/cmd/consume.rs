//! `streamlake consume`: records out to stdout, offsets committed on the way out.

use crate::args::{print_notes, runtime, KafkaArgs};
use crate::out::say;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use streamlake::consumer::RebalanceEvent;
use streamlake::io::{format_record_with, PrintFormat};
use streamlake::serdes::{Deserializer, Format};
use streamlake::{Consumer, ConsumerOptions, Received, StartFrom};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Print {
    /// The value, one per line
    Value,
    /// One JSON object per record: topic, partition, offset, timestamp, key, value, headers
    Json,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    metrics: crate::args::MetricsArgs,
    /// Topic to read
    #[arg(short, long)]
    topic: String,
    /// Join this consumer group (partitions are balanced, offsets committed)
    #[arg(short, long, conflicts_with = "partitions")]
    group: Option<String>,
    /// Read only these partitions, without a group (repeatable; default: all)
    #[arg(short, long = "partition", value_name = "N")]
    partitions: Vec<i32>,
    /// Start: beginning, end, an offset, -N (N before the end), @<ms>, or an RFC 3339 time.
    /// With --group only beginning or end, for partitions the group has no offset for
    #[arg(long, value_name = "POSITION", allow_hyphen_values = true)]
    from: Option<StartFrom>,
    /// Stop after this many records
    #[arg(short = 'n', long)]
    count: Option<u64>,
    /// Stop once every partition has been read to its end
    #[arg(short = 'e', long)]
    exit_at_end: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Print::Value)]
    print: Print,
    /// Value format: bytes (as stored), string, json, or through the schema registry avro,
    /// protobuf or json-schema (decoded to JSON with the writer's schema)
    #[arg(long, default_value = "bytes", value_name = "FORMAT")]
    value_format: Format,
    /// Key format, as for --value-format
    #[arg(long, default_value = "bytes", value_name = "FORMAT")]
    key_format: Format,
}

pub fn run(a: ConsumeArgs) -> anyhow::Result<ExitCode> {
    let mut loader = a.kafka.loader()?;
    if let Some(g) = &a.group {
        loader = loader.flag("consumer.group_id", g.as_str(), "--group");
        match a.from {
            None => {}
            Some(StartFrom::Beginning) => loader = loader.flag("consumer.auto_offset_reset", "earliest", "--from"),
            Some(StartFrom::End) => loader = loader.flag("consumer.auto_offset_reset", "latest", "--from"),
            Some(_) => anyhow::bail!(
                "--from with --group takes beginning or end (where the group has no committed offset); use --partition to start at an offset or a time"
            ),
        }
    }
    let loaded = loader.load()?;
    print_notes(&loaded);
    let print = match a.print {
        Print::Value => PrintFormat::Value,
        Print::Json => PrintFormat::Json,
    };
    let hook: streamlake::consumer::RebalanceHook = Arc::new(|e: &RebalanceEvent| match e {
        RebalanceEvent::Assigned(p) => tracing::info!("assigned {} partition(s)", p.len()),
        RebalanceEvent::Revoked(p) => tracing::info!("revoked {} partition(s)", p.len()),
        RebalanceEvent::Failed(e) => say!("rebalance failed: {e}"),
    });
    let registry = crate::args::registry(&loaded.config)?;
    let deserializer_for = |format: Format| -> anyhow::Result<Option<Deserializer>> {
        Ok(match format {
            Format::Bytes => None,
            f => Some(Deserializer::new(f, registry.clone())?),
        })
    };
    let (key_de, value_de) = (
        deserializer_for(a.key_format)?,
        deserializer_for(a.value_format)?,
    );
    let rt = runtime()?;
    let _in_runtime = rt.enter();
    let consumer_metrics = streamlake::metrics::ConsumerMetrics::default();
    let consumer = Consumer::new(
        &loaded.config,
        ConsumerOptions {
            report_end: a.exit_at_end,
            on_rebalance: Some(hook),
            metrics: Some(consumer_metrics.clone()),
        },
    )?;
    a.metrics.serve(
        &rt,
        |m| consumer_metrics.register(m),
        consumer_metrics.brokers.clone(),
    )?;
    if a.group.is_some() {
        consumer.subscribe(&[&a.topic])?;
    } else {
        let parts = (!a.partitions.is_empty()).then_some(a.partitions.as_slice());
        consumer.assign(&a.topic, parts, a.from.unwrap_or(StartFrom::Beginning))?;
    }

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut buf = Vec::with_capacity(4096);
    let mut count = 0u64;
    let mut undecodable = 0u64;
    let result: anyhow::Result<()> = rt.block_on(async {
        // Created once, before the loop: signals arriving between polls are kept, not lost.
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            if a.count.is_some_and(|n| count >= n) {
                return Ok(());
            }
            let received = tokio::select! {
                r = consumer.recv() => r?,
                _ = int.recv() => return Ok(()),
                _ = term.recv() => return Ok(()),
            };
            match received {
                Received::Record(r) => {
                    let key = decode(&key_de, r.key.as_deref(), "key", &r, &mut undecodable).await;
                    let value =
                        decode(&value_de, r.value.as_deref(), "value", &r, &mut undecodable).await;
                    buf.clear();
                    format_record_with(&r, key.as_ref(), value.as_ref(), print, &mut buf);
                    out.write_all(&buf)?;
                    out.flush()?;
                    count += 1;
                }
                Received::End => return Ok(()),
            }
        }
    });
    out.flush()?;
    drop(out);
    // Commit what was printed and leave the group, whatever ended the loop.
    let closed = consumer.close();
    say!("consumed {count} record(s) from {}", a.topic);
    result?;
    closed?;
    if undecodable > 0 {
        say!("{undecodable} key(s) or value(s) could not be decoded (printed as stored)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Decodes a key or value; an undecodable one is reported (and printed as stored), never
/// skipped silently.
async fn decode(
    de: &Option<Deserializer>,
    bytes: Option<&[u8]>,
    what: &str,
    r: &streamlake::ConsumedRecord,
    undecodable: &mut u64,
) -> Option<serde_json::Value> {
    let (de, bytes) = (de.as_ref()?, bytes?);
    match de.deserialize(bytes).await {
        Ok(v) => Some(v),
        Err(e) => {
            say!(
                "error: {}/{}@{}: cannot decode {what}: {e}",
                r.topic,
                r.partition,
                r.offset
            );
            *undecodable += 1;
            None
        }
    }
}
