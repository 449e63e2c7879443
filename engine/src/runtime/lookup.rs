//! The lookup join's stage: a task between the operators before it (decode ..
//! watermark) and those after it (filter .. project), because reading the table is
//! asynchronous and an [`crate::operator::Operator`] is not. Per micro-batch it asks the
//! table once for the keys its cache lacks ([`LookupJoin`]); watermarks, barriers and
//! side outputs pass in order. While the table is unreachable the read waits (the
//! connector retries and shows the query RETRYING), the bounded channels stop the
//! source, and nothing is lost.

use std::time::Instant;

use super::exchange::{Downstream, Inputs};
use crate::connector::LookupTable;
use crate::error::Result;
use crate::operator::Message;
use crate::operators::LookupJoin;

/// Runs the join until its input ends.
///
/// Errors: the table cannot be read (an error a retry cannot fix), a key or the ON
/// condition fails on a row, or the next stage is gone.
pub(super) async fn run_lookup(mut join: LookupJoin, mut table: Box<dyn LookupTable>, mut input: Inputs, out: Downstream) -> Result<()> {
    // A table in memory encoding keys in the ON clause's order is read in place.
    let in_place = table.resident().is_some_and(|r| r.key_columns().iter().map(String::as_str).eq(join.table_keys()));
    while let Some(message) = input.recv().await {
        match message {
            Message::Batch(batch) => {
                if let Some(resident) = table.resident().filter(|_| in_place) {
                    let joined = join.join_resident(batch, resident).map_err(|e| e.in_operator("lookup-join"))?;
                    if joined.num_rows() > 0 {
                        out.send(Message::Batch(joined)).await?;
                    }
                    continue;
                }
                let pending = join.keys_to_read(batch, Instant::now()).map_err(|e| e.in_operator("lookup-join"))?;
                let read = match &pending.to_read {
                    Some(keys) => Some(table.lookup(keys).await.map_err(|e| e.in_operator("lookup-join"))?),
                    None => None,
                };
                let joined = join.join(pending, read, Instant::now()).map_err(|e| e.in_operator("lookup-join"))?;
                if joined.num_rows() > 0 {
                    out.send(Message::Batch(joined)).await?;
                }
            }
            Message::End => {
                out.send(Message::End).await?;
                break;
            }
            other => out.send(other).await?,
        }
    }
    Ok(())
}
