"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Build vigilante: generate listings, engineer features, train, evaluate, report and publish.
Tagline: Study a season of forgeries in a few seconds, then stand guard.

Run ``python modules/vigilante/src/build.py`` (or ``python -m
modules.vigilante.src.build``, or ``cerebro build vigilante``) at any time:
it trains the classifier on freshly generated (deterministic) listings,
prints its hold-out metrics and publishes it, with ``report.png``, ``report.md``
and the reference profile of drift monitoring (``profile.json``), as the
module's new current version in the data volume.
"""

import sys
import time
from pathlib import Path

if __name__ == "__main__":  # any `python` may run it: one without Cerebro hands over to .venv
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from cerebro.buildkit import use_project_python
    use_project_python()

from cerebro.buildkit import build_parser, markdown_report, run_build
from modules.vigilante.src import extract, model, transform
from modules.vigilante.src.utilities import (DEFAULT_ROWS, DEFAULT_SEED, FEATURES, KINDS, MIN_ROWS,
                                             MODULE, report_png)

STAGES = ("extract", "transform", "train", "evaluate", "report")
HOLDOUT = 0.25


def parse_args(argv=None):
    """Parse the command line (``--rows``, ``--seed``, ``--volume``, ``--keep``)."""
    parser = build_parser("Train vigilante's suspicious-listing classifier on generated "
                          "listings and publish it.",
                          rows=(DEFAULT_ROWS, MIN_ROWS), seed=DEFAULT_SEED,
                          rows_help="listings to generate")
    return parser.parse_args(argv)


def stage_extract(state):
    """Generate the labelled listings."""
    state.raw = extract.extract(state.rows, state.seed)


def stage_transform(state):
    """Clean, split train/hold-out (stratified), learn rent levels, build feature matrices."""
    from sklearn.model_selection import train_test_split

    state.clean, state.dropped = transform.clean(state.raw)
    state.train, state.test = train_test_split(state.clean, test_size=HOLDOUT,
                                               random_state=state.seed,
                                               stratify=state.clean["kind"])
    state.levels = transform.rent_levels(state.train)
    state.x_train = transform.feature_matrix(state.train, state.levels)
    state.x_test = transform.feature_matrix(state.test, state.levels)
    state.reference_inputs = transform.served_inputs(state.train)


def stage_train(state):
    """Fit the classifier and choose the decision threshold on the training data."""
    pipeline = model.train(state.x_train, state.train["kind"].to_numpy(), state.seed)
    draft = model.artifact(pipeline, state.levels)
    train_scores = 1.0 - model.predict_many(draft, state.x_train)[:, 0]
    threshold = model.choose_threshold(train_scores, state.train["kind"].to_numpy() != "clean")
    state.model = model.artifact(pipeline, state.levels, threshold)


def stage_evaluate(state):
    """Hold-out metrics: accuracy, macro F1, ROC AUC and precision/recall of flagging; the
    training listings' verdicts and scores as served (drift monitoring's reference)."""
    import numpy as np
    from sklearn.metrics import (accuracy_score, f1_score, precision_score, recall_score,
                                 roc_auc_score)

    probs = model.predict_many(state.model, state.x_test)
    truth = state.test["kind"].to_numpy()
    predicted = np.array(KINDS)[probs.argmax(axis=1)]
    scores = 1.0 - probs[:, 0]
    suspicious = truth != "clean"
    flagged = scores >= state.model["threshold"]
    state.scores, state.truth = scores, truth
    state.metrics = {
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "macro_f1": round(float(f1_score(truth, predicted, average="macro")), 4),
        "roc_auc_suspicious": round(float(roc_auc_score(suspicious, scores)), 4),
        "precision_flagged": round(float(precision_score(suspicious, flagged)), 4),
        "recall_flagged": round(float(recall_score(suspicious, flagged)), 4),
        "threshold": state.model["threshold"],
        "holdout_rows": int(len(truth)),
    }
    state.per_kind_recall = {k: round(float((predicted[truth == k] == k).mean()), 4) for k in KINDS}
    state.reference_outputs = served_outputs(state.model, state.reference_inputs)


def served_outputs(fitted, rows):
    """The verdict and score the served function answers for each listing of ``rows`` (by the
    same fast path, rounded the same way), as ``{result field: values}``."""
    levels = fitted["rent_levels"]
    answers = [model.verdict(fitted, model.probabilities(fitted, transform.features(row, levels)))
               for row in rows]
    return {"verdict": [kind for kind, _ in answers],
            "score": [round(score, 4) for _, score in answers]}


def stage_report(state):
    """Render report.png and report.md."""
    fast = state.model["fast"]
    state.params = {"rows": state.rows, "seed": state.seed, "features": list(FEATURES),
                    "threshold": state.model["threshold"],
                    "rent_levels": {k: round(v, 2) for k, v in state.model["rent_levels"].items()}}
    weights = {f"{cls}: {name}": round(w, 3) for cls, row in zip(fast["classes"], fast["weights"])
               if cls != "clean" for name, w in zip(FEATURES, row)}
    sections = {
        "Hold-out metrics": state.metrics,
        "Recall per kind": state.per_kind_recall,
        "Data": {"rows generated": len(state.raw), "rows dropped": state.dropped,
                 **{f"share {k}": round(float((state.raw['kind'] == k).mean()), 4) for k in KINDS}},
        "Rent per sqft by city (INR/month)": state.params["rent_levels"],
        "Weights on raw features": weights,
    }
    title = f"{MODULE} build report"
    state.files = {
        "report.png": report_png(state.scores, state.truth,
                                 f"{MODULE}: ROC AUC {state.metrics['roc_auc_suspicious']:.3f}, "
                                 f"threshold {state.model['threshold']:.2f}"),
        "report.md": markdown_report(title, sections, caption="suspicion score per kind"),
    }


def run(rows=DEFAULT_ROWS, seed=DEFAULT_SEED, volume=None, keep=5, progress=True):
    """Run every stage; return the state (``model``, ``metrics``, ``meta``, ``timings`` ...)."""
    stages = {name: globals()[f"stage_{name}"] for name in STAGES}
    return run_build(MODULE, stages, "model", rows=rows, seed=seed, volume=volume, keep=keep,
                     progress=progress)


def main(argv=None):
    """Command-line entry point: train, print metrics and where the model was published."""
    from pathlib import Path

    args = parse_args(argv)
    started = time.perf_counter()
    state = run(args.rows, args.seed, Path(args.volume), args.keep)
    m = state.metrics
    where = Path(args.volume).resolve() / MODULE / "versions" / state.meta["version"]
    print(f"{MODULE}: accuracy {m['accuracy']:.4f} | macro F1 {m['macro_f1']:.4f} | "
          f"ROC AUC {m['roc_auc_suspicious']:.4f} | flagged precision {m['precision_flagged']:.4f} "
          f"recall {m['recall_flagged']:.4f} at {m['threshold']:.2f}")
    print(f"published version {state.meta['version']} to {where} "
          f"in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
