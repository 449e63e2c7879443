//! The fast paths ([`crate::flat`], the forest of [`crate::mining`]) against the general
//! walk, on documents written to reach every case: chains of children with and without
//! a final TRUE, `returnLastPrediction`, a root predicate that is not TRUE, text and set
//! predicates, `notEqual` (left to the general walk), missing values, majority votes,
//! weighted averages and sums. Both must give the same numbers, bit for bit.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, StringArray};

use crate::Pmml;

const TREES: &str = r#"
<Segment id="1"><True/>
  <TreeModel functionName="FUNCTION" missingValueStrategy="nullPrediction">
    <MiningSchema><MiningField name="x"/><MiningField name="color"/></MiningSchema>
    <Node><True/>
      <Node score="0"><SimplePredicate field="x" operator="lessOrEqual" value="1.5"/>LEAF_A</Node>
      <Node><SimplePredicate field="color" operator="equal" value="red"/>
        <Node score="1"><SimplePredicate field="x" operator="lessThan" value="3"/>LEAF_B</Node>
        <Node score="0"><SimplePredicate field="x" operator="greaterOrEqual" value="7"/>LEAF_A</Node>
      </Node>
      <Node score="1"><SimpleSetPredicate field="color" booleanOperator="isIn"><Array type="string">"blue" green</Array></SimpleSetPredicate>LEAF_B</Node>
      <Node score="0"><True/>LEAF_A</Node>
    </Node>
  </TreeModel>
</Segment>
<Segment id="2" weight="2"><True/>
  <TreeModel functionName="FUNCTION" missingValueStrategy="lastPrediction" noTrueChildStrategy="returnLastPrediction">
    <MiningSchema><MiningField name="x"/><MiningField name="y"/></MiningSchema>
    <Node score="1"><True/>LEAF_B
      <Node score="0"><SimplePredicate field="y" operator="greaterThan" value="0.25"/>LEAF_A
        <Node score="1"><SimplePredicate field="x" operator="lessOrEqual" value="4"/>LEAF_B</Node>
        <Node score="0"><SimplePredicate field="x" operator="greaterThan" value="8"/>LEAF_A</Node>
      </Node>
      <Node score="0"><SimplePredicate field="x" operator="equal" value="2"/>LEAF_A</Node>
    </Node>
  </TreeModel>
</Segment>
<Segment id="3" weight="0.5"><True/>
  <TreeModel functionName="FUNCTION" missingValueStrategy="none">
    <MiningSchema><MiningField name="x"/><MiningField name="y"/></MiningSchema>
    <Node score="1"><SimplePredicate field="x" operator="greaterThan" value="0.5"/>LEAF_B
      <Node score="1"><SimplePredicate field="y" operator="lessOrEqual" value="0.5"/>LEAF_B</Node>
      <Node score="0"><SimplePredicate field="y" operator="isMissing"/>LEAF_A</Node>
    </Node>
  </TreeModel>
</Segment>
"#;

/// A tree with `notEqual` of a number, which only the general walk evaluates.
const NOT_EQUAL: &str = r#"
<Segment id="4"><True/>
  <TreeModel functionName="FUNCTION">
    <MiningSchema><MiningField name="x"/></MiningSchema>
    <Node score="0"><True/>LEAF_A
      <Node score="1"><SimplePredicate field="x" operator="notEqual" value="5"/>LEAF_B</Node>
      <Node score="0"><True/>LEAF_A</Node>
    </Node>
  </TreeModel>
</Segment>
"#;

fn document(function: &str, method: &str, segments: &str) -> String {
    let (target, leaf_a, leaf_b) = if function == "classification" {
        (
            r#"<DataField name="t" optype="categorical" dataType="string"><Value value="no"/><Value value="yes"/></DataField>"#,
            r#"<ScoreDistribution value="no" recordCount="9"/><ScoreDistribution value="yes" recordCount="1"/>"#,
            r#"<ScoreDistribution value="no" recordCount="3"/><ScoreDistribution value="yes" recordCount="7"/>"#,
        )
    } else {
        (r#"<DataField name="t" optype="continuous" dataType="double"/>"#, "", "")
    };
    let trees = segments.replace("FUNCTION", function).replace("LEAF_A", leaf_a).replace("LEAF_B", leaf_b);
    format!(
        r#"<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
<DataDictionary>{target}
  <DataField name="x" optype="continuous" dataType="double"/>
  <DataField name="y" optype="continuous" dataType="double"/>
  <DataField name="color" optype="categorical" dataType="string"><Value value="red"/><Value value="blue"/><Value value="green"/></DataField>
</DataDictionary>
<MiningModel functionName="{function}">
  <MiningSchema><MiningField name="t" usageType="target"/><MiningField name="x"/><MiningField name="y"/><MiningField name="color"/></MiningSchema>
  <Segmentation multipleModelMethod="{method}">{trees}</Segmentation>
</MiningModel>
</PMML>"#
    )
}

fn inputs() -> (Vec<(&'static str, ArrayRef)>, usize) {
    let n = 500;
    let mut seed: u64 = 7;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut color = Vec::new();
    for i in 0..n {
        // Every 17th x and every 13th y missing; x on a grid of halves, so equalities occur.
        x.push((i % 17 != 0).then(|| (next() * 20.0).floor() / 2.0));
        y.push((i % 13 != 0).then(&mut next));
        color.push(match i % 5 {
            0 => None,
            1 => Some("red"),
            2 => Some("blue"),
            3 => Some("green"),
            _ => Some("purple"),
        });
    }
    let columns: Vec<(&str, ArrayRef)> =
        vec![("x", Arc::new(Float64Array::from(x))), ("y", Arc::new(Float64Array::from(y))), ("color", Arc::new(StringArray::from(color)))];
    (columns, n)
}

fn same(a: &Float64Array, b: &Float64Array, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for i in 0..a.len() {
        assert_eq!(a.is_null(i), b.is_null(i), "{what}: row {i}");
        if a.is_valid(i) {
            assert_eq!(a.value(i).to_bits(), b.value(i).to_bits(), "{what}: row {i}: {} vs {}", a.value(i), b.value(i));
        }
    }
}

#[test]
fn forests_and_trees_score_as_the_general_walk() {
    let (columns, n) = inputs();
    for (function, methods) in [
        ("classification", ["average", "weightedAverage", "majorityVote", "weightedMajorityVote"]),
        ("regression", ["average", "weightedAverage", "sum", "weightedSum"]),
    ] {
        for method in methods {
            let text = document(function, method, TREES);
            let fast = Pmml::parse(&text).unwrap_or_else(|e| panic!("{function} {method}: {e}"));
            assert!(fast.has_forest(), "{function} {method}: no fast path");
            let general = Pmml::parse(&text).unwrap_or_else(|e| panic!("{e}")).general();
            let a = fast.evaluate(&columns, n).unwrap_or_else(|e| panic!("{function} {method}: {e}"));
            let b = general.evaluate(&columns, n).unwrap_or_else(|e| panic!("{function} {method}: {e}"));
            let what = format!("{function} {method}");
            match function {
                "classification" => {
                    for c in ["no", "yes"] {
                        let (pa, pb) = (a.probability(c), b.probability(c));
                        same(pa.unwrap_or_else(|| panic!("{what}")), pb.unwrap_or_else(|| panic!("{what}")), &format!("{what} P({c})"));
                    }
                    let some = a.probability("yes").map_or(0, |p| p.len() - p.null_count());
                    assert!(some > n / 2, "{what}: {some} rows scored");
                }
                _ => {
                    let (crate::values::Values::Num(pa), crate::values::Values::Num(pb)) = (&a.predicted, &b.predicted) else {
                        panic!("{what}: not numbers")
                    };
                    same(pa, pb, &what);
                }
            }
        }
    }
}

#[test]
fn single_trees_score_as_the_general_walk() {
    let (columns, n) = inputs();
    for function in ["classification", "regression"] {
        for k in 0..4 {
            // Segment k alone in a `selectFirst` (not a forest): its tree's own fast path.
            let all = format!("{TREES}{NOT_EQUAL}");
            let start = all.match_indices("<Segment ").nth(k).map_or(0, |(i, _)| i);
            let end = all[start..].find("</Segment>").map_or(all.len(), |i| start + i + "</Segment>".len());
            let text = document(function, "selectFirst", &all[start..end]);
            let fast = Pmml::parse(&text).unwrap_or_else(|e| panic!("{function} tree {k}: {e}"));
            assert!(!fast.has_forest());
            let general = Pmml::parse(&text).unwrap_or_else(|e| panic!("{e}")).general();
            let a = fast.evaluate(&columns, n).unwrap_or_else(|e| panic!("{function} tree {k}: {e}"));
            let b = general.evaluate(&columns, n).unwrap_or_else(|e| panic!("{function} tree {k}: {e}"));
            let what = format!("{function} tree {k}");
            if function == "classification" {
                for c in ["no", "yes"] {
                    same(a.probability(c).unwrap_or_else(|| panic!("{what}")), b.probability(c).unwrap_or_else(|| panic!("{what}")), &what);
                }
            } else if let (crate::values::Values::Num(pa), crate::values::Values::Num(pb)) = (&a.predicted, &b.predicted) {
                same(pa, pb, &what);
            } else {
                panic!("{what}: not numbers");
            }
        }
    }
}
