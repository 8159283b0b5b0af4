"""Drift measures on known distributions: the reference profile of a training sample, live
values counted by the real counters and written per process as the services do, merged back
and judged. No drift stays below the PSI noise a chi-square bound predicts; a shifted number,
a rise in missing values and unseen categories are each flagged, and only they."""

import random

import pytest
from scipy.stats import chi2

from cerebro.monitoring import drift, profile
from cerebro.monitoring.live import VersionCounts, monitoring_dir
from cerebro.monitoring.policy import Monitoring

CITIES = ("mumbai", "pune", "delhi", "chennai")
AMENITIES = ("lift", "gym", "pool", "security")


def rows(n, seed, scale=1.0, missing=0.0, new_city=0.0):
    """Listings: area ~ lognormal (times ``scale``), a city, a few amenities; ``missing`` of
    the areas absent, ``new_city`` of the cities never seen in training."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        city = "kochi" if rng.random() < new_city else rng.choices(CITIES, (4, 3, 2, 1))[0]
        area = None if rng.random() < missing else round(rng.lognormvariate(6.8, 0.4) * scale)
        out.append({"area_sqft": area, "city": city, "bhk": rng.randint(1, 4),
                    "amenities": sorted(a for a in AMENITIES if rng.random() < 0.4)})
    return out


def _judge(tmp_path, live, policy=Monitoring()):
    """Profile 20,000 training rows, count ``live`` as a service would, and report."""
    training = rows(20_000, seed=1)
    reference = profile.build(training, {"rent": [r["bhk"] * 10_000 for r in training]})
    root = tmp_path / "vol"
    version = root / "m" / "versions" / "v1"
    version.mkdir(parents=True)
    (version / profile.FILE).write_text(__import__("json").dumps(reference))
    counts = VersionCounts("m", "v1", reference)
    for row in live:
        counts.observe(row, {"rent": row["bhk"] * 10_000, "model_version": "v1"})
    counts.flush(monitoring_dir(tmp_path / "state", "m", "v1"), "api-test-1")
    return drift.report(root, tmp_path / "state", "m", "v1", 1.0, policy)


def test_no_drift_stays_under_the_noise_bound(tmp_path):
    """Live rows from the training distribution: nothing drifts, and every field's PSI is
    below the 99.99 % chi-square bound of its bins for these sample sizes."""
    found = _judge(tmp_path, rows(2_000, seed=7))
    assert found["samples"] == 2_000 and found["drifted"] == []
    for field in found["fields"]:
        bins = len(field["labels"])
        bound = chi2.ppf(0.9999, bins - 1) * (1 / 2_000 + 1 / 20_000)
        assert field["psi"] < bound, (field["field"], field["psi"], bound)
        assert field["judged"] and not field["reasons"]


def test_a_shifted_number_is_flagged_and_only_it(tmp_path):
    """Areas three times larger: area_sqft drifts; the rest do not."""
    found = _judge(tmp_path, rows(2_000, seed=7, scale=3.0))
    assert found["drifted"] == ["area_sqft"]
    area = found["fields"][0]
    assert area["field"] == "area_sqft" and "psi" in area["reasons"]
    assert area["psi"] > 1.0 and area["out_of_range"] > 0.05


def test_missing_values_and_unseen_categories_are_flagged(tmp_path):
    """A fifth of areas missing and a fifth of cities new: both flagged for those reasons."""
    found = _judge(tmp_path, rows(2_000, seed=7, missing=0.2, new_city=0.2))
    by_name = {f["field"]: f for f in found["fields"]}
    assert "missing" in by_name["area_sqft"]["reasons"]
    assert "unseen" in by_name["city"]["reasons"]
    assert not by_name["bhk"]["drifted"] and not by_name["amenities"]["drifted"]


def test_too_few_samples_are_not_judged(tmp_path):
    """Under min_samples a window says so and flags nothing, however far it moved."""
    found = _judge(tmp_path, rows(50, seed=7, scale=3.0), Monitoring(min_samples=200))
    assert found["drifted"] == [] and not any(f["judged"] for f in found["fields"])


def test_thresholds_come_from_the_policy(tmp_path):
    """A module's own threshold for a field replaces the default."""
    found = _judge(tmp_path, rows(2_000, seed=7, scale=1.15),
                   Monitoring(thresholds={"area_sqft": 5.0}))
    assert "area_sqft" not in found["drifted"]
    assert next(f for f in found["fields"] if f["field"] == "area_sqft")["psi_threshold"] == 5.0


@pytest.mark.parametrize("values,kind", [
    ([1, 2.5, None], "numeric"), (["a", None], "categorical"), ([["x"], [], None], "items"),
    ([True, False], "categorical")])
def test_kinds(values, kind):
    """A field's kind follows its values."""
    assert profile.kind_of(values) == kind
