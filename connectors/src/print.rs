//! `print` (rows to standard output as a table) and `blackhole` (rows discarded) sinks.

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use eddy_engine::connector::Sink;

use crate::error::ConnectorError;

/// Prints each batch as an aligned table.
pub struct PrintSink;

#[async_trait]
impl Sink for PrintSink {
    async fn write(&mut self, batch: RecordBatch) -> eddy_engine::Result<()> {
        let table = arrow::util::pretty::pretty_format_batches(&[batch]).map_err(ConnectorError::from)?;
        println!("{table}");
        Ok(())
    }

    async fn flush(&mut self) -> eddy_engine::Result<()> {
        Ok(())
    }
}

/// Discards every row (for benchmarks).
pub struct BlackholeSink;

#[async_trait]
impl Sink for BlackholeSink {
    async fn write(&mut self, _batch: RecordBatch) -> eddy_engine::Result<()> {
        Ok(())
    }

    async fn flush(&mut self) -> eddy_engine::Result<()> {
        Ok(())
    }
}
