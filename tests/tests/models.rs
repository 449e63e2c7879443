//! Models through `eddy server`: CREATE MODEL reads its PMML file only inside
//! `--allow-path`, refuses what it cannot evaluate or what does not fit INPUT and OUTPUT
//! with exact messages, is listed and described, scores a stream through ML_PREDICT into
//! Kafka, cannot be dropped while a query scores with it, and survives a restart from
//! the command log, unless its file changed (then it is not restored, and says why).

use std::time::Duration;

use eddy_e2e::*;

const MODEL: &str =
    "INPUT (small_count DOUBLE, ratio DOUBLE, age_days DOUBLE, is_foreign DOUBLE, channel VARCHAR) OUTPUT (probability DOUBLE)";

#[tokio::test(flavor = "multi_thread")]
async fn models_are_created_checked_used_and_restored() {
    let dir = scratch_dir("eddy-models");
    let models = dir.join("models");
    std::fs::create_dir_all(&models).unwrap_or_else(|e| panic!("{e}"));
    let good = models.join("card_fraud.pmml");
    std::fs::copy(repo_root().join("tests/models/logistic_regression.pmml"), &good).unwrap_or_else(|e| panic!("{e}"));
    let neural = models.join("neural.pmml");
    std::fs::write(
        &neural,
        "<PMML version=\"4.4\" xmlns=\"http://www.dmg.org/PMML-4_4\">\n<DataDictionary>\n<DataField name=\"x\" optype=\"continuous\" dataType=\"double\"/>\n</DataDictionary>\n<NeuralNetwork functionName=\"regression\"/>\n</PMML>\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let state = dir.join("state");
    let app = unique("models");
    let allow = models.display().to_string();
    let args = ["--allow-path", allow.as_str()];
    let server = Server::start_with(&state, &[("EDDY_APPLICATION_ID", &app)], &args);
    let create = |path: &std::path::Path, spec: &str| {
        format!("CREATE MODEL card_fraud {spec} WITH ('provider' = 'pmml', 'path' = '{}');", path.display())
    };
    let refused = |sql: String| {
        let (status, answer) = server.ksql(&sql);
        assert_eq!(status, 400, "{answer}");
        answer["primaryMessage"].as_str().unwrap_or_default().to_string()
    };

    // Outside --allow-path, unsupported, not fitting: refused with the reason.
    let outside = repo_root().join("tests/models/logistic_regression.pmml");
    assert!(refused(create(&outside, MODEL)).contains("is not allowed on this server"));
    // A FIFO inside it would hold the engine until someone writes to it: refused at once.
    let fifo = models.join("fifo.pmml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", fifo.display());
    let answer = refused(create(&fifo, MODEL));
    assert!(answer.contains("fifo.pmml is not a regular file"), "{answer}");
    assert_eq!(
        refused(create(&neural, "INPUT (x DOUBLE) OUTPUT (y DOUBLE)")),
        format!("NeuralNetwork is not supported ({}:5)", neural.display())
    );
    assert_eq!(
        refused(create(&good, "INPUT (small_count DOUBLE, ratio DOUBLE) OUTPUT (probability DOUBLE)")),
        "the model also needs the input \"is_foreign\""
    );
    assert_eq!(
        refused(create(
            &good,
            "INPUT (small_count DOUBLE, ratio DOUBLE, age_days DOUBLE, is_foreign DOUBLE, channel INT) OUTPUT (probability DOUBLE)"
        )),
        "INPUT column \"channel\" is INT, but the model's field \"channel\" is text"
    );
    assert_eq!(
        refused(create(&good, "INPUT (amount DOUBLE) OUTPUT (probability DOUBLE)")),
        "INPUT column \"amount\" is not an input of the model"
    );
    assert_eq!(
        refused(create(
            &good,
            "INPUT (small_count DOUBLE, ratio DOUBLE, age_days DOUBLE, is_foreign DOUBLE, channel VARCHAR) OUTPUT (label DATE)"
        )),
        "OUTPUT column \"label\" cannot be DATE: the model is a classifier (DOUBLE: the probability; VARCHAR: the class)"
    );

    // Created, listed, described.
    let (status, answer) = server.ksql(&create(&good, MODEL));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["commandStatus"]["message"], "Model created", "{answer}");
    let (_, shown) = server.ksql("SHOW MODELS;");
    assert_eq!(shown[0]["models"][0]["name"], "card_fraud", "{shown}");
    assert_eq!(shown[0]["models"][0]["type"], "classification", "{shown}");
    let (_, described) = server.ksql("DESCRIBE MODEL card_fraud;");
    let model = &described[0]["model"];
    assert_eq!(model["outputs"], serde_json::json!([{"name": "probability", "type": "DOUBLE"}]), "{described}");
    assert_eq!(model["inputs"][4], serde_json::json!({"name": "channel", "type": "VARCHAR"}), "{described}");
    assert_eq!(model["checksum"].as_str().map(str::len), Some(64), "{described}");

    // Scoring a Kafka stream into Kafka: scikit-learn's probabilities (rows 2, 4 and 8
    // of tests/models/logistic_regression.csv), rounded to 9 places.
    let input = unique("models-in");
    let output = unique("models-out");
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM attempts (id INT, small_count DOUBLE, ratio DOUBLE, age_days DOUBLE, is_foreign DOUBLE, channel VARCHAR) \
         WITH ('connector' = 'kafka', 'topic' = '{input}', 'format' = 'json', 'scan.startup.mode' = 'earliest-offset', 'partitions' = '1');
         CREATE TABLE scored (id INT, probability DOUBLE) WITH ('connector' = 'kafka', 'topic' = '{output}', 'format' = 'json', 'partitions' = '1');
         INSERT INTO scored SELECT id, ROUND(probability, 9) AS probability \
         FROM ML_PREDICT(TABLE attempts, MODEL card_fraud, DESCRIPTOR(small_count, ratio, age_days, is_foreign, channel));"
    ));
    assert_eq!(status, 200, "{answer}");
    produce(
        &input,
        &[
            (None, r#"{"id": 2, "small_count": 3, "ratio": 0.16546467295747019, "age_days": 571, "is_foreign": 1, "channel": "web"}"#),
            (None, r#"{"id": 4, "small_count": 6, "ratio": 0.31216410136752254, "age_days": 1782, "is_foreign": 0, "channel": "web"}"#),
            (None, r#"{"id": 8, "small_count": 6, "ratio": 0.53701137638514984, "age_days": 477, "is_foreign": 1, "channel": "atm"}"#),
        ],
    )
    .await;
    let rows: Vec<String> = consume(&output, 3, Duration::from_secs(60)).await.into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        rows,
        vec![r#"{"id":2,"probability":0.435380183}"#, r#"{"id":4,"probability":0.40040681}"#, r#"{"id":8,"probability":0.88481907}"#],
        "{}",
        server.log_text()
    );
    let message = refused("DROP MODEL card_fraud;".into());
    assert!(message.starts_with("cannot drop model \"card_fraud\": queries score with it: "), "{message}");

    // A restart restores the model from the command log; the query scores on.
    server.kill();
    let server = Server::start_with(&state, &[("EDDY_APPLICATION_ID", &app)], &args);
    let (_, shown) = server.ksql("SHOW MODELS;");
    assert_eq!(shown[0]["models"][0]["name"], "card_fraud", "{shown}\n{}", server.log_text());
    produce(
        &input,
        &[(None, r#"{"id": 5, "small_count": 2, "ratio": 0.46237734339271913, "age_days": 563, "is_foreign": 0, "channel": "web"}"#)],
    )
    .await;
    let rows: Vec<String> = consume(&output, 4, Duration::from_secs(60)).await.into_iter().map(|(_, v)| v).collect();
    assert_eq!(rows.last().map(String::as_str), Some(r#"{"id":5,"probability":0.231829079}"#), "{}", server.log_text());

    // A changed file: the model is not restored, and the log says why.
    server.kill();
    let mut text = std::fs::read_to_string(&good).unwrap_or_else(|e| panic!("{e}"));
    text.push_str("<!-- retrained -->\n");
    std::fs::write(&good, text).unwrap_or_else(|e| panic!("{e}"));
    let server = Server::start_with(&state, &[("EDDY_APPLICATION_ID", &app)], &args);
    let (_, shown) = server.ksql("SHOW MODELS;");
    assert_eq!(shown[0]["models"], serde_json::json!([]), "{shown}");
    let log = server.log_text();
    assert!(
        log.contains(&format!(
            "model card_fraud is not restored: the model file {} changed since model \"card_fraud\" was created",
            good.display()
        )),
        "{log}"
    );
}
