//! The evaluator against scikit-learn: each model of `tests/models/` (made by
//! `scripts/make_models.py` with scikit-learn 1.9.0 and sklearn2pmml 0.133.1) scores the
//! 2,000 rows of its CSV, some with missing inputs, and must give the score
//! scikit-learn computed for each row (the positive class's probability for a
//! classifier, the prediction for a regressor) within 1e-9.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use eddy_pmml::{Pmml, Values};

fn models_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/models")
}

fn check(name: &str) {
    let dir = models_dir();
    let text = std::fs::read_to_string(dir.join(format!("{name}.pmml"))).unwrap_or_else(|e| panic!("{name}.pmml: {e}"));
    let pmml = Pmml::parse(&text).unwrap_or_else(|e| panic!("{name}.pmml: {e}"));
    let schema = Arc::new(Schema::new(vec![
        Field::new("small_count", DataType::Float64, true),
        Field::new("ratio", DataType::Float64, true),
        Field::new("age_days", DataType::Float64, true),
        Field::new("is_foreign", DataType::Float64, true),
        Field::new("channel", DataType::Utf8, true),
        Field::new("expected", DataType::Float64, false),
    ]));
    let file = std::fs::File::open(dir.join(format!("{name}.csv"))).unwrap_or_else(|e| panic!("{e}"));
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_header(true)
        .with_batch_size(100_000)
        .build(file)
        .unwrap_or_else(|e| panic!("{e}"));
    let batch = reader.into_iter().next().unwrap_or_else(|| panic!("{name}.csv is empty")).unwrap_or_else(|e| panic!("{e}"));
    let rows = batch.num_rows();
    assert_eq!(rows, 2000);
    let inputs: Vec<(&str, ArrayRef)> = ["small_count", "ratio", "age_days", "is_foreign", "channel"]
        .iter()
        .map(|n| (*n, batch.column_by_name(n).cloned().unwrap_or_else(|| panic!("{n}"))))
        .collect();
    assert!(inputs.iter().any(|(_, a)| a.null_count() > 0), "the fixtures have missing values");
    let prediction = pmml.evaluate(&inputs, rows).unwrap_or_else(|e| panic!("{name}: {e}"));
    let expected = batch.column(5).as_primitive::<Float64Type>();
    let got: Vec<Option<f64>> = if pmml.is_classification() {
        let p = prediction.probability("1").unwrap_or_else(|| panic!("{name}: no probability of 1"));
        p.iter().collect()
    } else {
        match &prediction.predicted {
            Values::Num(a) => a.iter().collect(),
            Values::Str(_) => panic!("{name}: a regression predicted text"),
        }
    };
    let mut worst = (0.0f64, 0usize);
    for (i, g) in got.iter().enumerate() {
        let g = g.unwrap_or_else(|| panic!("{name}: row {i} has no score"));
        let d = (g - expected.value(i)).abs();
        if d > worst.0 {
            worst = (d, i);
        }
    }
    assert!(
        worst.0 <= 1e-9,
        "{name}: row {} scores {:?}, scikit-learn {} (difference {:e})",
        worst.1,
        got[worst.1],
        expected.value(worst.1),
        worst.0
    );
}

#[test]
fn logistic_regression() {
    check("logistic_regression");
}

#[test]
fn linear_regression() {
    check("linear_regression");
}

#[test]
fn decision_tree() {
    check("decision_tree");
}

#[test]
fn random_forest() {
    check("random_forest");
}

#[test]
fn random_forest_regression() {
    check("random_forest_regression");
}

#[test]
fn gradient_boosting() {
    check("gradient_boosting");
}

/// What Eddy cannot evaluate is refused when the document is loaded, naming the element
/// and its line.
#[test]
fn refusals_name_the_element_and_line() {
    let refused = |text: &str| Pmml::parse(text).err().map(|e| e.to_string()).unwrap_or_default();
    let head = "<PMML version=\"4.4\" xmlns=\"http://www.dmg.org/PMML-4_4\">\n<DataDictionary>\n<DataField name=\"x\" optype=\"continuous\" dataType=\"double\"/>\n</DataDictionary>\n";
    assert_eq!(refused(&format!("{head}<NeuralNetwork functionName=\"regression\"/>\n</PMML>")), "NeuralNetwork is not supported (line 5)");
    assert_eq!(
        refused(&format!(
            "{head}<RegressionModel functionName=\"regression\">\n<MiningSchema><MiningField name=\"x\"/></MiningSchema>\n<LocalTransformations>\n<DerivedField name=\"y\" dataType=\"double\" optype=\"continuous\">\n<Apply function=\"sinh\"><FieldRef field=\"x\"/></Apply>\n</DerivedField>\n</LocalTransformations>\n<RegressionTable intercept=\"1\"/>\n</RegressionModel>\n</PMML>"
        )),
        "the function \"sinh\" is not supported (line 9)"
    );
    assert_eq!(
        refused(&format!("{head}<TreeModel functionName=\"regression\" missingValueStrategy=\"aggregateNodes\">\n<MiningSchema/>\n<Node><True/></Node>\n</TreeModel>\n</PMML>")),
        "missingValueStrategy=\"aggregateNodes\" is not supported (line 5)"
    );
    assert_eq!(
        refused(&format!("{head}<RegressionModel functionName=\"regression\">\n<MiningSchema><MiningField name=\"z\"/></MiningSchema>\n<RegressionTable intercept=\"1\"/>\n</RegressionModel>\n</PMML>")),
        "MiningField \"z\" is not a field of the document (line 6)"
    );
    assert!(
        refused("<PMML version=\"4.4\">\n<DataDictionary>\n</PMML>").starts_with("not well-formed XML at line 3"),
        "{}",
        refused("<PMML version=\"4.4\">\n<DataDictionary>\n</PMML>")
    );
    assert_eq!(refused("<html/>"), "the root element is html, not PMML (line 1)");
}

/// SCENARIOS.md section 4's model (`models/card_fraud.pmml`) on the scenario's cases, with
/// a boolean input and a card without a profile (missing ratio and age).
#[test]
fn card_fraud_scores_the_scenario_cases() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("models/card_fraud.pmml")).unwrap_or_else(|e| panic!("{e}"));
    let pmml = Pmml::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let schema = Arc::new(Schema::new(vec![
        Field::new("small_count", DataType::Float64, true),
        Field::new("ratio", DataType::Float64, true),
        Field::new("age_days", DataType::Float64, true),
        Field::new("is_foreign", DataType::Boolean, true),
        Field::new("expected", DataType::Float64, false),
    ]));
    let file = std::fs::File::open(root.join("models/card_fraud.csv")).unwrap_or_else(|e| panic!("{e}"));
    let batch = arrow::csv::ReaderBuilder::new(schema)
        .with_header(true)
        .build(file)
        .unwrap_or_else(|e| panic!("{e}"))
        .next()
        .unwrap_or_else(|| panic!("empty"))
        .unwrap_or_else(|e| panic!("{e}"));
    let inputs: Vec<(&str, ArrayRef)> = ["small_count", "ratio", "age_days", "is_foreign"]
        .iter()
        .map(|n| (*n, batch.column_by_name(n).cloned().unwrap_or_else(|| panic!("{n}"))))
        .collect();
    let p = pmml.evaluate(&inputs, batch.num_rows()).unwrap_or_else(|e| panic!("{e}"));
    let got = p.probability("1").unwrap_or_else(|| panic!("no probability"));
    let expected = batch.column(4).as_primitive::<Float64Type>();
    for i in 0..batch.num_rows() {
        assert!(
            (got.value(i) - expected.value(i)).abs() <= 1e-9,
            "case {i}: {} against scikit-learn's {}",
            got.value(i),
            expected.value(i)
        );
    }
    assert!(got.value(0) >= 0.9 && got.value(1) < 0.9, "case (a) is blocked, (b) is not");
}

/// A tree nested as deep as the parser allows compiles and scores on a 2 MiB stack (a
/// tokio worker's), so a hostile document cannot overflow it.
#[test]
fn the_deepest_tree_fits_a_worker_stack() {
    let depth = 290;
    let mut doc = String::from(
        "<PMML version=\"4.4\"><DataDictionary><DataField name=\"x\" optype=\"continuous\" dataType=\"double\"/></DataDictionary>\
         <TreeModel functionName=\"regression\" noTrueChildStrategy=\"returnLastPrediction\"><MiningSchema><MiningField name=\"x\"/></MiningSchema><Node score=\"0\"><True/>",
    );
    for i in 0..depth {
        doc.push_str(&format!("<Node score=\"{i}\"><SimplePredicate field=\"x\" operator=\"greaterThan\" value=\"{i}\"/>"));
    }
    doc.push_str(&"</Node>".repeat(depth + 1));
    doc.push_str("</TreeModel></PMML>");
    let scored = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let pmml = Pmml::parse(&doc).unwrap_or_else(|e| panic!("{e}"));
            let x: ArrayRef = Arc::new(arrow::array::Float64Array::from(vec![5000.0, 10.5]));
            match pmml.evaluate(&[("x", x)], 2).unwrap_or_else(|e| panic!("{e}")).predicted {
                Values::Num(a) => a.iter().collect::<Vec<_>>(),
                Values::Str(_) => Vec::new(),
            }
        })
        .unwrap_or_else(|e| panic!("{e}"))
        .join()
        .unwrap_or_else(|_| panic!("the deep tree overflowed the stack"));
    assert_eq!(scored, vec![Some(289.0), Some(10.0)]);
}
