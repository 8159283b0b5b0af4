"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The rent model: a scikit-learn Pipeline (encoders + boosting) and a fast one-row path.
Tagline: Trees that learned the price of a view.

:func:`build_pipeline` makes the estimator the build fits: a
``ColumnTransformer`` (one-hot for the low-cardinality categoricals, a
cross-fitted target encoding for the hundred-odd localities, numerics passed
through: trees need no scaling) feeding a ``HistGradientBoostingRegressor``
with a gamma loss, whose log link suits a price that is a product of factors.

:func:`predict_one` predicts one feature record without pandas: it lays the
record out exactly as the fitted ``ColumnTransformer`` would and runs the
regressor's trees through treelite: about 0.1 ms a listing, where
``pipeline.predict`` on a one-row ``DataFrame`` takes tens of milliseconds (the
encoders' input checks dominate) and the regressor's own ``predict`` 1.4 ms.
The build checks that both agree before publishing, and the tests check it again.
"""

import weakref

from modules.rent_predictor.src.transform import NUMERIC, ONE_HOT, TARGET_ENCODED
from modules.rent_predictor.src.utilities import DEFAULT_SEED, OTHER_LOCALITY

#: Gradient boosting settings; ``max_iter`` is a ceiling, early stopping decides.
DEFAULT_PARAMS = {
    "loss": "gamma",
    "learning_rate": 0.1,
    "max_iter": 200,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "l2_regularization": 0.0,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 15,
}
#: Folds of the target encoder's cross fitting (each row is encoded by the other folds).
TARGET_ENCODER_FOLDS = 5

_LAYOUTS = weakref.WeakKeyDictionary()
_COMPILED = weakref.WeakKeyDictionary()


def build_pipeline(params=None, seed=DEFAULT_SEED):
    """An unfitted ``Pipeline(preprocess -> regressor)`` over the engineered features."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import KFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, TargetEncoder

    settings = {**DEFAULT_PARAMS, **(params or {})}
    folds = KFold(TARGET_ENCODER_FOLDS, shuffle=True, random_state=seed)
    preprocess = ColumnTransformer(
        [("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(ONE_HOT)),
         ("locality", TargetEncoder(target_type="continuous", cv=folds), list(TARGET_ENCODED)),
         ("numeric", "passthrough", list(NUMERIC))],
        sparse_threshold=0.0,
        verbose_feature_names_out=False,
    )
    regressor = HistGradientBoostingRegressor(random_state=seed, **settings)
    return Pipeline([("preprocess", preprocess), ("regressor", regressor)])


def locality_vocabulary(pipeline):
    """The locality keys a fitted pipeline knows (target encoder categories but ``other``)."""
    return _layout(pipeline)["vocabulary"]


def feature_vector(pipeline, record):
    """The one-row numpy matrix the fitted regressor expects for one feature record."""
    import numpy as np

    layout = _layout(pipeline)
    row = np.zeros((1, layout["width"]), dtype=np.float64)
    for column, offsets in layout["onehot"]:
        index = offsets.get(record[column])
        if index is not None:          # handle_unknown="ignore": an unknown category is all zeros
            row[0, index] = 1.0
    for column, index, encodings, default in layout["target"]:
        row[0, index] = encodings.get(record[column], default)
    start = layout["numeric_start"]
    row[0, start:start + len(NUMERIC)] = [float(record[column]) for column in NUMERIC]
    return row


def predict_many(pipeline, records):
    """Predicted rents (floats) for many feature records, in one vectorised call."""
    import numpy as np

    matrix = np.vstack([feature_vector(pipeline, record) for record in records])
    return [float(rent) for rent in _predict_matrix(pipeline, matrix)]


def predict_one(pipeline, record):
    """Predicted rent (float) for one feature record from ``transform.engineer``."""
    return float(_predict_matrix(pipeline, feature_vector(pipeline, record))[0])


def _predict_matrix(pipeline, matrix):
    """The fitted regressor's predictions for a feature matrix, through treelite.

    ``HistGradientBoostingRegressor.predict`` walks its trees one Python call at a
    time: about 1.3 ms per call whatever the rows (1.4 ms for 1 row, 1.7 ms for 64).
    treelite's tree inference (GTIL, no compiler) does the same sums in one call:
    82 µs for 1 row, 314 µs for 16. Outputs agree to about 1e-14 relative (checked
    when a version loads, at build time and by the tests).
    """
    import treelite.gtil

    return treelite.gtil.predict(_compiled(pipeline), matrix, nthread=1).ravel()


#: Rows of the check :func:`prepare` runs, and how closely treelite must agree.
_CHECK_ROWS, _CHECK_RTOL = 32, 1e-9


def prepare(pipeline):
    """Compile a loaded pipeline's trees for treelite now (about 20 ms), so its first request
    does not (``ModelHandle(..., prepare=prepare)`` runs it before the version serves), and
    check treelite agrees with the regressor's own ``predict``: a treelite that reads the
    model differently (older ones dropped the gamma loss's link) refuses the version
    instead of serving wrong rents."""
    import numpy as np

    regressor = pipeline.named_steps["regressor"]
    rows = np.random.default_rng(0).normal(size=(_CHECK_ROWS, regressor.n_features_in_))
    expected, got = regressor.predict(rows), _predict_matrix(pipeline, rows)
    if not np.allclose(got, expected, rtol=_CHECK_RTOL, atol=0.0):
        _COMPILED.pop(pipeline, None)
        worst = float(np.max(np.abs(got - expected) / np.abs(expected)))
        raise ValueError(f"treelite disagrees with the regressor's predict (relative error "
                         f"up to {worst:.3g}): check the treelite version")


def _compiled(pipeline):
    """The pipeline's regressor as a treelite model, made once per fitted pipeline."""
    compiled = _COMPILED.get(pipeline)
    if compiled is None:
        import treelite.sklearn

        compiled = _COMPILED[pipeline] = treelite.sklearn.import_model(
            pipeline.named_steps["regressor"])
    return compiled


def _layout(pipeline):
    """Where every encoded value lands in the fitted preprocess output, read once per pipeline.

    Walks the fitted ``ColumnTransformer`` in output order; any transformer
    other than the ones :func:`build_pipeline` uses is refused, so a changed
    pipeline fails loudly here instead of predicting nonsense.
    """
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, TargetEncoder

    layout = _LAYOUTS.get(pipeline)
    if layout is not None:
        return layout
    layout = {"onehot": [], "target": [], "numeric_start": None, "vocabulary": frozenset()}
    offset = 0
    for name, transformer, columns in pipeline.named_steps["preprocess"].transformers_:
        if (isinstance(transformer, str) and transformer == "drop") or len(columns) == 0:
            continue
        identity = isinstance(transformer, FunctionTransformer) and transformer.func is None
        if identity or (isinstance(transformer, str) and transformer == "passthrough"):
            if list(columns) != list(NUMERIC):
                raise ValueError(f"unexpected passthrough columns {list(columns)}")
            layout["numeric_start"] = offset
            offset += len(columns)
        elif isinstance(transformer, OneHotEncoder):
            for column, categories in zip(columns, transformer.categories_):
                offsets = {str(c): offset + i for i, c in enumerate(categories)}
                layout["onehot"].append((column, offsets))
                offset += len(categories)
        elif isinstance(transformer, TargetEncoder):
            for column, categories, encodings in zip(columns, transformer.categories_,
                                                     transformer.encodings_):
                table = {str(c): float(v) for c, v in zip(categories, encodings)}
                layout["target"].append((column, offset, table, float(transformer.target_mean_)))
                if column == "locality_key":
                    layout["vocabulary"] = frozenset(k for k in table
                                                     if not k.endswith(f":{OTHER_LOCALITY}"))
                offset += 1
        else:
            raise ValueError(f"unsupported transformer {name!r} ({type(transformer).__name__})")
    layout["width"] = offset
    expected = pipeline.named_steps["regressor"].n_features_in_
    if layout["numeric_start"] is None or offset != expected:
        raise ValueError("the fitted pipeline does not have the expected feature layout")
    _LAYOUTS[pipeline] = layout
    return layout
