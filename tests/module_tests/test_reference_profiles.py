"""Every module's build publishes a reference profile (profile.json) for drift monitoring: its
features are the inputs of the served function it profiles, by name and kind; it profiles that
function's predictions; and a served call is counted against it with nothing missing."""

import importlib
import inspect
import json

import pytest

from cerebro.core import Core
from cerebro.endpoint import build_endpoint
from cerebro.monitoring import drift
from cerebro.monitoring.profile import FILE
from cerebro.settings import load_settings
from support import AmenitiesServer, module_names, published_version_dir

MODULES = module_names()
#: The function a module's profile is for, when its expose.py has several with inputs.
PROFILED = {}
#: The profile kind of each declared field type.
KINDS = {int: "numeric", float: "numeric", str: "categorical", bool: "categorical",
         list: "items"}


def profiled_endpoint(module):
    """The endpoint whose inputs the module's profile holds: the one named in
    :data:`PROFILED`, else the module's only function with declared inputs."""
    expose = importlib.import_module(f"modules.{module}.expose")
    endpoints = {name: build_endpoint(module, func)
                 for name, func in inspect.getmembers(expose, inspect.isfunction)
                 if not name.startswith("_") and func.__module__ == expose.__name__}
    if module in PROFILED:
        return endpoints[PROFILED[module]]
    with_inputs = [ep for ep in endpoints.values() if ep.schema.fields]
    assert len(with_inputs) == 1, f"{module}: name the function its profile is for in PROFILED"
    return with_inputs[0]


def read_profile(volume, module):
    """The profile.json of the module's current version in ``volume``."""
    path = published_version_dir(volume, module) / FILE
    assert path.is_file(), f"{module}: its build published no {FILE}"
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", MODULES)
def test_profile_features_are_the_served_inputs(name, built_volume):
    """The profile holds exactly the served function's input fields, each of the kind its
    declared type gives (numbers binned, strings and booleans as categories, lists as items),
    every one present in every training row, as validation would leave it."""
    profile = read_profile(built_volume, name)
    fields = profiled_endpoint(name).schema.fields
    assert sorted(profile["features"]) == sorted(fields)
    assert profile["rows"] > 0
    for field_name, field in fields.items():
        feature = profile["features"][field_name]
        if feature["kind"] == "identifier":  # an id (e.g. listing_id): kept, not monitored
            assert field.type in (str, int), field_name
            continue
        assert feature["kind"] == KINDS[field.type], field_name
        assert feature["count"] == profile["rows"], field_name
        assert feature["missing"] == 0.0, field_name
        if feature["kind"] == "numeric":
            assert feature["edges"] and len(feature["shares"]) == len(feature["edges"]) + 1
        else:
            assert feature["shares"], field_name


@pytest.mark.parametrize("name", MODULES)
def test_profile_holds_the_predictions(name, built_volume):
    """The profile holds at least one predicted field, one value per training row."""
    profile = read_profile(built_volume, name)
    outputs = profile["outputs"]
    assert outputs and "model_version" not in outputs
    for field_name, output in outputs.items():
        assert output["count"] == profile["rows"] and output["missing"] == 0.0, field_name
        assert output["kind"] in ("numeric", "categorical"), field_name
        assert output["edges"] if output["kind"] == "numeric" else output["shares"], field_name


@pytest.fixture(scope="module")
def monitored(built_volume, tmp_path_factory):
    """The dispatch core over the built volume, every served call profiled into a temporary
    state dir; listing_enrichment's amenities calls answered by a local service."""
    amenities = AmenitiesServer()
    patch = pytest.MonkeyPatch()
    patch.setenv("LISTING_ENRICHMENT_AMENITIES_URL", amenities.url)
    state = tmp_path_factory.mktemp("state")
    settings = load_settings().replace(data_volume=built_volume, modules=(), drift_sample=1.0,
                                       state_dir=state)
    core = Core.start("test", settings, watch=False, configure_logging=False)
    yield core, state
    core.stop()
    patch.undo()
    amenities.stop()


@pytest.mark.parametrize("name", MODULES)
def test_a_served_call_is_counted_with_nothing_missing(name, monitored, built_volume):
    """The declared example, served through the dispatcher, is counted by drift monitoring in
    every profiled input and prediction: the profile's names are those the function takes and
    answers, and its values count in the profile's bins."""
    core, state = monitored
    endpoint = profiled_endpoint(name)
    assert endpoint.example is not None, f"{name}: declare an example on {endpoint.name}"
    dispatcher = core.dispatcher
    result = dispatcher.run(dispatcher.prepare(name, endpoint.name, endpoint.example),
                            service="test")
    core.monitor.flush()
    version = result["model_version"]
    found = drift.report(built_volume, state, name, version, hours=1.0)
    assert found["profile"] and found["samples"] >= 1
    profile = read_profile(built_volume, name)
    monitored_fields = {name for part in ("features", "outputs")
                        for name, ref in profile[part].items() if ref["kind"] != "identifier"}
    assert {f["field"] for f in found["fields"]} == monitored_fields
    for field in found["fields"]:
        assert field["samples"] == found["samples"] and field["missing"] == 0.0, field
