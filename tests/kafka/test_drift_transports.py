"""Drift monitoring fed by every transport, end to end: two REST processes and a Kafka
consumer count the same module into one node's state directory; `GET /v1/modules/<m>/drift`
merges them. Traffic like the training data flags nothing; traffic with the input tripled
flags it and the prediction; then Sherlock's digest, sent through a real SMTP server, names
the drifting model in its subject and the field in its body (and no mail goes out when
nothing drifted and nothing failed)."""

import email
import json
import random
import subprocess
import sys
import time
from email import policy as email_policy
from pathlib import Path

from aiosmtpd.controller import Controller

from cerebro.monitoring import predictions, profile
from cerebro.settings import load_settings
from conftest import STATIC, produce, wait_for
from kafka_broker import fresh_name
from lifecycle_support import MODULE, PACKAGE, publish
from support import cerebro_env, free_port, run_cli


def _training(n=5_000, seed=1):
    """The training inputs and the model's answers (y = 2x; label high over 10)."""
    rng = random.Random(seed)
    xs = [round(rng.gauss(5.0, 1.0), 4) for _ in range(n)]
    ys = [round(x * 2, 6) for x in xs]
    return [{"x": x} for x in xs], {"y": ys, "label": ["high" if y > 10 else "low" for y in ys]}


class Inbox:
    """Keeps every message the SMTP server receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        """Store the message."""
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email_policy.default))
        return "250 OK"


def _digest(env, port):
    """Run `sherlock digest` as cron would; returns its exit code and output."""
    proc = subprocess.run([sys.executable, "-c", "from sherlock.cli import main; main()",
                           "digest", "--hours", "1"], env=cerebro_env(
        **env, SHERLOCK_SMTP_HOST="127.0.0.1", SHERLOCK_SMTP_PORT=str(port),
        SHERLOCK_RECIPIENTS="oncall@example.com", SHERLOCK_PROJECT="Cerebro"),
        capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def test_drift_from_rest_and_kafka_merged_flagged_and_mailed(broker, receiver, consumers,
                                                             server_factory, tmp_path):
    """No drift, then x tripled on both transports: x and both outputs flagged, the digest
    says so."""
    volume, state = tmp_path / "volume", tmp_path / "state"
    inputs, outputs = _training()
    publish(volume, profile=profile.build(inputs, outputs))
    topic = fresh_name("versioned")
    broker.create_topics(topic, partitions=2)
    env = {**PACKAGE, "CEREBRO_DATA_VOLUME": volume, "CEREBRO_STATE_DIR": state,
           "CEREBRO_DRIFT_SAMPLE": "1.0", "CEREBRO_RELOAD_INTERVAL": "0.3",
           "CEREBRO_TEST_VERSIONED_TOPIC": topic, "SHERLOCK_DIR": tmp_path / "sherlock"}
    server = server_factory(env, processes=2, ready=True)
    consumer = consumers(receiver().url, **env, **STATIC)
    smtp_port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        rng = random.Random(2)
        sent = _send(server, broker, topic, [rng.gauss(5.0, 1.0) for _ in range(600)], "a")
        found = _drift(server, sent)
        assert found["drifted"] == [] and found["profile"] is True
        services = {p.name.split("-")[0] for p in (state / "monitoring" / MODULE).rglob("*.json")
                    if p.name != "flags.json"}
        assert services == {"api", "consumer"}
        code, out = _digest(env, smtp_port)
        assert code == 0 and inbox.messages == [], out  # nothing failed, nothing drifted

        total = sent + _send(server, broker, topic,
                             [3 * rng.gauss(5.0, 1.0) for _ in range(600)], "b")
        found = _drift(server, total)
        assert set(found["drifted"]) == {"x", "y", "label"}, found["drifted"]
        assert found["fields"][0]["field"] in {"x", "y"} and found["fields"][0]["psi"] > 0.2
        code, _, day = server.get(f"/v1/modules/{MODULE}/drift?window=24h")
        assert code == 200 and day["window_hours"] == 24.0 and day["samples"] == total
        assert server.get(f"/v1/modules/{MODULE}/drift?window=7d")[0] == 400
        assert server.get("/v1/modules/nothing/drift")[0] == 404
        assert server.get(f"/v1/modules/{MODULE}/drift?version=20990101T000000000Z-x")[0] == 404

        code, out, _ = run_cli(env, "drift", MODULE, "--json")
        cli = json.loads(out)
        assert code == 1 and set(cli["drifted"]) == {"x", "y", "label"}
        assert Path(cli["png"]).read_bytes()[:4] == b"\x89PNG"
        code, out, _ = run_cli(env, "drift", MODULE, "--no-plot")
        assert code == 1 and "DRIFT (psi" in out and out.index(" x ") < out.index("label")

        log_settings = load_settings({"CEREBRO_DATA_VOLUME": str(volume)})
        logged = wait_for(lambda: [r for r in [list(predictions.read(log_settings, MODULE))]
                                   if len(r) >= total], 20, 0.2, "every call logged")[0]
        assert len(logged) == total
        assert all(set(r["inputs"]) <= {"x"} and "note" not in json.dumps(r) for r in logged)
        assert {r["version"] for r in logged} == {found["version"]}
        assert all(set(r["outputs"]) == {"y", "label"} for r in logged)

        code, out = _digest(env, smtp_port)
        assert code == 0, out
        [mail] = inbox.messages
        assert mail["Subject"].startswith(
            f"Sherlock detected 0 exceptions and 1 drifting model ({MODULE}) in Cerebro")
        body = mail.get_body(preferencelist=("plain",)).get_content()
        assert f"{MODULE}: x (input) PSI" in body and f"{MODULE}: y (prediction) PSI" in body
        assert f"{total:,} calls" in body
    finally:
        controller.stop()
    assert consumer.terminate() == 0


def _send(server, broker, topic, xs, tag):
    """Half of ``xs`` through REST (plain and batched), half through Kafka; returns the count
    once every Kafka event was handled."""
    half = len(xs) // 2
    for i, x in enumerate(xs[:half]):
        if i % 2:
            assert server.post(f"/v1/{MODULE}/predict", {"x": x, "note": "private"})[0] == 200
        else:
            assert server.post(f"/v1/{MODULE}/predict_many", {"x": x})[0] == 200
    produce(broker, topic, [{"event_id": f"{tag}{i}", "x": x} for i, x in enumerate(xs[half:])])
    return len(xs)


def _drift(server, expected):
    """The drift report once it counts ``expected`` samples (every process flushed)."""
    def ready():
        """The report when complete."""
        code, _, found = server.get(f"/v1/modules/{MODULE}/drift")
        return found if code == 200 and found["samples"] >= expected else None
    found = wait_for(ready, 60, 0.3, f"{expected} samples counted")
    assert found["samples"] == expected
    return found
