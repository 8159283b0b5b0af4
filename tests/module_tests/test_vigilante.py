"""Tests of vigilante: a real build into a temporary volume, then real screening through the
dispatch core; the pure-Python fast path must agree with scikit-learn."""

import json

import numpy as np
import pytest

from cerebro.errors import InvalidPayload
from cerebro.core import Core
from cerebro.settings import load_settings
from modules.vigilante.expose import EXAMPLE
from modules.vigilante.src import extract, model, transform
from modules.vigilante.src.utilities import KINDS
from support import build_module, published_version_dir


CLEAN_LISTING = {"listing_id": "L1", "city": "pune", "bhk": 2, "area_sqft": 950, "rent": 28500,
                 "photos": 9, "description_length": 300, "poster_listings_30d": 1,
                 "poster_account_age_days": 400, "phone_shared_accounts": 0,
                 "duplicate_photo_share": 0.02, "contact_in_description": False,
                 "verified_owner": True}
BROKER_LISTING = {**CLEAN_LISTING, "listing_id": "L2", "poster_listings_30d": 25,
                  "phone_shared_accounts": 6, "contact_in_description": True,
                  "verified_owner": False, "description_length": 900}


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    """A data volume with a small real vigilante build."""
    root = tmp_path_factory.mktemp("volume")
    result = build_module("vigilante", root, "--rows", "8000")
    assert "published version" in result.stdout
    return root


@pytest.fixture(scope="module")
def dispatcher(volume):
    """The dispatch core over vigilante only, its model loaded."""
    settings = load_settings().replace(data_volume=volume, modules=("vigilante",))
    core = Core.start("test", settings, watch=False, configure_logging=False)
    assert core.registry.module("vigilante").ready
    return core.dispatcher


def screen(dispatcher, payload):
    """Validate and run ``vigilante.screen`` as every transport does."""
    return dispatcher.run(dispatcher.prepare("vigilante", "screen", payload), service="test")


def test_screen_is_declared_for_the_listings_topic(dispatcher):
    """`screen` handles Kafka topic `listings` and ignores extra event fields."""
    topics = dispatcher.registry.topics()
    assert [ep.key for ep in topics["listings"]] == ["vigilante.screen"]
    result = screen(dispatcher, {**EXAMPLE, "event_id": "x", "extra": 1})
    assert result["listing_id"] == EXAMPLE["listing_id"]


def test_verdicts_on_clear_cases(dispatcher):
    """An ordinary owner listing is clean; a cheap thin one is fake; a busy account is a broker."""
    clean = screen(dispatcher, CLEAN_LISTING)
    assert clean["verdict"] == "clean" and not clean["suspicious"] and clean["score"] < 0.2
    fake = screen(dispatcher, EXAMPLE)
    assert fake["verdict"] == "fake" and fake["suspicious"] and fake["score"] > 0.8
    broker = screen(dispatcher, BROKER_LISTING)
    assert broker["verdict"] == "broker"
    assert set(fake["probabilities"]) == set(KINDS)
    assert abs(sum(fake["probabilities"].values()) - 1) < 1e-3
    assert fake["model_version"]
    json.dumps(fake)


def test_invalid_listing_is_a_client_error(dispatcher):
    """Missing and out-of-range fields are 400s naming the field."""
    with pytest.raises(InvalidPayload) as missing:
        dispatcher.prepare("vigilante", "screen", {"listing_id": "x"})
    assert missing.value.field in ("bhk", "area_sqft", "rent")
    with pytest.raises(InvalidPayload) as bad:
        dispatcher.prepare("vigilante", "screen", {**EXAMPLE, "duplicate_photo_share": 2})
    assert bad.value.field == "duplicate_photo_share"


def test_fast_path_matches_scikit_learn(dispatcher):
    """Features and probabilities of the pure-Python path equal the vectorised/sklearn ones."""
    fitted = dispatcher.registry.module("vigilante").handles[0].get()
    frame = extract.extract(2000, seed=5)
    matrix = transform.feature_matrix(frame, fitted["rent_levels"])
    rows = [transform.features(r, fitted["rent_levels"]) for r in frame.to_dict("records")]
    assert np.allclose(np.array(rows), matrix, atol=1e-12)
    expected = model.predict_many(fitted, matrix)
    got = np.array([[model.probabilities(fitted, row)[k] for k in KINDS] for row in rows])
    assert np.allclose(got, expected, atol=1e-9)


def test_build_is_deterministic_and_good(volume):
    """Same seed, same data; the published metrics show a useful model."""
    a, b = extract.extract(3000, seed=11), extract.extract(3000, seed=11)
    assert a.equals(b)
    folder = published_version_dir(volume, "vigilante")
    meta = json.loads((folder / "metadata.json").read_text())
    metrics = meta["metrics"]
    assert metrics["roc_auc_suspicious"] > 0.95 and metrics["accuracy"] > 0.9
    assert 0.05 <= metrics["threshold"] <= 0.95
    assert (folder / "report.png").stat().st_size > 1000
