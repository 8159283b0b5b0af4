"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Tests of the rent predictor: a real build into a temporary volume, then real predictions.
Tagline: Trust the price only after you have haggled with it.

One small build (``--rows 2000``) runs as a real subprocess with
``CEREBRO_DATA_VOLUME`` pointing at a temporary folder; the tests then load
it through ``ModelHandle.refresh`` and call ``predict`` exactly as the
platform does: validate the payload against the declared inputs, then call.
"""

import hashlib
import json
import struct
import subprocess
import sys

import pytest

from cerebro.dispatch import Call, Dispatcher
from cerebro.endpoint import build_endpoint
from cerebro.errors import InvalidPayload, ModelNotReady
from cerebro.models import ModelHandle
from cerebro.registry import Registry
from cerebro.settings import load_settings
from support import build_module, published_version_dir

MODULE = "rent_predictor"
LISTING = {"city": "mumbai", "locality": "Andheri West", "bhk": 3, "area_sqft": 1500,
           "bathrooms": 3, "floor": 5, "total_floors": 12, "age_years": 5}


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """Run a small real build into a temporary data volume; return ``(volume, process)``."""
    volume = tmp_path_factory.mktemp("volume")
    return volume, build_module(MODULE, volume, "--rows", "2000", timeout=180, cwd=volume)


@pytest.fixture(scope="module")
def version_dir(build):
    """The folder of the version the build published."""
    return published_version_dir(build[0], MODULE)


@pytest.fixture(scope="module")
def predict(build):
    """``predict(**payload)``: validate like the platform, then call the expose function."""
    from modules.rent_predictor import expose

    expose.MODEL.refresh(build[0])
    endpoint = build_endpoint(MODULE, expose.predict)
    dispatcher = Dispatcher(Registry(load_settings(), {}))  # no module in trial or monitored

    def call(**payload):
        """Validate ``payload`` against the declared inputs, call ``predict`` (a batch of one)."""
        return dispatcher.run(Call(endpoint, endpoint.schema.validate(payload)))

    return call


def test_build_prints_metrics_progress_and_location(build, version_dir):
    """The build prints MAE, R² and where it published; the progress bar goes to stderr."""
    _, result = build
    assert "MAE" in result.stdout and "R²" in result.stdout
    assert f"published version {version_dir.name}" in result.stdout
    assert str(version_dir) in result.stdout
    for stage in ("extract", "transform", "fit", "evaluate", "report", "publish"):
        assert stage in result.stderr
    assert "6/6" in result.stderr


def test_metadata_has_sha256_metrics_and_params(version_dir):
    """metadata.json records the artifact's real sha256, held-out metrics and build parameters."""
    meta = json.loads((version_dir / "metadata.json").read_text())
    entry = meta["artifacts"]["model"]
    digest = hashlib.sha256((version_dir / entry["file"]).read_bytes()).hexdigest()
    assert entry["sha256"] == digest
    assert {"mae", "r2", "mape", "n_train", "n_test"} <= set(meta["metrics"])
    assert meta["metrics"]["n_train"] + meta["metrics"]["n_test"] >= 1900
    assert meta["metrics"]["r2"] > 0.8
    assert meta["metrics"]["mae"] > 0
    assert meta["params"]["rows"] == 2000 and meta["params"]["loss"] == "gamma"
    assert sorted(meta["files"]) == ["profile.json", "report.md", "report.png"]


def test_report_png_is_a_real_png_and_report_md_has_metrics(version_dir):
    """report.png is a real PNG of a sensible size; report.md has metrics, data and parameters."""
    png = (version_dir / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 600 and height >= 300
    text = (version_dir / "report.md").read_text()
    for needle in ("| mae |", "| r2 |", "rows generated | 2000", "HistGradientBoostingRegressor"):
        assert needle in text


def test_prediction_shape_and_version(predict, version_dir):
    """A prediction is a rounded INR amount tagged with the version that made it."""
    result = predict(**LISTING)
    assert set(result) == {"rent", "currency", "period", "locality_known", "model_version"}
    assert result["currency"] == "INR" and result["period"] == "month"
    assert result["model_version"] == version_dir.name
    assert isinstance(result["rent"], float) and result["rent"] % 10 == 0
    assert 20_000 < result["rent"] < 400_000
    assert result["locality_known"] is True


def test_declared_example_is_a_valid_listing(predict):
    """The example shown in /openapi.json and /v1/modules validates and predicts."""
    from modules.rent_predictor import expose

    assert predict(**expose.EXAMPLE)["rent"] > 0


def test_mumbai_costs_more_than_cheaper_cities(predict):
    """The same 3 BHK, 1500 sqft flat costs more in Mumbai than in Pune, Kolkata or Ahmedabad."""
    listing = {**LISTING, "locality": "nowhere in particular"}
    mumbai = predict(**{**listing, "city": "mumbai"})["rent"]
    for city in ("pune", "kolkata", "ahmedabad"):
        assert mumbai > predict(**{**listing, "city": city})["rent"]


def test_larger_area_means_higher_rent_on_average(predict):
    """Across cities, rent grows with area: big flats beat small ones on average, and strongly."""
    small, large = [], []
    for city, locality in (("mumbai", "Powai"), ("bangalore", "Whitefield"), ("pune", "Aundh"),
                           ("delhi", "Dwarka"), ("hyderabad", "Kondapur")):
        place = {**LISTING, "city": city, "locality": locality}
        small += [predict(**{**place, "area_sqft": area})["rent"] for area in (900, 1000, 1100)]
        large += [predict(**{**place, "area_sqft": area})["rent"] for area in (1900, 2000, 2100)]
    assert sum(large) / len(large) > 1.4 * sum(small) / len(small)


def test_premium_locality_and_furnishing_cost_more(predict):
    """A premium locality beats a value one in its city; full furnishing beats none on average."""
    assert (predict(**{**LISTING, "locality": "Bandra West"})["rent"]
            > predict(**{**LISTING, "locality": "Mira Road"})["rent"])
    full = unfurnished = 0.0
    for city in ("mumbai", "bangalore", "pune", "chennai", "delhi"):
        full += predict(**{**LISTING, "city": city, "furnishing": "full"})["rent"]
        unfurnished += predict(**{**LISTING, "city": city, "furnishing": "unfurnished"})["rent"]
    assert full > unfurnished


def test_unknown_locality_is_priced_and_flagged(predict):
    """An unknown locality still gets a sensible price, and the answer says it was unknown."""
    result = predict(**{**LISTING, "locality": "Brand New Township"})
    assert result["locality_known"] is False
    assert 20_000 < result["rent"] < 400_000
    assert predict(**{**LISTING, "locality": "  andheri   WEST "})["locality_known"] is True


def test_defaults_are_applied_by_validation(predict):
    """furnishing, parking and amenities are optional; amenities add to the rent on average."""
    bare = predict(**LISTING)
    everything = ["gym", "pool", "lift", "security", "power_backup", "clubhouse"]
    rich = predict(**{**LISTING, "amenities": everything, "parking": "both"})
    assert rich["rent"] > bare["rent"]


@pytest.mark.parametrize("change, field", [
    ({"floor": 13}, "floor"),
    ({"area_sqft": 200}, "area_sqft"),
    ({"amenities": ["gym", "helipad"]}, "amenities"),
    ({"bhk": 11}, "bhk"),
    ({"bhk": 0}, "bhk"),
    ({"area_sqft": 50}, "area_sqft"),
    ({"area_sqft": 25000}, "area_sqft"),
    ({"floor": -1}, "floor"),
    ({"city": "atlantis"}, "city"),
    ({"furnishing": "luxurious"}, "furnishing"),
    ({"bhk": "3"}, "bhk"),
    ({"colour": "blue"}, "colour"),
])
def test_invalid_listings_are_rejected_naming_the_field(predict, change, field):
    """Range, choice, type and cross-field problems raise InvalidPayload naming the field."""
    with pytest.raises(InvalidPayload) as caught:
        predict(**{**LISTING, **change})
    assert caught.value.field == field


def test_missing_required_field_is_rejected(predict):
    """A listing without its area is a client error naming the field."""
    listing = dict(LISTING)
    del listing["area_sqft"]
    with pytest.raises(InvalidPayload) as caught:
        predict(**listing)
    assert caught.value.field == "area_sqft"


def test_fast_path_matches_the_pipeline(build):
    """The pandas-free single-row path gives exactly what ``pipeline.predict`` gives."""
    import numpy as np
    import pandas as pd

    from modules.rent_predictor.src import model, transform

    handle = ModelHandle(MODULE)
    pipeline = handle.load(build[0])
    vocabulary = model.locality_vocabulary(pipeline)
    listings = [
        {**LISTING, "furnishing": "semi", "parking": "none", "amenities": []},
        {**LISTING, "city": "pune", "locality": "Baner", "furnishing": "full", "parking": "both",
         "amenities": ["gym", "lift"], "floor": 0},
        {**LISTING, "city": "delhi", "locality": "Unknown Enclave", "furnishing": "unfurnished",
         "parking": "four_wheeler", "amenities": ["pool"], "floor": 12, "bhk": 1, "area_sqft": 400},
    ]
    records = [transform.engineer(listing, vocabulary) for listing in listings]
    records.append({**records[0], "locality_key": "nowhere:never heard of it", "city": "atlantis"})
    fast = np.array([model.predict_one(pipeline, record) for record in records])
    slow = pipeline.predict(pd.DataFrame(records, columns=list(transform.FEATURES)))
    np.testing.assert_allclose(fast, slow, rtol=1e-12)
    np.testing.assert_allclose(model.predict_many(pipeline, records), slow, rtol=1e-12)


def test_treelite_prices_every_listing_as_scikit_learn_does(build):
    """The served path runs the trees through treelite: over 3,000 listings it agrees with
    the regressor's own ``predict`` to 1e-12 and gives the same rounded rent every time."""
    import numpy as np

    from modules.rent_predictor.src import extract, model, transform
    from modules.rent_predictor.src.utilities import round_rent

    pipeline = ModelHandle(MODULE).load(build[0])
    vocabulary = model.locality_vocabulary(pipeline)
    frame, _ = transform.clean(extract.extract(3000, seed=7))
    records = transform.features(frame, vocabulary).to_dict("records")
    served = np.array(model.predict_many(pipeline, records))
    matrix = np.vstack([model.feature_vector(pipeline, record) for record in records])
    own = pipeline.named_steps["regressor"].predict(matrix)
    assert len(records) > 2500
    np.testing.assert_allclose(served, own, rtol=1e-12)
    assert [round_rent(x) for x in served] == [round_rent(x) for x in own]


def test_a_treelite_that_reads_the_model_differently_refuses_the_version(build, monkeypatch):
    """``model.prepare`` (run as each version loads) checks treelite against the regressor's
    own predict: a treelite giving the log of the rent (as versions before 4.8 did with the
    gamma loss) makes the version fail to load instead of serving wrong rents."""
    import numpy as np

    from modules.rent_predictor.src import model

    pipeline = ModelHandle(MODULE).load(build[0])
    model.prepare(pipeline)  # agrees: no error
    monkeypatch.setattr(model, "_predict_matrix",
                        lambda p, rows: np.log(p.named_steps["regressor"].predict(rows)))
    with pytest.raises(ValueError, match="treelite disagrees"):
        model.prepare(pipeline)


def test_predict_without_a_model_is_not_ready(tmp_path, monkeypatch):
    """Before any build, predict raises ModelNotReady (a 503), not an internal error."""
    from modules.rent_predictor import expose

    handle = ModelHandle(MODULE)
    handle.refresh(tmp_path)
    assert handle.state == "no_model"
    monkeypatch.setattr(expose, "MODEL", handle)
    with pytest.raises(ModelNotReady):
        expose.predict([{**LISTING, "furnishing": "semi", "parking": "none", "amenities": []}])


def test_extract_is_deterministic_and_realistic():
    """Same seed, same rows; another seed, other rows; rents, areas and cities look real."""
    from modules.rent_predictor.src import extract

    first, again = extract.extract(1500, 3), extract.extract(1500, 3)
    other = extract.extract(1500, 4)
    assert first.equals(again)
    assert not first.equals(other)
    assert len(first) == 1500 and list(first.columns) == list(extract.COLUMNS)
    assert first["city"].str.strip().str.lower().nunique() == 10
    assert 15_000 < first["rent"].median() < 80_000
    area = first.groupby("bhk")["area_sqft"].median()
    assert area[1] < area[2] < area[3]


def test_cli_help_shows_defaults_and_rows_has_a_floor():
    """``--help`` shows the defaults; ``--rows`` below 1000 is a usage error (exit 2)."""
    run = [sys.executable, "-m", "modules.rent_predictor.src.build"]
    shown = subprocess.run(run + ["--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    assert "(default: 50000)" in text and "(default: 42)" in text
    refused = subprocess.run(run + ["--rows", "999"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "at least 1000" in refused.stderr


def test_importing_expose_is_light():
    """Importing expose.py loads no pandas, scikit-learn or matplotlib."""
    code = ("import sys, modules.rent_predictor.expose as e; "
            "heavy = ('pandas', 'sklearn', 'matplotlib', 'scipy'); "
            "print(sorted(m for m in heavy if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
