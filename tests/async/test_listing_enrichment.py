"""listing_enrichment end to end: a real amenities HTTP server, RabbitMQ, a worker and a
callback."""

import subprocess
import sys

import pytest

from conftest import SECRET, wait_for
from modules.listing_enrichment.src.utilities import neighbourhood
from receiver import Receiver
from support import REPO, AmenitiesServer, cerebro_env

LISTING = {"listing_id": "L-42", "latitude": 12.97, "longitude": 77.59, "bhk": 2,
           "area_sqft": 1100, "rent": 32000}


@pytest.fixture
def enrichment_env(async_env, tmp_path):
    """The async environment serving the real listing_enrichment module, built into the volume."""
    volume = tmp_path / "volume"
    subprocess.run([sys.executable, str(REPO / "modules/listing_enrichment/src/build.py"),
                    "--rows", "2000", "--volume", str(volume)], check=True,
                   env=cerebro_env(PYTHONPATH=str(REPO)), stdout=subprocess.DEVNULL)
    return dict(async_env, CEREBRO_MODULES_PACKAGE="modules", CEREBRO_MODULES="listing_enrichment",
                CEREBRO_DATA_VOLUME=str(volume))


def test_enrich_calls_the_amenities_service_and_calls_back(enrichment_env, server_factory,
                                                           worker_factory):
    amenities = AmenitiesServer()
    port = int(enrichment_env["CEREBRO_MAIN_APP_URL"].rsplit(":", 1)[1])
    rec = Receiver(SECRET, port=port)
    try:
        env = dict(enrichment_env, LISTING_ENRICHMENT_AMENITIES_URL=amenities.url)
        server = server_factory(env, ready=True)
        worker_factory(env)
        assert server.post("/v1/listing_enrichment/enrich", dict(LISTING, bhk=0))[0] == 400
        status, _, body = server.post("/v1/listing_enrichment/enrich", LISTING)
        assert status == 202, body
        [got] = rec.wait(1)
        assert got["verified"] and got["path"] == "/cerebro/callbacks/listing_enrichment/enrich"
        result = got["body"]["result"]
        assert got["body"]["status"] == "succeeded", got["body"]
        assert result["listing_id"] == "L-42"
        assert result["neighbourhood"] == neighbourhood(12.97, 77.59)
        assert 0 <= result["demand_probability"] <= 1
        assert result["demand_tier"] in ("high", "medium", "low")
        assert amenities.calls == [(12.97, 77.59)]

        amenities.stop()  # the external service goes away: a failed callback, typed
        status, _, body = server.post("/v1/listing_enrichment/enrich", LISTING)
        assert status == 202
        failed = [r for r in rec.wait(2) if r["body"]["task_id"] == body["task_id"]][0]
        assert failed["body"]["status"] == "failed"
        assert failed["body"]["error"]["type"] == "unavailable"
    finally:
        rec.stop()


def test_task_waits_for_a_missing_model_through_delayed_retries(async_env, tmp_path,
                                                                server_factory, worker_factory):
    """No model yet: the worker retries the task (countdown, native delayed delivery on quorum
    queues) on the module's own queue until the model is built, then runs it once."""
    volume = tmp_path / "late-volume"
    env = dict(async_env, CEREBRO_MODULES_PACKAGE="modules", CEREBRO_MODULES="listing_enrichment",
               CEREBRO_DATA_VOLUME=str(volume), CEREBRO_MODEL_RETRY_DELAY="0.5",
               CEREBRO_MODEL_WAIT="120")
    amenities = AmenitiesServer()
    port = int(env["CEREBRO_MAIN_APP_URL"].rsplit(":", 1)[1])
    rec = Receiver(SECRET, port=port)
    try:
        env["LISTING_ENRICHMENT_AMENITIES_URL"] = amenities.url
        server = server_factory(env)
        # only the module's queue: a retry routed anywhere else would never run
        worker = worker_factory(env, queues="listing_enrichment")
        status, _, body = server.post("/v1/listing_enrichment/enrich", LISTING)
        assert status == 202, body
        wait_for(lambda: worker.log().count("retrying in 1s") >= 2, timeout=30,
                 what="two retries while the model is missing")
        assert rec.received == []
        subprocess.run([sys.executable, str(REPO / "modules/listing_enrichment/src/build.py"),
                        "--rows", "2000", "--volume", str(volume)], check=True,
                       env=cerebro_env(PYTHONPATH=str(REPO)), stdout=subprocess.DEVNULL)
        [got] = rec.wait(1, timeout=60)
        assert got["verified"] and got["body"]["task_id"] == body["task_id"]
        assert got["body"]["status"] == "succeeded", got["body"]
        assert got["body"]["result"]["listing_id"] == "L-42"
        assert got["body"]["attempts"] >= 3
    finally:
        rec.stop()
        amenities.stop()
