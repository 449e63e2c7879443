//! The traits connectors implement (in the `eddy-connectors` crate): the engine defines
//! them and never links a Kafka or PostgreSQL client itself.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;

use crate::catalog::Relation;
use crate::error::Result;
use crate::metrics::QueryMetrics;
use crate::options::DeadLetterTarget;

/// The next offset to read in one topic partition (Kafka's commit convention: last
/// processed offset + 1). As JSON (checkpoint files, `eddy_progress.positions`):
/// `{"topic": t, "partition": p, "offset": next offset}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Next offset to read.
    #[serde(rename = "offset")]
    pub next_offset: i64,
}

/// How far a query's results go: what a sink commits together with the rows of a
/// checkpoint (PostgreSQL: one row of `eddy_progress` in the rows' transaction), and
/// what a restarted query resumes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// The checkpoint (barrier) id; ids keep growing across restarts.
    pub checkpoint_id: u64,
    /// For every source partition read so far, the next offset to read: every record
    /// before it is reflected in the results.
    pub positions: Vec<PartitionOffset>,
    /// The event-time watermark (ms) the results had reached, if any.
    pub watermark: Option<i64>,
}

/// One micro-batch from a source.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    /// Raw records with [`crate::record::raw_schema`].
    pub records: RecordBatch,
    /// Where each partition that contributed records stands after this batch.
    pub positions: Vec<PartitionOffset>,
}

/// What a connector knows about the query it serves.
#[derive(Debug, Clone)]
pub struct QueryContext {
    /// The query id.
    pub query_id: String,
    /// Kafka consumer group of the query's source (`<application id>-<query id>`).
    pub group_id: String,
    /// The query's counters.
    pub metrics: Arc<QueryMetrics>,
    /// Workers that decode and aggregate in parallel: a file source splits its lines
    /// into this many partitions.
    pub parallelism: usize,
    /// The consumer group is new and never commits (a transient push query's): a Kafka
    /// source starts at `auto.offset.reset` without asking the broker for committed
    /// offsets, and fetches with a short wait, for a fast first row.
    pub transient: bool,
    /// Positions to resume from where they are ahead of the consumer group's committed
    /// offsets: the progress the sink committed with its rows (see [`Sink::restored_progress`]).
    pub resume_from: Vec<PartitionOffset>,
    /// Start exactly at `resume_from`, even where the group's committed offsets are
    /// ahead: the query restored operator state taken at those positions.
    pub resume_exact: bool,
    /// The query's own directory under the state directory
    /// (`<state dir>/checkpoints/<consumer group>`), for what a connector keeps between
    /// runs (the Kafka source's last watermark); `None` for a query that keeps nothing
    /// (a push query). Never the working directory.
    pub state_dir: Option<std::path::PathBuf>,
}

impl QueryContext {
    /// The context of query `query_id` reading as consumer group `group_id`: one worker,
    /// a persistent group, no resume positions, no state directory, fresh counters.
    pub fn new(query_id: impl Into<String>, group_id: impl Into<String>) -> Self {
        QueryContext {
            query_id: query_id.into(),
            group_id: group_id.into(),
            metrics: Default::default(),
            parallelism: 1,
            transient: false,
            resume_from: Vec::new(),
            resume_exact: false,
            state_dir: None,
        }
    }
}

/// Reads records in micro-batches.
#[async_trait]
pub trait Source: Send {
    /// The next micro-batch: up to the configured rows, waiting at most the configured
    /// linger. An empty batch means nothing arrived in time; `None` means the source ended.
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>>;

    /// Records that every row before `positions` is durable downstream (Kafka: commits
    /// the consumer group's offsets). `watermark` (ms) is the event-time watermark the
    /// results had reached when those rows were done; it is stored with the offsets
    /// (Kafka: the commit metadata) and handed back by [`Source::restored_watermark`].
    /// May return before the commit is durable (commits stay ordered).
    async fn commit(&mut self, positions: &[PartitionOffset], watermark: Option<i64>) -> Result<()>;

    /// The watermark stored with the offsets this source resumes from, if any: a
    /// restarted query starts from it, so rows of windows that were already emitted are
    /// not counted into a second, partial copy of those windows.
    fn restored_watermark(&self) -> Option<i64> {
        None
    }

    /// Called once when the query stops, after the last commit: waits until every
    /// commit is durable.
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }

    /// The partitions this source reads (Kafka partitions; 0 for a file). Known before
    /// the first record, so a partition that has sent nothing yet holds the watermark
    /// back until its idle timeout.
    fn partitions(&self) -> Vec<i32> {
        vec![0]
    }

    /// Whether the source ends by itself (a file). When it does, the pipeline sends a
    /// final watermark that closes every window.
    fn is_bounded(&self) -> bool {
        false
    }

    /// Per partition that holds records now: the offset after its last record (Kafka's
    /// high watermark), so a reader knows when it has read what was there when it
    /// started (a materialized table's catch-up, as Kafka Streams restores a KTable to the
    /// end offsets it read first). `None`: not known (the reader decides otherwise).
    async fn end_offsets(&mut self) -> Option<Vec<PartitionOffset>> {
        None
    }
}

/// Writes rows.
#[async_trait]
pub trait Sink: Send {
    /// Takes a batch with the sink relation's schema. May buffer.
    async fn write(&mut self, batch: RecordBatch) -> Result<()>;

    /// Makes every row written so far durable (Kafka: acknowledged by the broker;
    /// PostgreSQL: committed).
    async fn flush(&mut self) -> Result<()>;

    /// Called at a checkpoint barrier before the checkpoint's operator state is written:
    /// makes the rows written so far durable where [`Sink::commit`] cannot make them
    /// durable atomically with the checkpoint's progress. The default flushes (Kafka:
    /// every record acknowledged, so the state never assumes a record that a crash could
    /// lose); a sink that commits rows and progress in one transaction (PostgreSQL)
    /// does nothing here.
    async fn pre_commit(&mut self) -> Result<()> {
        self.flush().await
    }

    /// Makes every row written so far durable together with `progress`, atomically
    /// where the sink can (PostgreSQL: the rows and the `eddy_progress` row in one
    /// transaction). Called at each barrier the sink receives and when a watermark
    /// released rows, before the source commits its offsets. The default flushes.
    async fn commit(&mut self, _progress: &Progress) -> Result<()> {
        self.flush().await
    }

    /// The progress this sink committed last for the query, read once before the
    /// query's source is opened; `None` when the sink keeps none (the default).
    async fn restored_progress(&mut self) -> Result<Option<Progress>> {
        Ok(None)
    }

    /// Called once before the first write with the progress the query resumes from
    /// (`None`: from the start): a sink that cannot roll back what it wrote after that
    /// point (Kafka) finds those records and suppresses them when the replay produces
    /// them again. The default does nothing.
    async fn resume(&mut self, _from: Option<&Progress>) -> Result<()> {
        Ok(())
    }
}

/// Reads the rows of a table by key, for a lookup join (Flink's `LookupTableSource`).
///
/// A connection lost while reading is the implementation's to retry, with backoff and
/// the query shown `RETRYING` meanwhile (the join waits, so the source pauses and no row
/// is lost); only errors a retry cannot fix reach the caller.
#[async_trait]
pub trait LookupTable: Send {
    /// The rows of the table whose key columns equal one of the rows of `keys`: one
    /// column per key column, named and typed as in the table's relation, no NULLs, no
    /// two rows alike. Returns rows with the relation's schema (every column
    /// nullable), in any order; a key may have no row or several.
    ///
    /// Errors: the table or a column is missing, a value does not convert to its
    /// declared type, permission denied.
    async fn lookup(&mut self, keys: &RecordBatch) -> Result<RecordBatch>;

    /// The table's rows in this process's memory, when it holds them (a Kafka TABLE
    /// materialized from its topic): the join then reads them in place per micro-batch,
    /// with no read to await and no cache. `None` (the default) for a table read over a
    /// connection.
    fn resident(&self) -> Option<&dyn ResidentTable> {
        None
    }
}

/// A table held in memory, row-encoded by primary key (see [`LookupTable::resident`]).
pub trait ResidentTable: Send + Sync {
    /// The primary key's columns, in the order the keys given to [`Self::rows_of`] are
    /// encoded.
    fn key_columns(&self) -> &[String];

    /// For each of `keys` (Arrow's row format of the key columns, each typed as the
    /// table's) not marked in `skip`, the table's row of that key if it holds one.
    /// Returns the indices into `keys` of the keys found, ascending, and the rows found
    /// as the table's columns (its relation's schema), one row per index.
    ///
    /// Errors: the table cannot be read (its topic failed), or a row does not convert.
    fn rows_of(&self, keys: &arrow::row::Rows, skip: &[bool]) -> Result<(Vec<u32>, Vec<arrow::array::ArrayRef>)>;
}

/// Creates sources and sinks for relations; implemented by `eddy-connectors`.
#[async_trait]
pub trait ConnectorFactory: Send + Sync {
    /// Called when a relation is created: e.g. creates its Kafka topic when it declares
    /// `partitions` and the topic is missing.
    async fn prepare(&self, relation: &Relation) -> Result<()>;

    /// A source reading `relation` for a query.
    async fn source(&self, relation: &Relation, query: &QueryContext) -> Result<Box<dyn Source>>;

    /// A sink writing `relation` for a query (creates the topic or table if missing).
    async fn sink(&self, relation: &Relation, query: &QueryContext) -> Result<Box<dyn Sink>>;

    /// A sink writing raw records ([`crate::record::raw_schema`]: key and value bytes
    /// as read) to `topic` on the cluster of `source`: the late-rows side output.
    async fn raw_sink(&self, source: &Relation, topic: &str, query: &QueryContext) -> Result<Box<dyn Sink>>;

    /// A sink for the records of `source` that do not decode, under
    /// `'value.error.policy'='dead_letter'`: rows with
    /// [`crate::record::dead_letter_schema`], written to `target`.
    ///
    /// Errors: the topic or table cannot be created, or this factory has no such connector.
    async fn dead_letter_sink(&self, source: &Relation, _target: &DeadLetterTarget, _query: &QueryContext) -> Result<Box<dyn Sink>> {
        Err(crate::error::EngineError::Configuration(format!("\"{}\": dead letters are not supported here", source.name)))
    }

    /// A reader of `relation`'s rows by its `key` columns, for a lookup join.
    ///
    /// Errors: the database cannot be reached or refuses (a query starting retries), the
    /// relation's connector cannot be looked up, or its host is not allowed.
    async fn lookup_table(&self, relation: &Relation, _key: &[String], _query: &QueryContext) -> Result<Box<dyn LookupTable>> {
        Err(crate::error::EngineError::Configuration(format!("\"{}\" cannot be looked up here", relation.name)))
    }

    /// The bytes of a local file a statement names (a model's PMML document), read as
    /// the front allows: `eddy server` only under its `--allow-path` directories. The
    /// default reads any path (`eddy run`, the shell).
    ///
    /// Errors: the file cannot be read, or is not allowed.
    async fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        tokio::fs::read(path).await.map_err(|e| crate::error::EngineError::Io { what: "file", path: path.into(), source: e })
    }

    /// The topics of the default Kafka cluster (`SHOW TOPICS`), sorted by name.
    ///
    /// Errors: the cluster cannot be reached, or this factory has none.
    async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        Err(crate::error::EngineError::Configuration("no Kafka cluster is configured".into()))
    }

    /// Deletes the Kafka topic of `relation` (`DROP ... DELETE TOPIC`); a topic that does
    /// not exist is not an error.
    ///
    /// Errors: `relation` is not a Kafka stream, or the broker refuses.
    async fn delete_topic(&self, relation: &Relation) -> Result<()> {
        Err(crate::error::EngineError::statement(format!("\"{}\" has no Kafka topic to delete", relation.name)))
    }
}

/// One Kafka topic, as `SHOW TOPICS` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: usize,
    /// Replicas of each partition (of the first partition).
    pub replicas: usize,
}
