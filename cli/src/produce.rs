//! `eddy produce`: one record per given value (or per line of standard input).

use std::io::BufRead;

use anyhow::Context;
use rdkafka::producer::{FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::settings::{Settings, FLUSH_TIMEOUT};

/// Arguments of `eddy produce`.
#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    /// Topic to write to (must exist).
    #[arg(long)]
    topic: String,
    /// Record key for every value.
    #[arg(long)]
    key: Option<String>,
    /// Values, one record each; without any, each line of standard input is one record.
    values: Vec<String>,
}

/// Produces the values and waits until the broker has acknowledged them.
pub async fn produce(settings: &Settings, args: ProduceArgs) -> anyhow::Result<()> {
    let producer = settings.producer()?;
    let values: Vec<String> = if args.values.is_empty() {
        std::io::stdin().lock().lines().collect::<Result<_, _>>().context("reading standard input")?
    } else {
        args.values
    };
    let mut deliveries = Vec::with_capacity(values.len());
    for value in &values {
        let mut record = FutureRecord::<str, str>::to(&args.topic).payload(value);
        if let Some(k) = &args.key {
            record = record.key(k);
        }
        deliveries.push(producer.send(record, Timeout::After(FLUSH_TIMEOUT)));
    }
    for d in futures::future::join_all(deliveries).await {
        d.map_err(|(e, _)| anyhow::anyhow!("delivery to {} failed: {e}", args.topic))?;
    }
    producer.flush(Timeout::After(FLUSH_TIMEOUT)).context("flushing the producer")?;
    eprintln!("produced {} records to {}", values.len(), args.topic);
    Ok(())
}
