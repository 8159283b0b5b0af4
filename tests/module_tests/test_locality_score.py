"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Tests of the locality score: a real calibration into a temporary volume, then real scores.
Tagline: Walk further, score lower; the formula must agree.

One small build (``--rows 2000``) runs as a real subprocess with
``CEREBRO_DATA_VOLUME`` pointing at a temporary folder; the tests then load
it through ``ModelHandle.refresh`` and call ``score`` exactly as the platform
does: validate the payload against the declared inputs, then call.
"""

import hashlib
import json
import subprocess
import sys
import time

import pytest

from cerebro.endpoint import build_endpoint
from cerebro.errors import InvalidPayload
from cerebro.models import ModelHandle
from support import build_module, published_version_dir

MODULE = "locality_score"
DISTANCES = {"metro_km": 1.2, "bus_stop_km": 0.3, "school_km": 0.7, "hospital_km": 1.5,
             "park_km": 0.6, "market_km": 0.5}
GRADES = ("A+", "A", "B", "C", "D")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """Run a small real build into a temporary data volume; return ``(volume, process)``."""
    volume = tmp_path_factory.mktemp("volume")
    return volume, build_module(MODULE, volume, "--rows", "2000", timeout=120, cwd=volume)


@pytest.fixture(scope="module")
def version_dir(build):
    """The folder of the version the build published."""
    return published_version_dir(build[0], MODULE)


@pytest.fixture(scope="module")
def score(build):
    """``score(**payload)``: validate like the platform, then call the expose function."""
    from modules.locality_score import expose

    expose.MODEL.refresh(build[0])
    endpoint = build_endpoint(MODULE, expose.score)

    def call(**payload):
        """Validate ``payload`` against the declared inputs and call ``score``."""
        return endpoint.func(**endpoint.schema.validate(payload))

    return call


def _scaled(factor):
    """Every distance of :data:`DISTANCES` multiplied by ``factor``."""
    return {name: value * factor for name, value in DISTANCES.items()}


def test_build_prints_metrics_and_location(build, version_dir):
    """The build prints agreement with ratings and where it published; progress goes to stderr."""
    _, result = build
    assert "Spearman" in result.stdout
    assert f"published version {version_dir.name}" in result.stdout
    assert str(version_dir) in result.stdout
    assert "6/6" in result.stderr and "calibrate" in result.stderr


def test_metadata_has_sha256_and_metrics(version_dir):
    """metadata.json records the calibration's real sha256 and its agreement with ratings."""
    meta = json.loads((version_dir / "metadata.json").read_text())
    entry = meta["artifacts"]["model"]
    assert entry["sha256"] == hashlib.sha256((version_dir / entry["file"]).read_bytes()).hexdigest()
    assert meta["metrics"]["spearman_rating"] > 0.7
    assert meta["metrics"]["localities"] > 1900
    assert abs(sum(meta["params"]["weights"].values()) - 1.0) < 1e-3
    assert (version_dir / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(meta["files"]) == ["profile.json", "report.md", "report.png"]


def test_calibration_is_a_plain_dict(build):
    """The published model is plain data: JSON-able, so loading it needs none of our code."""
    calibration = ModelHandle(MODULE).load(build[0])
    assert isinstance(calibration, dict)
    json.dumps(calibration)
    assert set(calibration["half_life_km"]) >= {"mumbai", "delhi", "other"}


def test_result_shape(score, version_dir):
    """A score is 0-10 with a grade, every component in [0, 1], and the version that made it."""
    result = score(**DISTANCES, amenities=["atm", "cafe"], city="pune")
    assert set(result) == {"score", "grade", "components", "city", "model_version"}
    assert 0.0 <= result["score"] <= 10.0 and result["grade"] in GRADES
    assert set(result["components"]) == {"metro", "bus_stop", "school", "hospital", "park",
                                         "market", "amenities"}
    assert all(0.0 <= value <= 1.0 for value in result["components"].values())
    assert result["components"]["amenities"] == 0.25
    assert result["model_version"] == version_dir.name and result["city"] == "pune"


def test_declared_example_is_a_valid_payload(score):
    """The example shown in /openapi.json and /v1/modules validates and scores."""
    from modules.locality_score import expose

    assert 0.0 <= score(**expose.EXAMPLE)["score"] <= 10.0


def test_score_decreases_as_distances_grow(score):
    """Scaling every distance up lowers the score strictly, down to 0 and grade D far away."""
    values = [score(**_scaled(f), city="bangalore")["score"] for f in (0.25, 0.5, 1, 2, 4)]
    assert values == sorted(values, reverse=True) and len(set(values)) == len(values)
    far = score(**_scaled(20), city="bangalore")
    assert far["score"] == 0.0 and far["grade"] == "D"


@pytest.mark.parametrize("name", sorted(DISTANCES))
def test_each_distance_alone_never_raises_the_score(score, name):
    """Moving one need further away never raises the score and strictly lowers its component."""
    near = score(**DISTANCES, city="mumbai")
    far = score(**{**DISTANCES, name: DISTANCES[name] * 3}, city="mumbai")
    assert far["score"] <= near["score"]
    component = name[:-3]
    assert far["components"][component] < near["components"][component]


def test_amenities_raise_the_score(score):
    """More amenity kinds within a walk give a higher score; duplicates count once."""
    none = score(**DISTANCES)["score"]
    some = score(**DISTANCES, amenities=["atm", "pharmacy"])["score"]
    more = score(**DISTANCES, amenities=["atm", "pharmacy", "mall", "supermarket", "cafe"])["score"]
    assert none < some < more
    assert score(**DISTANCES, amenities=["atm", "atm", "pharmacy"])["score"] == some


def test_best_and_worst_localities(score):
    """Everything next door is a 10 (A+); everything at the limits is a 0 (D)."""
    everything = ["atm", "bank", "cafe", "gym", "mall", "pharmacy", "restaurant", "supermarket"]
    best = score(**{n: 0.0 for n in DISTANCES}, amenities=everything)
    assert best["score"] == 10.0 and best["grade"] == "A+"
    worst = score(metro_km=50, bus_stop_km=25, school_km=25, hospital_km=50, park_km=25,
                  market_km=25)
    assert worst["score"] == 0.0 and worst["grade"] == "D"


def test_city_calibration_matters(score):
    """A metro 3 km away is ordinary in sparse Ahmedabad and poor in dense Delhi."""
    ahmedabad = score(**{**DISTANCES, "metro_km": 3.0}, city="ahmedabad")
    delhi = score(**{**DISTANCES, "metro_km": 3.0}, city="delhi")
    assert ahmedabad["components"]["metro"] > delhi["components"]["metro"]
    assert score(**DISTANCES)["city"] == "other"


@pytest.mark.parametrize("change, field", [
    ({"metro_km": -0.1}, "metro_km"),
    ({"metro_km": 51}, "metro_km"),
    ({"park_km": 26}, "park_km"),
    ({"school_km": "near"}, "school_km"),
    ({"amenities": ["atm", "casino"]}, "amenities"),
    ({"amenities": "atm"}, "amenities"),
    ({"city": "gotham"}, "city"),
    ({"noise_db": 40}, "noise_db"),
])
def test_invalid_inputs_are_rejected_naming_the_field(score, change, field):
    """Out-of-range, mistyped, unknown and undeclared inputs raise InvalidPayload with the field."""
    with pytest.raises(InvalidPayload) as caught:
        score(**{**DISTANCES, **change})
    assert caught.value.field == field


def test_score_is_instant(score):
    """A thousand validated calls take well under a second (no network, no numpy at call time)."""
    started = time.perf_counter()
    for _ in range(1000):
        score(**DISTANCES, amenities=["atm"], city="chennai")
    assert time.perf_counter() - started < 1.0


def test_extract_is_deterministic():
    """Same seed, same localities; another seed, other localities."""
    from modules.locality_score.src import extract

    first, again = extract.extract(1200, 5), extract.extract(1200, 5)
    other = extract.extract(1200, 6)
    assert first.equals(again) and not first.equals(other)
    assert len(first) == 1200 and first["city"].nunique() == 10


def test_cli_help_shows_defaults_and_rows_has_a_floor():
    """``--help`` shows the defaults; ``--rows`` below 1000 is a usage error (exit 2)."""
    run = [sys.executable, "-m", "modules.locality_score.src.build"]
    shown = subprocess.run(run + ["--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "(default: 20000)" in " ".join(shown.stdout.split())
    refused = subprocess.run(run + ["--rows", "10"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2


def test_importing_expose_is_light():
    """Importing expose.py loads no pandas, scipy, scikit-learn or matplotlib."""
    code = ("import sys, modules.locality_score.expose as e; "
            "heavy = ('pandas', 'sklearn', 'matplotlib', 'scipy'); "
            "print(sorted(m for m in heavy if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
