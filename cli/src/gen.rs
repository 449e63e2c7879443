//! `eddy gen`: the generated events of SCENARIOS.md.
//!
//! - `server-logs` (§1): `event_id,account_id,event_type,location_country,event_ts`,
//!   DELIMITED, keyed by `event_id`; `event_ts` in epoch seconds.
//! - `transactions` (§2): `{"user_id": "...", "amount": N, "paid_at": "ISO-8601"}`;
//!   10 fixed users whose leading digit d pays 10*d (0 pays 100).
//!
//! - `bank-transactions` (§3): `{"customer": "...", "transaction_type": "...",
//!   "online_payment_amount": x, "in_store_payment_amount": y, "lat": .., "lon": ..,
//!   "transaction_datetime": "ISO-8601"}` for 200 customers around Belgrade.
//! - `card-payments` (§4): `{"payment_id": "p-1", "card_id": "c-42", "merchant_country":
//!   "NL", "amount": 1.25, "paid_at": "ISO-8601"}`, keyed by `card_id`, for 1,000 cards
//!   (`c-0` .. `c-999`): ordinary payments of 5.00 to 300.00, and about one planted
//!   card-testing attempt per 200 events: 3 to 5 payments under 2.00 on one card, then
//!   one over 500.00 (abroad half the time), interleaved with the other traffic.
//!
//! With `--seed` the events are reproducible; with `--start-ts` event times advance by
//! `--step-ms` per event from that start instead of following the clock. With
//! `--disorder-ms N` events are sent out of event-time order, each at most N ms of event
//! time behind the newest sent before it (so a watermark delay of N makes none late).
//! With `--output FILE` the values go to a file, one per line, instead of Kafka.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::settings::{Settings, FLUSH_TIMEOUT};

/// Event types of SCENARIOS.md §1.
pub const EVENT_TYPES: [&str; 8] =
    ["click", "purchase", "login", "log-out", "delete-account", "create-account", "update-settings", "other"];
/// Country codes of SCENARIOS.md §1.
pub const COUNTRIES: [&str; 15] = ["USA", "IN", "UK", "CA", "AU", "DE", "ES", "FR", "NL", "SG", "RU", "JP", "BR", "CN", "O"];
/// The 10 users of SCENARIOS.md §2; user `d…` pays `10 * d` (0 pays 100).
pub const USERS: [&str; 10] = [
    "0b6a2f4e-user",
    "1c7d3a5f-user",
    "2d8e4b6a-user",
    "3e9f5c7b-user",
    "4fa06d8c-user",
    "5ab17e9d-user",
    "6bc28fae-user",
    "7cd390bf-user",
    "8de4a1c0-user",
    "9ef5b2d1-user",
];

/// Arguments of `eddy gen`.
#[derive(clap::Args, Debug)]
pub struct GenArgs {
    /// What to generate.
    #[arg(value_enum)]
    kind: Kind,
    /// Topic to write to (created with --partitions if missing).
    #[arg(long)]
    topic: Option<String>,
    /// Number of events.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Events per second (unlimited when absent).
    #[arg(long)]
    rate: Option<f64>,
    /// Seed for reproducible events.
    #[arg(long)]
    seed: Option<u64>,
    /// Event time of the first event, epoch seconds (default: now, following the clock).
    #[arg(long)]
    start_ts: Option<i64>,
    /// Event-time step between events with --start-ts, milliseconds.
    #[arg(long, default_value_t = 10)]
    step_ms: i64,
    /// Partitions of the topic if it has to be created.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Send events out of order by up to this much event time (ms).
    #[arg(long, default_value_t = 0)]
    disorder_ms: i64,
    /// Write the values to this file (one per line) instead of a Kafka topic.
    #[arg(long)]
    output: Option<std::path::PathBuf>,
    /// Distinct users of `transactions` (the 10 of SCENARIOS.md by default); user i's id
    /// starts with digit i mod 10, which still sets its amount.
    #[arg(long, default_value_t = 10)]
    users: u32,
    /// Distinct accounts of `server-logs` (ids 0 to this minus one; 9,999 by default, as
    /// the benchmark files have always had).
    #[arg(long, default_value_t = 9999)]
    accounts: u32,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Kind {
    /// Account actions for the fraud pipeline (DELIMITED).
    ServerLogs,
    /// Payments for the revenue pipeline (JSON).
    Transactions,
    /// Card payments for the banking rule (JSON).
    BankTransactions,
    /// Card payments with planted card-testing attempts (JSON).
    CardPayments,
}

/// Countries of `card-payments`' merchants; a card's home is `HOME_COUNTRIES[card % 5]`.
pub const HOME_COUNTRIES: [&str; 5] = ["NL", "DE", "BE", "FR", "ES"];

/// The state of `card-payments`: the payment counter and the rest of a planted attempt.
#[derive(Default)]
struct Planted {
    payments: u64,
    /// Payments of the attempt in progress still to send: (card, amount, country).
    attempt: std::collections::VecDeque<(u32, f64, &'static str)>,
}

impl Planted {
    fn next(&mut self, rng: &mut StdRng) -> (u32, f64, &'static str) {
        if self.attempt.is_empty() && rng.random_range(0..200) == 0 {
            let card = rng.random_range(0..1000u32);
            let home = HOME_COUNTRIES[(card % 5) as usize];
            for _ in 0..rng.random_range(3..=5) {
                self.attempt.push_back((card, f64::from(rng.random_range(50..199u32)) / 100.0, home));
            }
            let abroad = if rng.random_bool(0.5) { "US" } else { home };
            self.attempt.push_back((card, f64::from(rng.random_range(50_100..150_000u32)) / 100.0, abroad));
        }
        // Every other event continues the attempt; the rest is ordinary traffic.
        if !self.attempt.is_empty() && self.payments.is_multiple_of(2) {
            if let Some(p) = self.attempt.pop_front() {
                return p;
            }
        }
        let card = rng.random_range(0..1000u32);
        let country = if rng.random_bool(0.9) { HOME_COUNTRIES[(card % 5) as usize] } else { HOME_COUNTRIES[rng.random_range(0..5)] };
        (card, f64::from(rng.random_range(500..30_000u32)) / 100.0, country)
    }
}

/// Transaction types of the banking scenario.
const TRANSACTION_TYPES: [&str; 6] = ["supermarket", "pharmacy", "fuel", "restaurant", "online-shop", "bakery"];

/// One generated record: key and value.
pub struct Event {
    /// Record key.
    pub key: String,
    /// Record value.
    pub value: String,
}

/// Generates an event of `kind` at `ts_ms` (`users` distinct users for transactions,
/// `accounts` for server logs).
fn event(kind: Kind, rng: &mut StdRng, ts_ms: i64, (users, accounts): (u32, u32), planted: &mut Planted) -> Event {
    match kind {
        Kind::CardPayments => {
            let (card, amount, country) = planted.next(rng);
            planted.payments += 1;
            let value = format!(
                r#"{{"payment_id": "p-{}", "card_id": "c-{card}", "merchant_country": "{country}", "amount": {amount:.2}, "paid_at": "{}"}}"#,
                planted.payments,
                iso8601(ts_ms)
            );
            Event { key: format!("c-{card}"), value }
        }
        Kind::ServerLogs => {
            let mut bytes = [0u8; 16];
            rng.fill_bytes(&mut bytes);
            let id = uuid::Builder::from_random_bytes(bytes).into_uuid().to_string();
            let account = rng.random_range(0..accounts.max(1));
            let event_type = EVENT_TYPES[rng.random_range(0..EVENT_TYPES.len())];
            let country = COUNTRIES[rng.random_range(0..COUNTRIES.len())];
            let value = format!("{id},{account},{event_type},{country},{}", ts_ms.div_euclid(1000));
            Event { key: id, value }
        }
        Kind::Transactions => {
            let (digit, user) = if users <= USERS.len() as u32 {
                let digit = rng.random_range(0..users.max(1) as usize);
                (digit, USERS[digit].to_string())
            } else {
                let i = rng.random_range(0..users);
                ((i % 10) as usize, format!("{}{i:07}-user", i % 10))
            };
            let amount = if digit == 0 { 100 } else { 10 * digit };
            let paid_at = iso8601(ts_ms);
            Event { key: user.to_string(), value: format!(r#"{{"user_id": "{user}", "amount": {amount}, "paid_at": "{paid_at}"}}"#) }
        }
        Kind::BankTransactions => {
            let customer = format!("customer-{:03}", rng.random_range(0..200));
            let kind = TRANSACTION_TYPES[rng.random_range(0..TRANSACTION_TYPES.len())];
            let (online, in_store) = if kind == "online-shop" || rng.random_bool(0.2) {
                (f64::from(rng.random_range(100..20_000u32)) / 100.0, 0.0)
            } else {
                (0.0, f64::from(rng.random_range(100..20_000u32)) / 100.0)
            };
            // Mostly inside the area of the rule (44.57 < lat < 44.91, 20.20 < lon < 20.62).
            let lat = f64::from(rng.random_range(44_400..45_100u32)) / 1000.0;
            let lon = f64::from(rng.random_range(20_000..20_800u32)) / 1000.0;
            let at = iso8601(ts_ms);
            let value = format!(
                r#"{{"customer": "{customer}", "transaction_type": "{kind}", "online_payment_amount": {online}, "in_store_payment_amount": {in_store}, "lat": {lat}, "lon": {lon}, "transaction_datetime": "{at}"}}"#
            );
            Event { key: customer, value }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for epoch milliseconds (civil-from-days, Howard Hinnant).
fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Produces the events and waits until the broker has acknowledged all of them.
pub async fn gen(settings: &Settings, args: GenArgs) -> anyhow::Result<()> {
    let mut rng = match args.seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_rng(&mut rand::rng()),
    };
    if let Some(path) = &args.output {
        return gen_file(&args, &mut rng, path);
    }
    let topic = args.topic.clone().unwrap_or_else(|| match args.kind {
        Kind::ServerLogs => "server-logs".into(),
        Kind::Transactions => "transactions".into(),
        Kind::BankTransactions => "transactions-data".into(),
        Kind::CardPayments => "card-payments".into(),
    });
    let config =
        eddy_connectors::kafka::KafkaConfig { bootstrap_servers: settings.bootstrap_servers.clone(), properties: Default::default() };
    eddy_connectors::kafka::ensure_topic(&config, &topic, args.partitions, 1)
        .await
        .with_context(|| format!("cannot create topic {topic}"))?;
    let producer = settings.producer()?;
    let progress = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = ProgressBar::new(args.count);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, eta {eta})") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    let mut disorder = Disorder::new(args.disorder_ms, args.seed);
    let mut planted = Planted::default();
    for i in 0..args.count {
        if let Some(rate) = args.rate.filter(|r| *r > 0.0) {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
        }
        let ts_ms = event_time(&args, i);
        let e = event(args.kind, &mut rng, ts_ms, (args.users, args.accounts), &mut planted);
        for e in disorder.push(ts_ms, e) {
            send(&producer, &topic, &e, &mut pending).await?;
            progress.inc(1);
        }
    }
    for e in disorder.drain() {
        send(&producer, &topic, &e, &mut pending).await?;
        progress.inc(1);
    }
    for d in pending {
        d.await.context("producer closed")?.map_err(|(e, _)| anyhow::anyhow!("delivery failed: {e}"))?;
    }
    producer.flush(Timeout::After(FLUSH_TIMEOUT)).context("flushing the producer")?;
    progress.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!("produced {} events to {topic} in {secs:.1} s ({:.0} events/s)", args.count, args.count as f64 / secs.max(1e-9));
    Ok(())
}

fn event_time(args: &GenArgs, i: u64) -> i64 {
    match args.start_ts {
        Some(start) => start * 1000 + i as i64 * args.step_ms,
        None => now_ms(),
    }
}

/// Writes the events' values to a file, one per line.
fn gen_file(args: &GenArgs, rng: &mut StdRng, path: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write;
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut disorder = Disorder::new(args.disorder_ms, args.seed);
    let started = Instant::now();
    let mut planted = Planted::default();
    let write = |out: &mut std::io::BufWriter<std::fs::File>, e: Event| -> anyhow::Result<()> {
        out.write_all(e.value.as_bytes())?;
        out.write_all(b"\n")?;
        Ok(())
    };
    for i in 0..args.count {
        let ts_ms = event_time(args, i);
        let e = event(args.kind, rng, ts_ms, (args.users, args.accounts), &mut planted);
        for e in disorder.push(ts_ms, e) {
            write(&mut out, e)?;
        }
    }
    for e in disorder.drain() {
        write(&mut out, e)?;
    }
    out.flush().with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {} events to {} in {:.1} s", args.count, path.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// Reorders events: each is released once the newest event time reaches its own time
/// plus a random delay below `max_ms`, so no event is sent more than `max_ms` of event
/// time behind one sent before it. It draws from its own generator, so the events are
/// the same with and without disorder.
struct Disorder {
    max_ms: i64,
    rng: StdRng,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(i64, u64)>>,
    events: std::collections::HashMap<u64, Event>,
    next: u64,
}

impl Disorder {
    fn new(max_ms: i64, seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s ^ 0x5eed_d150_7de7),
            None => StdRng::from_rng(&mut rand::rng()),
        };
        Disorder { max_ms, rng, heap: Default::default(), events: Default::default(), next: 0 }
    }

    fn push(&mut self, ts_ms: i64, e: Event) -> Vec<Event> {
        if self.max_ms <= 0 {
            return vec![e];
        }
        let release = ts_ms + self.rng.random_range(0..self.max_ms);
        self.heap.push(std::cmp::Reverse((release, self.next)));
        self.events.insert(self.next, e);
        self.next += 1;
        let mut out = Vec::new();
        while let Some(std::cmp::Reverse((at, id))) = self.heap.peek().copied() {
            if at > ts_ms {
                break;
            }
            self.heap.pop();
            out.extend(self.events.remove(&id));
        }
        out
    }

    fn drain(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(std::cmp::Reverse((_, id))) = self.heap.pop() {
            out.extend(self.events.remove(&id));
        }
        out
    }
}

async fn send(
    producer: &FutureProducer,
    topic: &str,
    e: &Event,
    pending: &mut std::collections::VecDeque<rdkafka::producer::DeliveryFuture>,
) -> anyhow::Result<()> {
    loop {
        match producer.send_result(FutureRecord::to(topic).key(&e.key).payload(&e.value)) {
            Ok(d) => {
                pending.push_back(d);
                if pending.len() > 100_000 {
                    if let Some(d) = pending.pop_front() {
                        d.await.context("producer closed")?.map_err(|(e, _)| anyhow::anyhow!("delivery failed: {e}"))?;
                    }
                }
                return Ok(());
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => match pending.pop_front() {
                Some(d) => {
                    d.await.context("producer closed")?.map_err(|(e, _)| anyhow::anyhow!("delivery failed: {e}"))?;
                }
                None => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Err((e, _)) => return Err(anyhow::anyhow!("cannot produce to {topic}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_formats_utc() {
        assert_eq!(iso8601(1_601_736_282_000), "2020-10-03T14:44:42.000Z");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn seeded_events_repeat_and_parse() {
        let mut a = StdRng::seed_from_u64(7);
        let mut b = StdRng::seed_from_u64(7);
        let ea = event(Kind::ServerLogs, &mut a, 1_601_736_282_500, (10, 9999), &mut Planted::default());
        let eb = event(Kind::ServerLogs, &mut b, 1_601_736_282_500, (10, 9999), &mut Planted::default());
        assert_eq!(ea.value, eb.value);
        let fields: Vec<&str> = ea.value.split(',').collect();
        assert_eq!(fields.len(), 5);
        assert_eq!(fields[0], ea.key);
        assert!(fields[1].parse::<u32>().is_ok_and(|a| a < 9999));
        assert!(EVENT_TYPES.contains(&fields[2]) && COUNTRIES.contains(&fields[3]));
        assert_eq!(fields[4], "1601736282");
    }

    #[test]
    fn transactions_pay_ten_times_the_leading_digit() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..50 {
            let e = event(Kind::Transactions, &mut rng, 0, (10, 9999), &mut Planted::default());
            let v: serde_json::Value = serde_json::from_str(&e.value).unwrap_or_default();
            let digit = v["user_id"].as_str().and_then(|u| u.chars().next()).and_then(|c| c.to_digit(10)).unwrap_or(99);
            let want = if digit == 0 { 100 } else { 10 * digit as i64 };
            assert_eq!(v["amount"].as_i64(), Some(want));
        }
    }

    #[test]
    fn card_payments_hold_planted_attempts() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut planted = Planted::default();
        let events: Vec<serde_json::Value> = (0..20_000)
            .map(|i| event(Kind::CardPayments, &mut rng, i * 1000, (10, 9999), &mut planted))
            .map(|e| serde_json::from_str(&e.value).unwrap_or_default())
            .collect();
        assert_eq!(events[0]["payment_id"], "p-1");
        // Per card, the runs of three or more payments under 2.00 followed by one over 500.
        let mut small: std::collections::HashMap<String, u32> = Default::default();
        let mut attempts = 0;
        for e in &events {
            let card = e["card_id"].as_str().unwrap_or_default().to_string();
            let amount = e["amount"].as_f64().unwrap_or_default();
            let run = small.entry(card).or_default();
            if amount < 2.0 {
                *run += 1;
            } else {
                if amount > 500.0 && *run >= 3 {
                    attempts += 1;
                }
                *run = 0;
            }
        }
        assert!((50..=150).contains(&attempts), "{attempts} attempts in 20,000 payments");
    }
}
