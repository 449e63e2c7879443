//! Flink's `filesystem` connector for local files of CSV or JSON lines.
//!
//! - [`FileSource`] is *bounded*: it reads the file once (a directory: each file in it,
//!   by name, skipping hidden ones as Flink does), in micro-batches of lines
//!   (offset = line number, counted on across a directory's files so that offsets are
//!   one sequence in the input's order; record timestamp = the time of reading), then ends; the
//!   pipeline follows with a final watermark that closes every window, so a file
//!   pipeline runs like a batch job. With a query parallelism of n, micro-batch k is
//!   partition k mod n (Flink's file splits), so n workers decode the file; rows of
//!   equal event time are still ordered by offset alone (the input's order), not by
//!   split, so results do not depend on the parallelism.
//! - [`FileSink`] appends one line per row; `flush` (every barrier) writes the buffered
//!   lines out. When the query starts it empties an existing file under `eddy run` and
//!   the shell, or when the statement says `'sink.truncate'='true'`; under `eddy server`
//!   it appends otherwise (see [`crate::sandbox`]).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use eddy_engine::connector::{PartitionOffset, Sink, Source, SourceBatch};
use eddy_engine::format::{TimestampStyle, ValueEncoder};
use eddy_engine::options::FileOptions;
use eddy_engine::record::raw_schema;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{ConnectorError, Result};

/// Bytes read from the file at a time.
const READ_CHUNK: usize = 4 << 20;

/// Reads a file of lines, or every file of a directory, once.
pub struct FileSource {
    /// The file being read; `None` for an empty directory.
    file: Option<tokio::fs::File>,
    /// The file being read (the records' `topic`).
    path: String,
    /// Files of the directory still to read, in order.
    queue: std::collections::VecDeque<std::path::PathBuf>,
    /// Open without blocking and insist on regular files (sandboxed, see `open_path`).
    regular_only: bool,
    buf: Vec<u8>,
    start: usize,
    eof: bool,
    next_line: i64,
    max_rows: usize,
    splits: i32,
    batches: i64,
    /// The `topic` column (the file's path) of the largest batch so far, sliced for
    /// each batch rather than copied row by row.
    topics: Option<StringArray>,
}

impl FileSource {
    /// Opens the file of `options`.
    ///
    /// Errors: the file cannot be opened (named, with the reason).
    pub async fn open(options: &FileOptions, splits: usize) -> Result<Self> {
        Self::open_path(std::path::Path::new(&options.path), options, splits, false).await
    }

    /// Opens `path` (the resolved path of `options`): a file, or a directory whose
    /// files (not those whose names start with `.` or `_`, Flink's hidden files; not
    /// subdirectories) are read one after another in name order. With `regular_only`
    /// every file must be a regular file, opened without blocking (a FIFO put in its
    /// place after the sandbox checked it cannot stall the query) and its type checked
    /// on the open file, and a directory's files must resolve inside it (a link out of
    /// it is refused).
    ///
    /// Errors: a file cannot be opened or listed, or breaks those rules.
    pub async fn open_path(path: &std::path::Path, options: &FileOptions, splits: usize, regular_only: bool) -> Result<Self> {
        let err = |source| ConnectorError::File { path: options.path.clone(), source };
        let mut queue = std::collections::VecDeque::new();
        if std::fs::metadata(path).map_err(err)?.is_dir() {
            queue.extend(directory_files(path, regular_only)?);
        } else {
            queue.push_back(path.to_path_buf());
        }
        let first = queue.pop_front();
        // An empty directory: a source with nothing to read.
        let file = match &first {
            Some(f) => Some(open_file(f, regular_only).await?),
            None => None,
        };
        Ok(FileSource {
            eof: file.is_none(),
            file,
            path: first.map_or_else(|| options.path.clone(), |f| f.display().to_string()),
            queue,
            regular_only,
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
            next_line: 0,
            max_rows: options.batch_max_rows,
            splits: splits.clamp(1, 1024) as i32,
            batches: 0,
            topics: None,
        })
    }

    /// Reads more of the file into the buffer; false at the end.
    async fn fill(&mut self) -> Result<bool> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let Some(file) = self.file.as_mut() else { return Ok(false) };
        // Read into the spare capacity: no zeroing of a chunk that is overwritten anyway.
        self.buf.reserve(READ_CHUNK);
        let n = file.read_buf(&mut self.buf).await.map_err(|source| ConnectorError::File { path: self.path.clone(), source })?;
        Ok(n > 0)
    }
}

#[async_trait]
impl Source for FileSource {
    async fn next_batch(&mut self) -> eddy_engine::Result<Option<SourceBatch>> {
        loop {
            // Up to `max_rows` complete lines from `buf[start..]`: (start, end, line number).
            let mut lines: Vec<(usize, usize, i64)> = Vec::with_capacity(self.max_rows.min(1 << 16));
            let mut at = self.start;
            let mut line = self.next_line;
            while lines.len() < self.max_rows {
                let Some(nl) = memchr::memchr(b'\n', &self.buf[at..]) else { break };
                let end = at + nl;
                push_line(&self.buf, &mut lines, at, end, line);
                line += 1;
                at = end + 1;
            }
            if lines.len() < self.max_rows && !self.eof {
                // The file goes on: read more and cut again (a chunk holds many batches,
                // so this rescans little).
                if !self.fill().await? {
                    self.eof = true;
                }
                continue;
            }
            if lines.len() < self.max_rows && at < self.buf.len() {
                // The last line has no line break.
                let end = self.buf.len();
                push_line(&self.buf, &mut lines, at, end, line);
                line += 1;
                at = end;
            }
            if lines.is_empty() {
                // This file is done: the directory's next one, its lines numbered on.
                let Some(next) = self.queue.pop_front() else { return Ok(None) };
                self.file = Some(open_file(&next, self.regular_only).await?);
                self.path = next.display().to_string();
                self.topics = None;
                self.buf.clear();
                self.start = 0;
                self.eof = false;
                continue;
            }
            let batch = self.batch(&lines, line)?;
            self.batches += 1;
            self.start = at;
            self.next_line = line;
            return Ok(Some(batch));
        }
    }

    async fn commit(&mut self, _positions: &[PartitionOffset], _watermark: Option<i64>) -> eddy_engine::Result<()> {
        Ok(())
    }

    fn is_bounded(&self) -> bool {
        true
    }

    fn partitions(&self) -> Vec<i32> {
        (0..self.splits).collect()
    }
}

/// Opens one file to read; with `regular_only`, without blocking and only if it is a
/// regular file.
///
/// Errors: it cannot be opened, or is not a regular file when that is required.
async fn open_file(path: &std::path::Path, regular_only: bool) -> Result<tokio::fs::File> {
    let shown = path.display().to_string();
    let err = |source| ConnectorError::File { path: shown.clone(), source };
    if !regular_only {
        // On tokio's blocking pool: the local user's path may be a FIFO that blocks.
        return tokio::fs::File::open(path).await.map_err(err);
    }
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path).map_err(err)?;
    if !file.metadata().map_err(err)?.is_file() {
        return Err(ConnectorError::Config(format!("{shown}: not a regular file")));
    }
    Ok(tokio::fs::File::from_std(file))
}

/// The files of directory `dir` a source reads, in name order: not hidden (`.` or `_`
/// first, as Flink's default file filter), not directories. With `regular_only` each
/// must resolve (links followed) inside `dir` and be a regular file.
///
/// Errors: the directory cannot be listed; a file breaks those rules.
fn directory_files(dir: &std::path::Path, regular_only: bool) -> Result<Vec<std::path::PathBuf>> {
    let shown = dir.display().to_string();
    let err = |source| ConnectorError::File { path: shown.clone(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(['.', '_']) {
            continue;
        }
        let path = entry.path();
        if std::fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false) {
            continue;
        }
        if regular_only {
            let resolved = path.canonicalize().map_err(|source| ConnectorError::File { path: path.display().to_string(), source })?;
            if !resolved.starts_with(dir) || !std::fs::metadata(&resolved).map(|m| m.is_file()).unwrap_or(false) {
                return Err(ConnectorError::NotAllowed(format!(
                    "reading {} is not allowed on this server: it is not a regular file inside {shown} (a link out of it, a FIFO, device or socket)",
                    path.display()
                )));
            }
        }
        files.push(path);
    }
    files.sort();
    Ok(files)
}

/// Adds the line `buf[start..end]` without a trailing `\r`; blank lines are skipped.
fn push_line(buf: &[u8], lines: &mut Vec<(usize, usize, i64)>, start: usize, end: usize, line: i64) {
    let end = if end > start && buf[end - 1] == b'\r' { end - 1 } else { end };
    if end > start {
        lines.push((start, end, line));
    }
}

impl FileSource {
    fn batch(&mut self, lines: &[(usize, usize, i64)], next_line: i64) -> Result<SourceBatch> {
        let n = lines.len();
        let topics = match &self.topics {
            Some(t) if t.len() >= n => t.slice(0, n),
            _ => {
                let t = StringArray::from_iter_values(std::iter::repeat_n(self.path.as_str(), n));
                self.topics = Some(t.clone());
                t
            }
        };
        let mut values = arrow::array::BinaryBuilder::with_capacity(n, lines.iter().map(|&(s, e, _)| e - s).sum());
        for &(s, e, _) in lines {
            values.append_value(&self.buf[s..e]);
        }
        let partition = (self.batches % i64::from(self.splits)) as i32;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let columns: Vec<ArrayRef> = vec![
            arrow::array::new_null_array(&arrow::datatypes::DataType::Binary, n),
            Arc::new(values.finish()),
            Arc::new(topics),
            Arc::new(Int32Array::from(vec![partition; n])),
            Arc::new(Int64Array::from_iter_values(lines.iter().map(|l| l.2))),
            Arc::new(TimestampMillisecondArray::from(vec![now; n])),
        ];
        let records = RecordBatch::try_new(raw_schema(), columns)?;
        let positions = vec![PartitionOffset { topic: self.path.clone(), partition, next_offset: next_line }];
        Ok(SourceBatch { records, positions })
    }
}

/// Writes one line per row to a file.
pub struct FileSink {
    file: tokio::io::BufWriter<tokio::fs::File>,
    path: String,
    encoder: ValueEncoder,
    timestamps: TimestampStyle,
}

impl FileSink {
    /// Creates the file of `options` (and its directory), or truncates it: today's
    /// behaviour for `eddy run` and the shell.
    ///
    /// Errors: the directory or file cannot be created.
    pub async fn create(options: &FileOptions) -> Result<Self> {
        Self::create_path(std::path::Path::new(&options.path), options, options.truncate.unwrap_or(true)).await
    }

    /// Writes the columns named in `ltz` as Flink writes a TIMESTAMP_LTZ (with a `Z`).
    pub fn with_ltz_columns(mut self, ltz: Vec<String>) -> Self {
        self.encoder = self.encoder.with_timestamps(self.timestamps, ltz);
        self
    }

    /// Creates `path` (the resolved path of `options`) and its directory, or opens it:
    /// with `truncate` an existing file is emptied, else rows are appended to it (a
    /// restarted query never empties what it wrote before).
    ///
    /// Errors: the directory or file cannot be created or opened.
    pub async fn create_path(path: &std::path::Path, options: &FileOptions, truncate: bool) -> Result<Self> {
        let err = |source| ConnectorError::File { path: options.path.clone(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(err)?;
        }
        let file =
            tokio::fs::OpenOptions::new().create(true).write(true).truncate(truncate).append(!truncate).open(path).await.map_err(err)?;
        // Flink's filesystem connector: its json and csv formats' dates and times.
        let timestamps = TimestampStyle::of_sink(false, options.timestamp_iso);
        Ok(FileSink {
            file: tokio::io::BufWriter::new(file),
            path: options.path.clone(),
            encoder: ValueEncoder::new(options.format)
                .ignoring_null_fields(options.ignore_null_fields)
                .with_timestamps(timestamps, Vec::new()),
            timestamps,
        })
    }
}

#[async_trait]
impl Sink for FileSink {
    async fn write(&mut self, batch: RecordBatch) -> eddy_engine::Result<()> {
        let err = |source| ConnectorError::File { path: self.path.clone(), source };
        for line in self.encoder.encode(&batch)? {
            self.file.write_all(&line).await.map_err(err)?;
            self.file.write_all(b"\n").await.map_err(err)?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> eddy_engine::Result<()> {
        self.file.flush().await.map_err(|source| ConnectorError::File { path: self.path.clone(), source })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory's files in name order, hidden ones and subdirectories skipped; with
    /// the sandbox's rule, a link out of the directory is refused.
    #[test]
    fn a_directory_is_its_visible_files_in_order() -> Result<()> {
        let root = std::env::temp_dir().join(format!("eddy-file-dir-{}", std::process::id()));
        let dir = root.join("in");
        let io = |source| ConnectorError::File { path: root.display().to_string(), source };
        std::fs::create_dir_all(dir.join("sub")).map_err(io)?;
        for name in ["b.json", "a.json", ".hidden", "_SUCCESS", "sub/c.json"] {
            std::fs::write(dir.join(name), "{}\n").map_err(io)?;
        }
        std::fs::write(root.join("secret"), "s\n").map_err(io)?;
        let dir = dir.canonicalize().map_err(io)?;
        let names: Vec<String> =
            directory_files(&dir, true)?.iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
        assert_eq!(names, ["a.json", "b.json"]);
        let _ = std::os::unix::fs::symlink(root.join("secret"), dir.join("link"));
        let refused = directory_files(&dir, true).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("it is not a regular file inside"), "{refused}");
        assert_eq!(directory_files(&dir, false)?.len(), 3, "outside a sandbox a link is the user's own");
        let _ = std::fs::remove_dir_all(&root);
        Ok(())
    }

    /// Each micro-batch's rows name their own file (the `topic` column is shared between
    /// batches of one file, never carried to the next), with the lines as they are and
    /// offsets counted on across the directory.
    #[tokio::test]
    async fn batches_of_a_directory_name_their_file_and_keep_their_lines() -> eddy_engine::Result<()> {
        use arrow::array::AsArray;
        let dir = std::env::temp_dir().join(format!("eddy-file-batches-{}", std::process::id()));
        let io = |source| ConnectorError::File { path: dir.display().to_string(), source };
        std::fs::create_dir_all(&dir).map_err(io)?;
        std::fs::write(dir.join("a.csv"), "a1\na2\r\na3\n").map_err(io)?;
        std::fs::write(dir.join("b.csv"), "b1\n\nb2\nb3\nb4\nb5").map_err(io)?;
        let options = FileOptions {
            path: dir.display().to_string(),
            format: eddy_engine::options::Format::Json,
            error_policy: eddy_engine::options::ErrorPolicy::Skip,
            dead_letter: None,
            batch_max_rows: 2,
            truncate: None,
            ignore_null_fields: false,
            timestamp_iso: false,
        };
        let mut source = FileSource::open(&options, 1).await?;
        let mut rows = Vec::new();
        while let Some(batch) = source.next_batch().await? {
            let r = &batch.records;
            assert_eq!(r.column(0).null_count(), r.num_rows(), "a file line has no key");
            let values = r.column(1).as_binary::<i32>();
            let topics = r.column(2).as_string::<i32>();
            let offsets = r.column(4).as_primitive::<arrow::datatypes::Int64Type>();
            for i in 0..r.num_rows() {
                let file = std::path::Path::new(topics.value(i)).file_name().map(|n| n.to_string_lossy().into_owned());
                rows.push((
                    r.num_rows(),
                    String::from_utf8_lossy(values.value(i)).into_owned(),
                    file.unwrap_or_default(),
                    offsets.value(i),
                ));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        let expected: Vec<(usize, String, String, i64)> = [
            (2, "a1", "a.csv", 0),
            (2, "a2", "a.csv", 1),
            (1, "a3", "a.csv", 2),
            (2, "b1", "b.csv", 3),
            (2, "b2", "b.csv", 5),
            (2, "b3", "b.csv", 6),
            (2, "b4", "b.csv", 7),
            (1, "b5", "b.csv", 8),
        ]
        .into_iter()
        .map(|(n, v, f, o)| (n, v.to_string(), f.to_string(), o))
        .collect();
        assert_eq!(rows, expected, "(rows in the batch, value, file, offset)");
        Ok(())
    }
}
