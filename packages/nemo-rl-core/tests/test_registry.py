"""The plugin registry: in-process registration, entry points, and the messages of a miss."""

from __future__ import annotations

from importlib import metadata

import pytest
from nemo_rl import registry
from nemo_rl.registry import PluginNotFoundError


class AlwaysOne:
    """A stand-in environment: any class can be registered."""


@pytest.fixture
def always_one():
    registry.register("environments", "always_one")(AlwaysOne)
    yield AlwaysOne
    registry.unregister("environments", "always_one")


def test_register_then_resolve_returns_the_same_object(always_one):
    assert registry.resolve("environments", "always_one") is always_one


def test_register_is_a_decorator_returning_the_object():
    decorated = registry.register("datasets", "tiny_rows")(AlwaysOne)
    try:
        assert decorated is AlwaysOne
    finally:
        registry.unregister("datasets", "tiny_rows")


def test_available_lists_in_process_plugins_with_target_and_package(always_one):
    info = registry.available("environments")["always_one"]
    assert info.group == "environments"
    assert info.package == "in-process"
    assert info.target == f"{__name__}:AlwaysOne"


def test_available_lists_entry_points_of_installed_packages():
    # nemo-rl-core declares its logger backends as entry points.
    loggers = registry.available("loggers")
    assert loggers["jsonl"].package == "nemo-rl-core"
    assert loggers["jsonl"].target == "nemo_rl.infra.logging.jsonl:JsonlBackend"
    assert list(loggers) == sorted(loggers)


def test_in_process_registration_wins_over_an_entry_point_of_the_same_name():
    registry.register("loggers", "jsonl")(AlwaysOne)
    try:
        assert registry.resolve("loggers", "jsonl") is AlwaysOne
        assert registry.available("loggers")["jsonl"].package == "in-process"
    finally:
        registry.unregister("loggers", "jsonl")
    assert registry.available("loggers")["jsonl"].package == "nemo-rl-core"


def test_unregister_removes_the_plugin(always_one):
    registry.unregister("environments", "always_one")
    assert "always_one" not in registry.available("environments")
    with pytest.raises(PluginNotFoundError):
        registry.resolve("environments", "always_one")


def test_miss_for_a_known_plugin_names_the_package_to_install(monkeypatch):
    monkeypatch.setitem(registry.KNOWN_PROVIDERS, ("environments", "ghost"), "nemo-rl-ghost")
    with pytest.raises(PluginNotFoundError) as info:
        registry.resolve("environments", "ghost")
    assert str(info.value) == "environment 'ghost' is not installed: pip install nemo-rl-ghost"


def test_a_planned_backend_is_not_available_yet_and_sends_nobody_to_install_it(monkeypatch):
    monkeypatch.setitem(registry.PLANNED, ("training_backends", "ghost"), "nemo-rl-ghost")
    with pytest.raises(registry.PluginNotAvailableError) as info:
        registry.resolve("training_backends", "ghost")
    message = str(info.value)
    assert message.startswith("training backend 'ghost' is not available yet")
    assert "pip install" not in message and "dtensor" in message


def test_a_missing_megatron_backend_names_its_package():
    if "megatron" in registry.available("training_backends"):
        pytest.skip("a megatron backend is installed here")
    with pytest.raises(PluginNotFoundError, match="pip install nemo-rl-megatron"):
        registry.resolve("training_backends", "megatron")


def test_miss_for_a_close_name_suggests_it(always_one):
    with pytest.raises(PluginNotFoundError, match="did you mean 'always_one'\\?"):
        registry.resolve("environments", "always_on")


def test_miss_for_an_unknown_name_lists_installed_and_how_to_register(always_one):
    with pytest.raises(PluginNotFoundError) as info:
        registry.resolve("environments", "zzz")
    message = str(info.value)
    assert "did you mean" not in message
    assert "always_one" in message
    assert "@nemo_rl.registry.register('environments', 'zzz')" in message


def test_plugin_not_found_is_a_lookup_error():
    assert issubclass(PluginNotFoundError, LookupError)


def test_unknown_group_is_rejected_listing_the_groups():
    with pytest.raises(ValueError, match="unknown plugin group 'backends'.*training_backends"):
        registry.resolve("backends", "dtensor")
    with pytest.raises(ValueError, match="unknown plugin group"):
        registry.register("backends", "x")


def test_entry_point_that_fails_to_import_says_so(monkeypatch):
    broken = metadata.EntryPoint(
        name="broken", value="nemo_rl_no_such_module:Thing", group="nemo_rl.environments"
    )
    monkeypatch.setattr(registry, "_entry_points", lambda group: {"broken": broken})
    with pytest.raises(PluginNotFoundError) as info:
        registry.resolve("environments", "broken")
    assert "failed to import" in str(info.value)
    assert "nemo_rl_no_such_module" in str(info.value)
