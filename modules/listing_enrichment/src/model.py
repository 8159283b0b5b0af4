"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The demand model: a scikit-learn pipeline predicting if a listing lets within two weeks.
Tagline: A few numbers about a street, one probability about a home.
"""

from modules.listing_enrichment.src.utilities import FEATURES, tier

TEST_SIZE = 0.2


def make_pipeline(seed):
    """Scaling + logistic regression: small, fast, calibrated enough to rank listings."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    return Pipeline([("scale", StandardScaler()),
                     ("classify", LogisticRegression(max_iter=500, random_state=seed))])


def split(frame, seed):
    """The ``(train, test)`` frames of a clean frame: the same split for the same ``seed``."""
    from sklearn.model_selection import train_test_split
    train, test = train_test_split(frame, test_size=TEST_SIZE, random_state=seed)
    return train, test


def fit(frame, seed):
    """Fit on a clean frame; return ``(pipeline, metrics)`` with a held-out ROC AUC."""
    from sklearn.metrics import accuracy_score, roc_auc_score
    train, test = split(frame, seed)
    x_train, y_train = train[list(FEATURES)].to_numpy(), train["let_fast"].to_numpy()
    x_test, y_test = test[list(FEATURES)].to_numpy(), test["let_fast"].to_numpy()
    pipeline = make_pipeline(seed).fit(x_train, y_train)
    proba = pipeline.predict_proba(x_test)[:, 1]
    metrics = {"roc_auc": round(float(roc_auc_score(y_test, proba)), 4),
               "accuracy": round(float(accuracy_score(y_test, proba > 0.5)), 4),
               "rows_train": int(len(x_train)), "rows_test": int(len(x_test))}
    return pipeline, metrics


def served_outputs(pipeline, frame):
    """The demand ``enrich`` answers for each listing of a clean frame (rounded the same way),
    as ``{result field: values}``."""
    probabilities = pipeline.predict_proba(frame[list(FEATURES)].to_numpy())[:, 1]
    return {"demand_probability": [round(float(p), 4) for p in probabilities],
            "demand_tier": [tier(float(p)) for p in probabilities]}


def score(pipeline, row):
    """Probability that the listing with feature ``row`` lets within two weeks."""
    return float(pipeline.predict_proba([row])[0, 1])
