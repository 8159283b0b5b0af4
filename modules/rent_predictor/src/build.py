"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Build the rent predictor: extract, transform, fit, evaluate, report, publish.
Tagline: Fifty thousand flats in, one honest number out.

Run ``python modules/rent_predictor/src/build.py`` (or ``python -m
modules.rent_predictor.src.build``, or ``cerebro build rent_predictor``) at any
time: it trains a fresh model, prints its held-out metrics and publishes it,
with ``report.png`` and ``report.md`` beside it, as the module's new current
version. Running services pick it up without a restart.
"""

import sys
import time
from pathlib import Path

if __name__ == "__main__":  # any `python` may run it: one without Cerebro hands over to .venv
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from cerebro.buildkit import use_project_python
    use_project_python()

from cerebro.buildkit import build_parser, markdown_report, run_build
from modules.rent_predictor.src import extract, model, transform
from modules.rent_predictor.src.utilities import (DEFAULT_ROWS, DEFAULT_SEED, MIN_ROWS, MODULE,
                                                  report_png, round_rent)

STAGES = ("extract", "transform", "fit", "evaluate", "report")
TEST_SIZE = 0.2
#: Held-out rows on which the fast single-row path must match ``pipeline.predict``.
PARITY_ROWS = 200


def parse_args(argv=None):
    """Parse the command line (``--rows``, ``--seed``, ``--volume``, ``--keep``)."""
    parser = build_parser("Train the rent predictor on generated listings and publish it "
                          "to the data volume.",
                          rows=(DEFAULT_ROWS, MIN_ROWS), seed=DEFAULT_SEED,
                          rows_help="listings to generate")
    return parser.parse_args(argv)


def stage_extract(state):
    """Generate the raw listings."""
    state.raw = extract.extract(state.rows, state.seed)


def stage_transform(state):
    """Clean the listings, split them, learn the locality vocabulary and engineer features.

    The vocabulary is learned from the training split only; a few training
    rows have their locality hidden (see ``transform.drop_localities``).
    """
    from sklearn.model_selection import train_test_split

    state.clean, state.dropped = transform.clean(state.raw)
    train, test = train_test_split(state.clean, test_size=TEST_SIZE, random_state=state.seed)
    state.vocabulary = transform.locality_vocabulary(train)
    state.x_train = transform.drop_localities(transform.features(train, state.vocabulary),
                                              seed=state.seed)
    state.x_test = transform.features(test, state.vocabulary)
    state.y_train = train[transform.TARGET].to_numpy(dtype=float)
    state.y_test = test[transform.TARGET].to_numpy(dtype=float)
    state.reference_inputs = transform.served_inputs(train)


def stage_fit(state):
    """Fit the pipeline on the training split."""
    state.pipeline = model.build_pipeline(seed=state.seed)
    state.pipeline.fit(state.x_train, state.y_train)


def stage_evaluate(state):
    """Score the held-out split and check the fast single-row path against ``pipeline.predict``."""
    import numpy as np
    from sklearn.metrics import mean_absolute_error, r2_score

    predicted = state.pipeline.predict(state.x_test)
    state.reference_outputs = {"rent": [round_rent(v) for v in
                                        state.pipeline.predict(state.x_train)]}
    actual = state.y_test
    relative = np.abs(predicted - actual) / actual
    state.predicted = predicted
    state.metrics = {
        "mae": round(float(mean_absolute_error(actual, predicted)), 2),
        "r2": round(float(r2_score(actual, predicted)), 4),
        "mape": round(float(relative.mean()), 4),
        "median_ape": round(float(np.median(relative)), 4),
        "n_train": int(len(state.y_train)),
        "n_test": int(len(actual)),
    }
    sample = state.x_test.head(PARITY_ROWS)
    fast = np.array([model.predict_one(state.pipeline, r) for r in sample.to_dict("records")])
    if not np.allclose(fast, predicted[:len(fast)], rtol=1e-9, atol=1e-6):
        raise RuntimeError("model.predict_one disagrees with pipeline.predict: "
                           "the feature layout changed")


def stage_report(state):
    """Render report.png and report.md."""
    regressor = state.pipeline.named_steps["regressor"]
    state.params = {
        "rows": state.rows,
        "seed": state.seed,
        "test_size": TEST_SIZE,
        "locality_dropout": transform.LOCALITY_DROPOUT,
        "min_locality_listings": transform.MIN_LOCALITY_LISTINGS,
        "regressor": type(regressor).__name__,
        **{k: v for k, v in regressor.get_params().items() if k in model.DEFAULT_PARAMS},
        "n_iter": int(regressor.n_iter_),
        "one_hot": list(transform.ONE_HOT),
        "target_encoded": list(transform.TARGET_ENCODED),
        "numeric": list(transform.NUMERIC),
    }
    data = {
        "rows generated": len(state.raw),
        "rows after cleaning": len(state.clean),
        **{f"dropped: {reason}": n for reason, n in state.dropped.items() if n},
        "training rows": len(state.y_train),
        "held-out rows": len(state.y_test),
        "known localities": len(state.vocabulary),
    }
    title = f"{MODULE} build report"
    state.files = {
        "report.png": report_png(state.y_test, state.predicted,
                                 f"{MODULE}: MAE {state.metrics['mae']:,.0f} INR, "
                                 f"R² {state.metrics['r2']:.3f} on {len(state.y_test):,} "
                                 "held-out listings"),
        "report.md": markdown_report(title, {"Metrics (held-out set)": state.metrics,
                                             "Data": data, "Parameters": state.params},
                                     caption="predicted vs actual"),
    }


def run(rows=DEFAULT_ROWS, seed=DEFAULT_SEED, volume=None, keep=5, progress=True):
    """Run every stage; return the state (``metrics``, ``meta``, ``timings``, ``pipeline`` ...)."""
    stages = {name: globals()[f"stage_{name}"] for name in STAGES}
    return run_build(MODULE, stages, "pipeline", rows=rows, seed=seed, volume=volume, keep=keep,
                     progress=progress)


def main(argv=None):
    """Command-line entry point: build, print metrics and where the model was published."""
    from pathlib import Path

    args = parse_args(argv)
    started = time.perf_counter()
    state = run(args.rows, args.seed, Path(args.volume), args.keep)
    elapsed = time.perf_counter() - started
    metrics, version = state.metrics, state.meta["version"]
    where = Path(args.volume).resolve() / MODULE / "versions" / version
    print(f"{MODULE}: MAE {metrics['mae']:,.0f} INR | R² {metrics['r2']:.4f} | "
          f"MAPE {metrics['mape'] * 100:.1f}% on {metrics['n_test']:,} held-out listings "
          f"({metrics['n_train']:,} trained, {state.params['n_iter']} boosting iterations)")
    print("stages: " + ", ".join(f"{name} {seconds:.1f}s"
                                 for name, seconds in state.timings.items()))
    print(f"published version {version}")
    print(f"  to {where} (model.joblib, report.png, report.md, metadata.json)")
    print(f"build took {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
