"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Build the locality score: extract, clean, calibrate, evaluate, report, publish.
Tagline: Walk every street once, so no request has to.

Run ``python modules/locality_score/src/build.py`` (or ``python -m
modules.locality_score.src.build``, or ``cerebro build locality_score``) at
any time: it recalibrates the formula, prints how well scores agree with
resident ratings and publishes the calibration, with ``report.png``,
``report.md`` and the reference profile of drift monitoring (``profile.json``)
beside it, as the module's new current version.
"""

import sys
import time
from pathlib import Path

if __name__ == "__main__":  # any `python` may run it: one without Cerebro hands over to .venv
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from cerebro.buildkit import use_project_python
    use_project_python()

from cerebro.buildkit import build_parser, markdown_report, run_build
from modules.locality_score.src import extract, model, transform
from modules.locality_score.src.utilities import (DEFAULT_ROWS, DEFAULT_SEED, DISTANCES, GRADES,
                                                  MIN_ROWS, MODULE, distance_column, report_png)

STAGES = ("extract", "transform", "calibrate", "evaluate", "report")


def parse_args(argv=None):
    """Parse the command line (``--rows``, ``--seed``, ``--volume``, ``--keep``)."""
    parser = build_parser("Calibrate the locality score on generated locality data and publish it.",
                          rows=(DEFAULT_ROWS, MIN_ROWS), seed=DEFAULT_SEED,
                          rows_help="localities to generate")
    return parser.parse_args(argv)


def stage_extract(state):
    """Generate the raw locality data."""
    state.raw = extract.extract(state.rows, state.seed)


def stage_transform(state):
    """Drop localities with unusable distances; keep them as the served function takes them."""
    state.clean, state.dropped = transform.clean(state.raw)
    state.reference_inputs = transform.served_inputs(state.clean)


def stage_calibrate(state):
    """Fit the formula's constants: half-lives, weights, raw range and grade cuts."""
    state.calibration = model.calibrate(state.clean)


def stage_evaluate(state):
    """Score every locality with the served formula and compare scores with resident ratings."""
    import pandas as pd

    frame = state.clean
    columns = [distance_column(name) for name in DISTANCES]
    results = [model.score(state.calibration, city, dict(zip(DISTANCES, distances)), amenities)
               for city, amenities, *distances in zip(frame["city"], frame["amenities"],
                                                      *(frame[c] for c in columns))]
    scores = pd.Series([r["score"] for r in results], name="score")
    grades = pd.Series([r["grade"] for r in results])
    ratings = frame["resident_rating"].reset_index(drop=True)
    state.scores = scores
    state.reference_outputs = {"score": [r["score"] for r in results],
                               "grade": [r["grade"] for r in results]}
    state.metrics = {
        "spearman_rating": round(float(scores.corr(ratings, method="spearman")), 4),
        "pearson_rating": round(float(scores.corr(ratings)), 4),
        "mean_score": round(float(scores.mean()), 3),
        "std_score": round(float(scores.std()), 3),
        "localities": int(len(frame)),
        "cities": int(frame["city"].nunique()),
    }
    state.grade_share = {g: round(float((grades == g).mean()), 3) for g in GRADES}
    state.city_mean = {str(c): round(float(v), 2)
                       for c, v in scores.groupby(frame["city"].to_numpy()).mean().items()}


def stage_report(state):
    """Render report.png and report.md."""
    calibration = state.calibration
    state.params = {
        "rows": state.rows,
        "seed": state.seed,
        "weights": calibration["weights"],
        "raw_range": calibration["raw_range"],
        "grade_cuts": calibration["grade_cuts"],
    }
    sections = {
        "Agreement with resident ratings": state.metrics,
        "Data": {"rows generated": len(state.raw), "rows after cleaning": len(state.clean),
                 **{f"dropped: {reason}": n for reason, n in state.dropped.items() if n}},
        "Weights (non-negative least squares on ratings)": calibration["weights"],
        "Grade cut points (score >=)": {g: c for c, g in calibration["grade_cuts"]},
        "Share of localities per grade": state.grade_share,
        "Mean score per city": state.city_mean,
        "Half-lives per city (km, median distances)": {
            city: {k: round(v, 2) for k, v in half.items()}
            for city, half in sorted(calibration["half_life_km"].items())},
    }
    title = f"{MODULE} build report"
    state.files = {
        "report.png": report_png(state.scores, state.clean["resident_rating"], state.clean["city"],
                                 f"{MODULE}: Spearman {state.metrics['spearman_rating']:.3f} with "
                                 f"resident ratings over {state.metrics['localities']:,} "
                                 "localities"),
        "report.md": markdown_report(title, sections, caption="score by city"),
    }


def run(rows=DEFAULT_ROWS, seed=DEFAULT_SEED, volume=None, keep=5, progress=True):
    """Run every stage; return the state (``calibration``, ``metrics``, ``meta``, ``timings``)."""
    stages = {name: globals()[f"stage_{name}"] for name in STAGES}
    return run_build(MODULE, stages, "calibration", rows=rows, seed=seed, volume=volume, keep=keep,
                     progress=progress)


def main(argv=None):
    """Command-line entry point: calibrate, print metrics and where the result was published."""
    from pathlib import Path

    args = parse_args(argv)
    started = time.perf_counter()
    state = run(args.rows, args.seed, Path(args.volume), args.keep)
    elapsed = time.perf_counter() - started
    metrics, version = state.metrics, state.meta["version"]
    where = Path(args.volume).resolve() / MODULE / "versions" / version
    print(f"{MODULE}: Spearman {metrics['spearman_rating']:.4f} | "
          f"Pearson {metrics['pearson_rating']:.4f} "
          f"with resident ratings | mean score {metrics['mean_score']:.2f} over "
          f"{metrics['localities']:,} localities in {metrics['cities']} cities")
    print("weights: " + ", ".join(f"{k} {v:.3f}" for k, v in state.calibration["weights"].items()))
    print("stages: " + ", ".join(f"{name} {seconds:.1f}s"
                                 for name, seconds in state.timings.items()))
    print(f"published version {version}")
    print(f"  to {where} (model.joblib, report.png, report.md, profile.json, metadata.json)")
    print(f"build took {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
