//! Helpers for Eddy's end-to-end tests: they drive the real `eddy` binary against the
//! real broker (`EDDY_BOOTSTRAP_SERVERS`, default 127.0.0.1:9092) and the real
//! PostgreSQL (`EDDY_TEST_POSTGRES`, default postgres://postgres@127.0.0.1:5432),
//! which `scripts/services.sh up` starts. Every test uses its own topics, database and
//! consumer groups, so tests can run in parallel and leave nothing shared behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::ClientConfig;

/// The broker's bootstrap servers.
pub fn bootstrap() -> String {
    std::env::var("EDDY_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A broker of the test's own: a Tansu on a free port with its own data directory, for
/// the tests that stop, restart or heavily load a broker. They never touch the broker
/// of the other tests (nor one another checkout started on 127.0.0.1:9092), and a Tansu
/// slowed by hundreds of thousands of records goes away with the test.
///
/// [`OwnBroker::start`] points this process at it (`EDDY_BOOTSTRAP_SERVERS`, read by
/// [`bootstrap`], [`Server`], [`Eddy`] and `eddy gen`): use it in a test binary of one
/// test, before anything else runs.
pub struct OwnBroker {
    tansu: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<std::process::Child>,
    /// Length of `broker.log` when the running process started.
    log_start: u64,
}

impl OwnBroker {
    /// Starts the broker and makes it this process's bootstrap server. Panics when
    /// Tansu cannot be found or installed (`scripts/services.sh tansu-path`) or does not
    /// listen within 30 s.
    pub fn start(name: &str) -> OwnBroker {
        let out = Command::new(repo_root().join("scripts/services.sh"))
            .arg("tansu-path")
            .output()
            .unwrap_or_else(|e| panic!("scripts/services.sh tansu-path: {e}"));
        assert!(out.status.success(), "scripts/services.sh tansu-path failed: {}", String::from_utf8_lossy(&out.stderr));
        let tansu = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let mut broker = OwnBroker { tansu, dir: scratch_dir(&format!("tansu-{name}")), port: free_port(), child: None, log_start: 0 };
        broker.run();
        std::env::set_var("EDDY_BOOTSTRAP_SERVERS", broker.bootstrap());
        broker
    }

    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker (SIGTERM, then SIGKILL after 10 s); its storage is kept.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The shell's own `kill` (SIGTERM): no procps needed on a new machine.
            let _ = Command::new("sh").args(["-c", &format!("kill {}", child.id())]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the broker still serves requests: its process runs and has not panicked.
    /// Tansu 0.6's SQLite storage panics ("more or less than one row") on a fetch of a
    /// topic it does not know, e.g. from a consumer that outlived a deletion; the
    /// process then keeps listening but answers nothing.
    pub fn healthy(&mut self) -> bool {
        let running = self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        let log = std::fs::read(self.dir.join("broker.log")).unwrap_or_default();
        let since_start = log.get(self.log_start as usize..).unwrap_or_default();
        running && !String::from_utf8_lossy(since_start).contains("panicked at")
    }

    /// Starts the stopped broker again on the same port and storage.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// Stops the broker and starts it again with empty storage, at the same address: a
    /// new cluster, every topic gone (Tansu's SQLite storage can stop answering after a
    /// topic it serves is deleted, and stays so across restarts).
    pub fn restart_empty(&mut self) {
        self.stop();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with("tansu.db") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        self.run();
    }

    fn run(&mut self) {
        let addr = self.bootstrap();
        self.log_start = std::fs::metadata(self.dir.join("broker.log")).map(|m| m.len()).unwrap_or(0);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("broker.log"))
            .unwrap_or_else(|e| panic!("{}: {e}", self.dir.display()));
        let err = log.try_clone().unwrap_or_else(|e| panic!("{e}"));
        // Tansu resolves the SQLite path (and reads .env) in its working directory.
        let child = Command::new(&self.tansu)
            .args(["broker", "--listener-url", &format!("tcp://{addr}"), "--advertised-listener-url", &format!("tcp://{addr}")])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", self.tansu.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "Tansu did not listen on {addr} within 30 s (log: {})",
                self.dir.join("broker.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            // The failing test's evidence: the end of the broker's log, and its directory kept.
            let log = std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- end of {} ---", self.dir.join("broker.log").display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The PostgreSQL server URL without a database.
pub fn postgres_server() -> String {
    std::env::var("EDDY_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The repository root (cargo runs tests with `CARGO_MANIFEST_DIR` set to `tests/`).
pub fn repo_root() -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    PathBuf::from(manifest).join("..")
}

/// The `eddy` binary: `$EDDY_BIN`, else `eddy` in the profile directory of the running
/// test executable (`target/debug/deps/e2e-*` -> `target/debug/eddy`), built by `make test`.
pub fn eddy_bin() -> PathBuf {
    if let Ok(p) = std::env::var("EDDY_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let bin = exe.parent().and_then(Path::parent).map(|d| d.join("eddy")).unwrap_or_else(|| PathBuf::from("eddy"));
    assert!(bin.exists(), "{} is missing: run `cargo build --workspace --bins` first (make test does)", bin.display());
    bin
}

/// A name no other test run uses: `prefix-<random hex>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// A scratch directory under the system temp dir.
pub fn scratch_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// A database of its own for one test, dropped by [`TestDb::drop_db`].
pub struct TestDb {
    /// Database name.
    pub name: String,
    /// URL of the database.
    pub url: String,
}

impl TestDb {
    /// Creates `eddy_test_<random>`.
    pub async fn create() -> TestDb {
        let name = unique("eddy_test").replace('-', "_");
        let admin = connect(&format!("{}/postgres", postgres_server())).await;
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap_or_else(|e| panic!("create database: {e}"));
        TestDb { url: format!("{}/{name}", postgres_server()), name }
    }

    /// A client of the database.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// The single i64 of a query such as `SELECT count(*) ...`; 0 if the table is missing.
    pub async fn scalar(&self, sql: &str) -> i64 {
        match self.client().await.query_one(sql, &[]).await {
            Ok(row) => row.get::<_, i64>(0),
            Err(_) => 0,
        }
    }

    /// Drops the database.
    pub async fn drop_db(self) {
        let admin = connect(&format!("{}/postgres", postgres_server())).await;
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await;
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(connection);
    client
}

/// Produces records and waits for the broker's acknowledgement.
pub async fn produce(topic: &str, records: &[(Option<&str>, &str)]) {
    let records: Vec<(Option<i32>, Option<&str>, &str)> = records.iter().map(|(k, v)| (None, *k, *v)).collect();
    produce_to(topic, &records).await;
}

/// A producer to the test broker that gives up on a record after 30 s.
fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap_or_else(|e| panic!("producer: {e}"))
}

/// Produces `(partition, key, value)` records in order, each to its partition (or by the
/// key's hash when `None`), and waits for every acknowledgement.
pub async fn produce_to(topic: &str, records: &[(Option<i32>, Option<&str>, &str)]) {
    let producer = producer();
    for (partition, key, value) in records {
        let mut record = FutureRecord::<str, str>::to(topic).payload(value);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(p) = partition {
            record = record.partition(*p);
        }
        producer.send(record, Timeout::After(Duration::from_secs(30))).await.unwrap_or_else(|(e, _)| panic!("produce: {e}"));
    }
}

/// Reads `topic` from the beginning until `count` records arrived or `timeout` passed,
/// then a further second to catch extras. Returns `(key, value)` pairs.
pub async fn consume(topic: &str, count: usize, timeout: Duration) -> Vec<(Option<String>, String)> {
    consume_bytes(topic, count, timeout)
        .await
        .into_iter()
        .map(|(k, v)| (k.map(|k| String::from_utf8_lossy(&k).into_owned()), String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

/// [`consume`] with the key and value bytes as written.
pub async fn consume_bytes(topic: &str, count: usize, timeout: Duration) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    consume_timestamped(topic, count, timeout).await.into_iter().map(|(k, v, _)| (k, v)).collect()
}

/// [`consume_bytes`] with each record's timestamp (ms; `None` when it has none).
pub async fn consume_timestamped(topic: &str, count: usize, timeout: Duration) -> Vec<(Option<Vec<u8>>, Vec<u8>, Option<i64>)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("eddy-test-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap_or_else(|e| panic!("consumer: {e}"));
    consumer.subscribe(&[topic]).unwrap_or_else(|e| panic!("subscribe: {e}"));
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut extra_deadline = None;
    loop {
        let until = extra_deadline.unwrap_or(deadline);
        let Some(left) = until.checked_duration_since(Instant::now()) else { break };
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => {
                out.push((m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec).unwrap_or_default(), m.timestamp().to_millis()))
            }
            Ok(Err(e)) => eprintln!("consume {topic}: {e}"),
            Err(_) => break,
        }
        if out.len() >= count && extra_deadline.is_none() {
            extra_deadline = Some(Instant::now() + Duration::from_secs(1));
        }
    }
    out
}

/// Produces `(key bytes, value)` records and waits for every acknowledgement.
pub async fn produce_bytes(topic: &str, records: &[(Option<&[u8]>, &str)]) {
    let records: Vec<TimedRecord> = records.iter().map(|(k, v)| (*k, *v, None)).collect();
    produce_timestamped(topic, &records).await;
}

/// Produces `(key, value)` records where a `None` value is a tombstone (a TABLE's
/// delete), and waits for every acknowledgement.
pub async fn produce_changelog(topic: &str, records: &[(&str, Option<&str>)]) {
    let records: Vec<(&str, Option<&str>, Option<i64>)> = records.iter().map(|(k, v)| (*k, *v, None)).collect();
    produce_changelog_at(topic, &records).await;
}

/// [`produce_changelog`] with each record's timestamp (ms; `None`: the producer's clock).
pub async fn produce_changelog_at(topic: &str, records: &[(&str, Option<&str>, Option<i64>)]) {
    let producer = producer();
    for (key, value, timestamp) in records {
        let mut record = FutureRecord::<str, str>::to(topic).key(key);
        if let Some(v) = value {
            record = record.payload(v);
        }
        if let Some(t) = timestamp {
            record = record.timestamp(*t);
        }
        producer.send(record, Timeout::After(Duration::from_secs(30))).await.unwrap_or_else(|(e, _)| panic!("produce: {e}"));
    }
}

/// A record to produce: key bytes, value, timestamp (ms; `None`: the producer's clock).
pub type TimedRecord<'a> = (Option<&'a [u8]>, &'a str, Option<i64>);

/// Produces [`TimedRecord`]s in order and waits for every acknowledgement.
pub async fn produce_timestamped(topic: &str, records: &[TimedRecord<'_>]) {
    let producer = producer();
    for (key, value, timestamp) in records {
        let mut record = FutureRecord::<[u8], str>::to(topic).payload(value);
        if let Some(k) = key {
            record = record.key(*k);
        }
        if let Some(t) = timestamp {
            record = record.timestamp(*t);
        }
        producer.send(record, Timeout::After(Duration::from_secs(30))).await.unwrap_or_else(|(e, _)| panic!("produce: {e}"));
    }
}

/// Records in `topic` so far (the sum of its partitions' high watermarks), from the
/// broker's metadata and offsets: no consumer group to join, so it answers as soon as
/// the broker does. 0 while the topic does not exist.
pub fn records_in(topic: &str) -> i64 {
    let Ok(consumer) = ClientConfig::new().set("bootstrap.servers", bootstrap()).create::<rdkafka::consumer::BaseConsumer>() else {
        return 0;
    };
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else { return 0 };
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    partitions.iter().filter_map(|&p| consumer.fetch_watermarks(topic, p, Duration::from_secs(5)).ok()).map(|(_, high)| high.max(0)).sum()
}

/// Waits until `check` returns true, polling every 200 ms; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A running `eddy` process with its log and status file.
pub struct Eddy {
    child: Child,
    /// Combined standard output and error.
    pub log: PathBuf,
    /// The `--status-file` of `eddy run`.
    pub status_file: PathBuf,
}

impl Eddy {
    /// Starts `eddy run --status-file <dir>/status.json <paths>` with `envs`.
    pub fn run(dir: &Path, paths: &[&Path], envs: &[(&str, &str)]) -> Eddy {
        let log = dir.join(format!("eddy-{:08x}.log", rand::random::<u32>()));
        let status_file = dir.join("status.json");
        let _ = std::fs::remove_file(&status_file);
        let out = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let err = out.try_clone().unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new(eddy_bin());
        cmd.arg("run").arg("--status-file").arg(&status_file).args(paths).current_dir(repo_root());
        cmd.env("EDDY_BOOTSTRAP_SERVERS", bootstrap()).env("EDDY_LOG", "info");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn().unwrap_or_else(|e| panic!("spawn eddy: {e}"));
        Eddy { child, log, status_file }
    }

    /// The first query's counter `name` from the status file (0 before it exists).
    pub fn counter(&self, name: &str) -> u64 {
        std::fs::read_to_string(&self.status_file)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["queries"][0][name].as_u64())
            .unwrap_or(0)
    }

    /// Counter `name` of the query `id` from the status file (0 before it exists).
    pub fn query_counter(&self, id: &str, name: &str) -> u64 {
        std::fs::read_to_string(&self.status_file)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["queries"].as_array()?.iter().find(|q| q["id"] == id)?[name].as_u64())
            .unwrap_or(0)
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The queries of the status file (`[]` before it exists).
    pub fn status_queries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.status_file)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["queries"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then waits up to 60 s for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("eddy did not stop within 60 s after SIGTERM; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, no chance to flush or commit.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Eddy {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `eddy gen server-logs` into `topic` (created with 4 partitions).
pub fn gen_server_logs(topic: &str, count: u64, seed: u64) {
    let status = Command::new(eddy_bin())
        .args(["gen", "server-logs", "--topic", topic, "--count", &count.to_string(), "--seed", &seed.to_string()])
        .args(["--start-ts", "1601736282"])
        .env("EDDY_BOOTSTRAP_SERVERS", bootstrap())
        .status()
        .unwrap_or_else(|e| panic!("eddy gen: {e}"));
    assert!(status.success(), "eddy gen failed: {status}");
}

/// Runs the file-driven case `tests/<suite>/<name>/`: `query.sql` by `eddy run` over
/// bounded file sources, with `${CASES}` the suite directory, `${OUT}` the output file
/// and `${PARALLELISM}` the workers. Checks the exit status and every `name=value` line
/// of `expected.counters` against the query's status; returns the output file's text.
pub fn run_file_case(suite: &str, name: &str, parallelism: usize) -> String {
    let cases = repo_root().join("tests").join(suite);
    let dir = cases.join(name);
    let scratch = scratch_dir(&format!("{suite}-{name}"));
    let out = scratch.join("out.csv");
    let status = scratch.join("status.json");
    let result = Command::new(eddy_bin())
        .arg("run")
        .arg(dir.join("query.sql"))
        .arg("--status-file")
        .arg(&status)
        .arg("--application-id")
        .arg(format!("{suite}-test-{name}"))
        .env("CASES", &cases)
        .env("OUT", &out)
        .env("PARALLELISM", parallelism.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run eddy: {e}"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{name}: eddy run failed ({}):\n{stderr}", result.status);
    let got = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{name}: {}: {e}\n{stderr}", out.display()));
    let status: serde_json::Value = serde_json::from_str(&read_file(&status)).unwrap_or_else(|e| panic!("{name}: status: {e}"));
    for line in read_file(&dir.join("expected.counters")).lines().filter(|l| !l.trim().is_empty()) {
        let (counter, value) = line.split_once('=').unwrap_or_else(|| panic!("{name}: bad counter line {line}"));
        let got = status["queries"][0][counter].as_u64();
        assert_eq!(got, value.trim().parse::<u64>().ok(), "{name}: counter {counter}");
    }
    let _ = std::fs::remove_dir_all(&scratch);
    got
}

/// A file's text; panics with the path when it cannot be read.
pub fn read_file(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A running `eddy server` on a free port, with its own state directory.
pub struct Server {
    child: Child,
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its `--state-dir`.
    pub state_dir: PathBuf,
    /// Combined standard output and error.
    pub log: PathBuf,
}

/// A TCP port nobody listens on now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"))
}

fn http() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(120))).build().into()
}

impl Server {
    /// Starts `eddy server --state-dir <state_dir>` on a free port with `envs`, and waits
    /// (up to 60 s) until `/healthcheck` answers.
    pub fn start(state_dir: &Path, envs: &[(&str, &str)]) -> Server {
        Server::start_with(state_dir, envs, &[])
    }

    /// [`Server::start`] with extra arguments; `/healthcheck` needs no credentials.
    pub fn start_with(state_dir: &Path, envs: &[(&str, &str)], args: &[&str]) -> Server {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let log = state_dir.with_extension(format!("{:08x}.log", rand::random::<u32>()));
        let out = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let err = out.try_clone().unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new(eddy_bin());
        cmd.args(["server", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--state-dir")
            .arg(state_dir)
            .args(args)
            .current_dir(repo_root());
        cmd.env("EDDY_BOOTSTRAP_SERVERS", bootstrap()).env("EDDY_LOG", "info");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn().unwrap_or_else(|e| panic!("spawn eddy server: {e}"));
        let mut server = Server { child, url, state_dir: state_dir.to_path_buf(), log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http().get(&format!("{}/healthcheck", server.url)).call() {
                if r.status().as_u16() == 200 {
                    break;
                }
            }
            assert!(matches!(server.child.try_wait(), Ok(None)), "eddy server exited:\n{}", server.log_text());
            assert!(Instant::now() < deadline, "eddy server did not come up:\n{}", server.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// POSTs `body` (JSON) to `path`; returns the status and the body text.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> (u16, String) {
        let mut r = http().post(&format!("{}{path}", self.url)).send_json(body).unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap_or_else(|e| panic!("POST {path} body: {e}")))
    }

    /// GETs `path`; returns the status and the body text.
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut r = http().get(&format!("{}{path}", self.url)).call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap_or_else(|e| panic!("GET {path} body: {e}")))
    }

    /// `POST /ksql` with `sql`; returns the status and the parsed answer.
    pub fn ksql(&self, sql: &str) -> (u16, serde_json::Value) {
        let (status, text) = self.post("/ksql", &serde_json::json!({"ksql": sql, "streamsProperties": {}}));
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("/ksql answered non-JSON ({e}): {text}")))
    }

    /// `SHOW QUERIES` as `(id, type, state, stats)` tuples.
    pub fn queries(&self) -> Vec<(String, String, String, serde_json::Value)> {
        let (status, v) = self.ksql("SHOW QUERIES;");
        assert_eq!(status, 200, "{v}");
        v[0]["queries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|q| {
                (
                    q["id"].as_str().unwrap_or_default().to_string(),
                    q["queryType"].as_str().unwrap_or_default().to_string(),
                    q["state"].as_str().unwrap_or_default().to_string(),
                    q["stats"].clone(),
                )
            })
            .collect()
    }

    /// Whether the server process is still alive; panics with its log when it died
    /// of a signal (a crash), so the failure shows why.
    pub fn alive(&mut self) -> bool {
        match self.child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => panic!("eddy server exited ({status}):\n{}", self.log_text()),
            Err(e) => panic!("cannot check eddy server: {e}"),
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The resident set size of the server process now (bytes), from /proc.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// SIGKILL, no chance to flush, commit or close the log.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().unwrap_or_else(|e| panic!("wait: {e}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
