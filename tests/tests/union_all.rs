//! UNION ALL of two streams through the broker: each branch reads its own topic in its
//! own format, filters and projects to the union's columns; the rows of both arrive in
//! one output topic, and a restart resumes both topics from one checkpoint (nothing
//! written twice).

use std::collections::BTreeSet;
use std::time::Duration;

use eddy_e2e::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn values(records: Vec<(Option<String>, String)>) -> BTreeSet<String> {
    records.into_iter().map(|(_, v)| serde_json::from_str::<Value>(&v).unwrap_or_default().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_and_app_visits_merge_into_one_stream() {
    let web = unique("web-visits");
    let app = unique("app-visits");
    let out = unique("visits");
    let state = scratch_dir("eddy-union-all").join("state");
    let env = [("EDDY_APPLICATION_ID", unique("union-all"))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(&state, &env);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM web (USER_ID VARCHAR, PAGE VARCHAR) WITH (kafka_topic='{web}', value_format='json', partitions=1);
         CREATE STREAM app (UID VARCHAR, SCREEN VARCHAR, VERSION INT) WITH (kafka_topic='{app}', value_format='delimited', partitions=2);
         CREATE STREAM visits WITH (kafka_topic='{out}', value_format='json') AS
           SELECT USER_ID, PAGE AS PLACE FROM web WHERE PAGE <> 'health'
           UNION ALL
           SELECT UID, CONCAT('app:', SCREEN) FROM app;"
    ));
    assert_eq!(status, 200, "{answer}");
    produce(
        &web,
        &[
            (None, r#"{"USER_ID": "u1", "PAGE": "home"}"#),
            (None, r#"{"USER_ID": "u2", "PAGE": "health"}"#),
            (None, r#"{"USER_ID": "u3", "PAGE": "cart"}"#),
        ],
    )
    .await;
    produce(&app, &[(None, "u4,settings,3"), (None, "u5,home,2")]).await;
    let want: BTreeSet<String> = [
        r#"{"USER_ID":"u1","PLACE":"home"}"#,
        r#"{"USER_ID":"u3","PLACE":"cart"}"#,
        r#"{"USER_ID":"u4","PLACE":"app:settings"}"#,
        r#"{"USER_ID":"u5","PLACE":"app:home"}"#,
    ]
    .iter()
    .map(|s| serde_json::from_str::<Value>(s).unwrap_or_default().to_string())
    .collect();
    assert_eq!(values(consume(&out, 4, WAIT).await), want);

    // Stopped and started again: both topics resume where they were.
    assert!(server.terminate().success());
    let server = Server::start(&state, &env);
    produce(&app, &[(None, "u6,cart,3")]).await;
    let all = consume(&out, 5, WAIT).await;
    assert_eq!(all.len(), 5, "{all:?}\n{}", server.log_text());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(consume(&out, usize::MAX, Duration::from_secs(3)).await.len(), 5);
}
