//! Partitioning by key: which worker of a keyed stage owns a row. The exchange splits
//! rows with it, and a restored keyed state is split with it when the parallelism
//! changed, so both always agree.

use arrow::array::ArrayRef;
use datafusion::common::hash_utils::{create_hashes, RandomState};

use crate::error::Result;

/// The hash state of key routing: fixed, so every router sends a key to the same worker.
const KEY_HASH: RandomState = RandomState::with_seed(0x5eed);

/// The worker (`0..workers`) of each of `rows` rows, by the hash of its key values `keys`
/// (one array per key column, `rows` long; no keys: worker 0): how the exchange splits
/// rows among the workers of a keyed stage, and how a restored keyed state is split
/// when the parallelism changed.
///
/// Errors: a key type DataFusion cannot hash.
pub fn route_by_key(keys: &[ArrayRef], rows: usize, workers: usize) -> Result<Vec<usize>> {
    if workers <= 1 || keys.is_empty() {
        return Ok(vec![0; rows]);
    }
    let mut hashes = vec![0u64; rows];
    create_hashes(keys, &KEY_HASH, &mut hashes)?;
    let n = workers as u64;
    Ok(hashes.iter().map(|h| (h % n) as usize).collect())
}
