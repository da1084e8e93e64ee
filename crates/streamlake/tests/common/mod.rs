//! Helpers shared by the real-broker test binaries.

#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;
use streamlake::{Config, ConsumedRecord, Consumer, ConsumerOptions, Received, StartFrom};

/// At least `n` records of `topic` (all it holds once `n` are in).
pub async fn read_on(bootstrap: &str, topic: &str, n: usize) -> Vec<ConsumedRecord> {
    let consumer = Consumer::new(
        &Config::with_bootstrap(bootstrap),
        ConsumerOptions {
            report_end: true,
            ..Default::default()
        },
    )
    .unwrap();
    consumer.assign(topic, None, StartFrom::Beginning).unwrap();
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap()
            .unwrap()
        {
            Received::Record(r) => out.push(r),
            Received::End if out.len() >= n => break,
            Received::End => {}
        }
    }
    out
}
