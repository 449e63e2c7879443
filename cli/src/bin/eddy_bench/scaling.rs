//! Cost as work grows (`--scaling`, no services): the same queries over files whose key
//! counts grow, each run by `eddy run` into a blackhole sink, with events/s, the peak RSS
//! and the state the query reported at its largest (its status file, sampled every 200 ms).
//!
//! - Q2 per user_id (3 s tumbling windows, SUM/COUNT/AVG) with 10, 100,000 and 10,000,000
//!   distinct users. The files step 1 ms per row, so a window holds at most 3,000 rows and
//!   so at most 3,000 groups: more users make more distinct keys to hash and to allocate,
//!   not more open groups. The state per open group is compared with its raw size: the
//!   user_id's bytes plus 32 bytes of aggregate values (SUM f64, COUNT i64, AVG's f64 sum
//!   and u64 count).
//! - Q3 (the fraud MATCH_RECOGNIZE) with 10,000 and 1,000,000 accounts. Its state is the
//!   rows its open searches hold (up to the 5-minute WITHIN), the per-account matchers
//!   and the rows waiting for the watermark: reported per open key (an account holding
//!   rows), beside its raw size (the account_id and its held rows' decoded columns).

use std::path::Path;

use super::{generate, generate_logs, logs_table_for_q3, per_user, report, run_measured, tx_table, FRAUD_ALERTS_TO_BLACKHOLE};

/// Decoded bytes of one server-log row: a 36-byte UUID, INT, event_type (about 7 bytes),
/// country (about 2), BIGINT, and the TIMESTAMP computed from it.
const LOG_ROW_BYTES: f64 = 36.0 + 4.0 + 7.0 + 2.0 + 8.0 + 8.0;
/// SUM (f64), COUNT (i64), AVG (f64 sum and u64 count).
const Q2_VALUE_BYTES: f64 = 32.0;

/// Runs the scaling cases over `events`-row files under `dir` (generated on first use).
///
/// Errors: a file cannot be generated, or a run fails.
pub fn scaling(dir: &Path, events: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    println!("cost as work grows ({events} events per file, blackhole sink)");
    for users in [10u32, 100_000, 10_000_000] {
        let file = match users {
            10 => dir.join(format!("transactions-{events}.json")),
            _ => dir.join(format!("transactions-{events}-{users}-users.json")),
        };
        generate(&file, "transactions", events, users)?;
        let run = run_measured(&per_user(&tx_table(&file)), &dir)?;
        report(&format!("Q2 per user_id, {users} users"), events as usize, run.elapsed);
        // User ids are 13 bytes: the 10 of SCENARIOS.md (`0b6a2f4e-user`), or `d` + 7
        // digits + `-user`.
        let key_bytes = 13.0;
        let per_group = run.peak_state_bytes as f64 / run.open_windows_at_peak.max(1) as f64;
        println!(
            "  peak RSS {:.0} MB; state at its largest {:.1} MB for {} open groups: {:.0} bytes per group, {:.1}x its raw {:.0} bytes",
            run.peak_rss as f64 / 1_048_576.0,
            run.peak_state_bytes as f64 / 1_048_576.0,
            run.open_windows_at_peak,
            per_group,
            per_group / (key_bytes + Q2_VALUE_BYTES),
            key_bytes + Q2_VALUE_BYTES
        );
    }
    for accounts in [10_000u32, 1_000_000] {
        let file = match accounts {
            10_000 => dir.join(format!("server-logs-{events}.csv")),
            _ => dir.join(format!("server-logs-{events}-{accounts}-accounts.csv")),
        };
        // The 10,000-account file is the window benchmark's (ids 0..9,998).
        generate_logs(&file, events, if accounts == 10_000 { 9_999 } else { accounts })?;
        let run = run_measured(&(logs_table_for_q3(&file) + FRAUD_ALERTS_TO_BLACKHOLE), &dir)?;
        report(&format!("Q3 fraud MATCH_RECOGNIZE, {accounts} accounts"), events as usize, run.elapsed);
        // An open key's raw size: its account_id (4 bytes) and the rows it holds.
        let keys = run.match_keys_at_peak.max(1) as f64;
        let raw_per_key = 4.0 + run.held_rows_at_peak as f64 / keys * LOG_ROW_BYTES;
        let per_key = run.peak_state_bytes as f64 / keys;
        println!(
            "  peak RSS {:.0} MB; {} alerts; state at its largest {:.1} MB for {} open keys holding {} rows ({} partial matches): \
             {:.0} bytes per open key, {:.1}x its raw {:.0} bytes (a row is about {:.0} bytes decoded)",
            run.peak_rss as f64 / 1_048_576.0,
            run.rows_out,
            run.peak_state_bytes as f64 / 1_048_576.0,
            run.match_keys_at_peak,
            run.held_rows_at_peak,
            run.partial_matches_at_peak,
            per_key,
            per_key / raw_per_key,
            raw_per_key,
            LOG_ROW_BYTES
        );
    }
    Ok(())
}
