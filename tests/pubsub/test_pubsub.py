"""Pub-sub over a real RabbitMQ with real `cerebro subscribe` processes: 1,000 round trips on
rent_predictor, kill -9 mid-stream, dead letters (bad messages, failing handlers, a message that
kills its subscriber), reply_to, and a RabbitMQ restart under a running subscriber."""

import time

from conftest import wait_for

RENT = {"city": "mumbai", "locality": "Andheri West", "bhk": 2, "area_sqft": 950,
        "bathrooms": 2, "floor": 7, "total_floors": 14, "age_years": 6, "furnishing": "semi",
        "parking": "four_wheeler", "amenities": ["lift", "security"]}


def test_thousand_requests_get_thousand_results(pubsub, built_volume):
    """1,000 rent_predictor requests -> 1,000 succeeded results with matching correlation ids."""
    pubsub.subscriber(package="modules", modules="rent_predictor",
                      CEREBRO_DATA_VOLUME=built_volume).consuming()
    client = pubsub.client()
    for i in range(1000):
        client.publish("rent_predictor.predict", dict(RENT, area_sqft=600 + (i % 50) * 10),
                       f"rent-{i}")
    results = client.results(1000)
    assert set(results) == {f"rent-{i}" for i in range(1000)}
    assert all(len(copies) == 1 for copies in results.values())
    for cid, [(key, headers, body)] in results.items():
        assert key == "rent_predictor.predict.succeeded"
        assert headers["x-cerebro-status"] == "succeeded"
        assert body["status"] == "succeeded" and body["correlation_id"] == cid
        assert body["message_id"] == cid and body["result"]["rent"] > 0


def test_kill_9_mid_stream_then_restart_loses_nothing(pubsub):
    """A subscriber killed while holding requests: after a restart every request has a result."""
    first = pubsub.subscriber(modules="batchy", CEREBRO_PUBSUB_PREFETCH="32").consuming()
    client = pubsub.client()
    total = 3000
    for i in range(total):
        client.publish("batchy.square", {"x": i, "delay_ms": 3}, f"sq-{i}")
    results = client.results(400)
    first.kill()
    assert len(results) < total, "the subscriber finished before it could be killed"
    pubsub.subscriber(modules="batchy").consuming()
    client.results(total, into=results)
    assert set(results) == {f"sq-{i}" for i in range(total)}
    assert all(copies[0][2]["result"]["square"] == int(cid[3:]) ** 2
               for cid, copies in results.items())
    duplicates = sum(len(copies) - 1 for copies in results.values())
    assert duplicates <= 32, duplicates  # at most what the dead subscriber held unacked


def test_bad_messages_are_dead_lettered_and_the_next_are_served(pubsub):
    """Invalid JSON, an invalid payload, an unknown function and a handler failing past the
    retry limit: each gets a failed result and a dead letter with its error; others go on."""
    pubsub.subscriber(modules="echo,boom", CEREBRO_PUBSUB_RETRIES="2").consuming()
    client = pubsub.client()
    client.publish("echo.say", b"{not json", "bad-json")
    client.publish("echo.say", {"text": "hi", "times": 99}, "bad-payload")
    client.publish("echo.nope", {}, "bad-function")
    client.publish("boom.explode", {"n": 7}, "bug")
    for i in range(20):
        client.publish("echo.say", {"text": f"t{i}"}, f"ok-{i}")
    results = client.results(24, timeout=30)
    for i in range(20):
        assert results[f"ok-{i}"][0][2]["result"]["text"] == f"t{i}"
    failed = {cid: copies[0] for cid, copies in results.items() if not cid.startswith("ok-")}
    assert {cid: key for cid, (key, _h, _b) in failed.items()} == {
        "bad-json": "echo.say.failed", "bad-payload": "echo.say.failed",
        "bad-function": "echo.nope.failed", "bug": "boom.explode.failed"}
    assert failed["bad-payload"][2]["error"]["field"] == "times"
    assert failed["bug"][2]["error"]["type"] == "internal"

    dead = client.dead_letters(4)
    assert set(dead) == {"bad-json", "bad-payload", "bad-function", "bug"}
    headers = {cid: copies[0][1] for cid, copies in dead.items()}
    assert headers["bad-json"]["x-cerebro-stage"] == "decode"
    assert headers["bad-json"]["x-cerebro-error-type"] == "invalid_payload"
    assert "malformed JSON" in headers["bad-json"]["x-cerebro-error"]
    assert headers["bad-payload"]["x-cerebro-stage"] == "validate"
    assert headers["bad-function"]["x-cerebro-error-type"] == "not_found"
    assert headers["bug"]["x-cerebro-stage"] == "handler"
    assert headers["bug"]["x-cerebro-attempts"] == 2
    assert headers["bug"]["x-cerebro-error-id"] == failed["bug"][2]["error"]["error_id"]
    assert dead["bad-json"][0][2] == b"{not json"  # the original body, untouched
    assert dead["bug"][0][0] == "boom.explode"  # the original routing key


def test_reply_to_gets_the_result(pubsub):
    """A request naming reply_to is answered there, not on the results exchange."""
    pubsub.subscriber(modules="echo").consuming()
    client = pubsub.client()
    reply = client.channel.queue_declare("", exclusive=True).method.queue
    client.publish("echo.say", {"text": "back"}, "r-1", reply_to=reply)
    client.publish("echo.say", {"text": "fanout"}, "r-2")
    direct = client.drain(reply, {}, lambda got: "r-1" in got, 20)
    assert direct["r-1"][0][2]["result"]["text"] == "back"
    published = client.results(1, timeout=20)
    assert set(published) == {"r-2"}


def test_a_message_that_kills_its_subscriber_is_dead_lettered(pubsub):
    """A poison message crashing every subscriber that takes it never loops forever: after the
    retry limit it is dead-lettered (stage redelivery), and the next message is served."""
    client = None
    retries = 1
    # crashes: with its bystander (neither charged: both isolated), then alone once per attempt
    for restart in range(retries + 3):
        sub = pubsub.subscriber(package="pubsub_fixtures", modules="crash",
                                CEREBRO_PUBSUB_RETRIES=str(retries)).consuming()
        if client is None:
            client = pubsub.client()
            client.publish("crash.maybe_die", {"die": True}, "poison")
            client.publish("crash.maybe_die", {"n": 1}, "fine")
        wait_for(lambda: not sub.alive() or "dead-lettered to" in sub.log(), 30,
                 message="a crash or the dead letter")
        if sub.alive():
            break
        assert sub.proc.returncode == 3  # died of the message (as a supervisor would see)
    assert sub.alive() and restart == retries + 2, restart
    results = client.results(2, timeout=20)
    assert results["fine"][0][2]["result"]["n"] == 1  # the bystander was served
    assert results["poison"][0][2]["error"]["type"] == "redelivery_limit"
    dead = client.dead_letters(1)
    assert dead["poison"][0][1]["x-cerebro-stage"] == "redelivery"


def test_rabbitmq_restart_subscriber_reconnects_and_goes_on(private_rabbit, harness_factory):
    """RabbitMQ stopped and started under a running subscriber: it reconnects by itself,
    requests published before and after are all answered, nothing is lost."""
    pubsub = harness_factory(private_rabbit.url)
    sub = pubsub.subscriber(modules="echo").consuming()
    client = pubsub.client()
    for i in range(100):
        client.publish("echo.say", {"text": f"a{i}"}, f"a-{i}")
    results = client.results(100, timeout=30)
    client.close()
    private_rabbit.stop()
    time.sleep(1.0)
    assert sub.alive()
    private_rabbit.start()
    sub.consuming(times=2, timeout=60)
    client = pubsub.client()
    for i in range(100):
        client.publish("echo.say", {"text": f"b{i}"}, f"b-{i}")
    client.results(200, timeout=30, into=results)
    assert set(results) == {f"{p}-{i}" for p in "ab" for i in range(100)}
    assert sub.alive()
    assert "connection to RabbitMQ lost" in sub.log()
    assert sub.terminate() == 0
