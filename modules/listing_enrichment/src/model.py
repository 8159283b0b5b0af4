"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The demand model: a scikit-learn pipeline predicting if a listing lets within two weeks.
Tagline: A few numbers about a street, one probability about a home.
"""

from modules.listing_enrichment.src.utilities import FEATURES


def make_pipeline(seed):
    """Scaling + logistic regression: small, fast, calibrated enough to rank listings."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    return Pipeline([("scale", StandardScaler()),
                     ("classify", LogisticRegression(max_iter=500, random_state=seed))])


def fit(frame, seed):
    """Fit on a clean frame; return ``(pipeline, metrics)`` with a held-out ROC AUC."""
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    x, y = frame[list(FEATURES)].to_numpy(), frame["let_fast"].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=seed)
    pipeline = make_pipeline(seed).fit(x_train, y_train)
    proba = pipeline.predict_proba(x_test)[:, 1]
    metrics = {"roc_auc": round(float(roc_auc_score(y_test, proba)), 4),
               "accuracy": round(float(accuracy_score(y_test, proba > 0.5)), 4),
               "rows_train": int(len(x_train)), "rows_test": int(len(x_test))}
    return pipeline, metrics


def score(pipeline, row):
    """Probability that the listing with feature ``row`` lets within two weeks."""
    return float(pipeline.predict_proba([row])[0, 1])
