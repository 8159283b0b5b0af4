"""The Java example (examples/java/pubsub) against a live `cerebro subscribe`: compiled with the
Debian RabbitMQ Java client, it publishes rent_predictor requests and reads every result."""

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import url_for_pika
from support import REPO

JARS = [Path("/usr/share/java/amqp-client.jar"), Path("/usr/share/java/slf4j-api.jar"),
        Path("/usr/share/java/slf4j-nop.jar")]
SOURCE = REPO / "examples" / "java" / "pubsub" / "CerebroPubSub.java"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The example compiled into a temporary folder."""
    if shutil.which("javac") is None or not all(jar.exists() for jar in JARS):
        pytest.skip("needs javac and librabbitmq-client-java (apt-get install "
                    "librabbitmq-client-java)")
    out = tmp_path_factory.mktemp("java-pubsub")
    subprocess.run(["javac", "-cp", str(JARS[0]), "-d", str(out), str(SOURCE)], check=True,
                   timeout=120)
    return out


def test_java_main_app_publishes_and_reads_results(compiled, pubsub, built_volume):
    """50 requests from Java -> 50 succeeded results read back by correlation id."""
    pubsub.subscriber(package="modules", modules="rent_predictor",
                      CEREBRO_DATA_VOLUME=built_volume).consuming()
    pubsub.names.extra_queues.append(pubsub.names.results + ".main-app-example")
    classpath = ":".join([str(compiled), *map(str, JARS)])
    run = subprocess.run(["java", "-cp", classpath, "CerebroPubSub", url_for_pika(pubsub.url),
                          "50", pubsub.names.requests, pubsub.names.results,
                          "rent_predictor.predict"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "50 requests, 50 results (0 failed)" in run.stdout
