"""Makes the PMML fixtures of the evaluator's conformance tests (tests/models/).

Run by hand, its outputs committed: it needs scikit-learn 1.9.0, sklearn2pmml 0.133.1
(which converts scikit-learn up to 1.9.0) and Java 17:

    python3 -m venv /tmp/skl && /tmp/skl/bin/pip install scikit-learn==1.9.0 sklearn2pmml==0.133.1 pandas
    /tmp/skl/bin/python scripts/make_models.py

For each model kind Eddy evaluates it writes `<name>.pmml` and `<name>.csv`: the inputs of
2,000 rows (some with missing values) and the scores scikit-learn itself computed for them
(`expected`: the probability of the positive class for classifiers, the prediction for
regressors). The seeds are fixed, so a rerun writes the same files (but for the timestamp in
their Header).

It also writes `models/card_fraud.pmml`, the model of SCENARIOS.md section 4: a logistic
regression over `small_count`, `ratio` (the large amount over the card's average),
`age_days` (the account's age) and `is_foreign` (merchant country not the card's home),
each imputed (a card without a profile has no ratio, age or home), with
`models/card_fraud.csv` holding scikit-learn's probabilities for the scenario's cases.
"""

import os

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn2pmml import sklearn2pmml
from sklearn2pmml.pipeline import PMMLPipeline

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "models")
NUMERIC = ["small_count", "ratio", "age_days"]
CATEGORICAL = ["channel"]
COLUMNS = NUMERIC + ["is_foreign"] + CATEGORICAL


def data(n, seed):
    """Card payments: a burst of small payments, their share, the card's age, a foreign
    merchant and the channel; is_fraud and a risk amount to learn."""
    rng = np.random.default_rng(seed)
    small = rng.poisson(3, n).astype(float)
    ratio = rng.beta(2, 5, n)
    age = rng.integers(0, 2000, n).astype(float)
    foreign = rng.integers(0, 2, n).astype(float)
    channel = rng.choice(["web", "pos", "atm"], n)
    logit = -4 + 0.6 * small + 3 * ratio - 0.001 * age + 1.2 * foreign + np.where(channel == "web", 0.8, 0.0)
    fraud = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    risk = 10 * small + 50 * ratio - 0.01 * age + 5 * foreign + rng.normal(0, 1, n)
    df = pd.DataFrame({"small_count": small, "ratio": ratio, "age_days": age, "is_foreign": foreign, "channel": channel})
    return df, fraud, risk


def with_missing(df, seed):
    """Every fifth row misses one input (numeric or categorical)."""
    df = df.copy()
    rng = np.random.default_rng(seed)
    for i in range(0, len(df), 5):
        col = COLUMNS[rng.integers(0, len(COLUMNS))]
        df.loc[i, col] = np.nan if col != "channel" else None
    return df


def prepared():
    """Imputers, a scaler and a one-hot encoder: the transformations sklearn2pmml writes
    as DerivedFields (Apply, NormContinuous, NormDiscrete)."""
    return ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer(strategy="mean")), ("scale", StandardScaler())]), NUMERIC),
            ("flag", SimpleImputer(strategy="most_frequent"), ["is_foreign"]),
            ("cat", Pipeline([("impute", SimpleImputer(strategy="most_frequent")), ("onehot", OneHotEncoder())]), CATEGORICAL),
        ]
    )


def write(name, estimator, target, classifier):
    train, fraud, risk = data(5000, 1)
    test, _, _ = data(2000, 2)
    test = with_missing(test, 3)
    y = fraud if classifier else risk
    pipeline = PMMLPipeline([("prepare", prepared()), (name, estimator)])
    pipeline.fit(train, pd.Series(y, name=target))
    sklearn2pmml(pipeline, os.path.join(OUT, f"{name}.pmml"))
    expected = pipeline.predict_proba(test)[:, 1] if classifier else pipeline.predict(test)
    out = test.copy()
    out["expected"] = expected
    out.to_csv(os.path.join(OUT, f"{name}.csv"), index=False, float_format="%.17g")


def card_fraud():
    """SCENARIOS.md section 4's model: card-testing attempts that are fraud are foreign, on
    young cards, with a large amount far above the card's average."""
    rng = np.random.default_rng(4)
    n = 20000
    small = rng.integers(3, 8, n).astype(float)
    ratio = rng.lognormal(0.5, 1.0, n)
    age = rng.integers(0, 3000, n).astype(float)
    foreign = rng.integers(0, 2, n).astype(bool)
    logit = -2.0 + 0.3 * small + 0.8 * np.log(ratio) - 0.004 * age + 3.0 * foreign
    fraud = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    x = pd.DataFrame({"small_count": small, "ratio": ratio, "age_days": age, "is_foreign": foreign})
    features = ["small_count", "ratio", "age_days", "is_foreign"]
    prepare = ColumnTransformer([("all", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), features)])
    pipeline = PMMLPipeline([("prepare", prepare), ("model", LogisticRegression(max_iter=1000))])
    pipeline.fit(x, pd.Series(fraud, name="is_fraud"))
    models = os.path.join(os.path.dirname(OUT), "..", "models")
    os.makedirs(models, exist_ok=True)
    sklearn2pmml(pipeline, os.path.join(models, "card_fraud.pmml"))
    # The cases of SCENARIOS.md section 4: (a) 3 x 1.00 then 900.00 abroad on a 20-day-old
    # card (average 45.00); (b) the same at home on a 4-year-old card averaging 700.00; a card
    # without a profile (missing ratio, age and home: not foreign).
    cases = pd.DataFrame(
        {
            "small_count": [3.0, 3.0, 3.0],
            "ratio": [900.0 / 45.0, 900.0 / 700.0, np.nan],
            "age_days": [20.0, 1461.0, np.nan],
            "is_foreign": [True, False, False],
        }
    )
    out = cases.copy()
    out["expected"] = pipeline.predict_proba(cases)[:, 1]
    out.to_csv(os.path.join(models, "card_fraud.csv"), index=False, float_format="%.17g")


def main():
    os.makedirs(OUT, exist_ok=True)
    card_fraud()
    write("logistic_regression", LogisticRegression(max_iter=1000), "is_fraud", True)
    write("linear_regression", LinearRegression(), "risk", False)
    write("decision_tree", DecisionTreeClassifier(max_depth=6, random_state=1), "is_fraud", True)
    write("random_forest", RandomForestClassifier(n_estimators=100, max_depth=6, random_state=1), "is_fraud", True)
    write("random_forest_regression", RandomForestRegressor(n_estimators=20, max_depth=5, random_state=1), "risk", False)
    write("gradient_boosting", GradientBoostingClassifier(n_estimators=50, max_depth=3, random_state=1), "is_fraud", True)


if __name__ == "__main__":
    main()
