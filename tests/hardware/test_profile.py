"""The hardware profile: sourced defaults, YAML with locations, durations, measured host costs and their cache."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from hardware.profile import (
    SOURCES, HardwareProfile, calibrate_crossings, crossings, measure_step_ns, parse_duration_ns, step_cost_ns,
)
from nodes.contract import default_registry
from nodes.errors import SpecError
from pipelines.hardware_profile import DEFAULT_PROFILE, load_profile

REPO = Path(__file__).resolve().parents[2]


def _leaves(model, prefix=""):
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if hasattr(type(value), "model_fields"):
            yield from _leaves(value, f"{prefix}{name}.")
        elif prefix:  # sections only: the version and the name are not figures
            yield f"{prefix}{name}", field


def test_every_default_names_its_source():
    leaves = dict(_leaves(HardwareProfile()))
    assert set(leaves) == set(SOURCES), set(leaves) ^ set(SOURCES)
    for path, field in leaves.items():
        assert SOURCES[path] in field.description, path
        assert len(SOURCES[path]) > 20, f"{path}: a source must say where the number comes from"


def test_shipped_default_profile_is_the_models_defaults():
    shipped = load_profile(DEFAULT_PROFILE)
    assert shipped.name == "default"
    assert shipped.model_dump(exclude={"description"}) == HardwareProfile().model_dump(exclude={"description"})
    text = DEFAULT_PROFILE.read_text()
    for needle in ("UG1702", "hackingnasdaq", "TWEPP 2015", "UG1586", "Chisholm", "estimate"):
        assert needle in text, needle


def test_profile_errors_name_file_line_and_column(tmp_path):
    path = tmp_path / "fast.yaml"
    path.write_text("profile: 1\nname: fast\ndevice:\n  clok_hz: 400e6\npcie:\n  one_way_ns: -5\n")
    with pytest.raises(SpecError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert f"{path}:4:12: device.clok_hz: unknown key; expected one of: part, clock_hz" in message
    assert f"{path}:6:15: pcie.one_way_ns:" in message and "greater than or equal to 0" in message

    path.write_text("profile: 1\nnetwork:\n  mac_rx_ns: 20\n  mac_rx_ns: 25\n")
    with pytest.raises(SpecError, match=r"fast.yaml:4:3: duplicate key 'mac_rx_ns' \(first defined at line 3\)"):
        load_profile(path)
    with pytest.raises(SpecError, match="no such hardware profile file"):
        load_profile(tmp_path / "missing.yaml")


def test_a_profile_overrides_only_what_it_says(tmp_path):
    path = tmp_path / "card.yaml"
    path.write_text("profile: 1\nname: card\ndevice: {lut: 500000, usable_fraction: 0.5}\n"
                    "host: {numba_call_ns: 200, python_call_ns: 40, step_ns: {indicator.sma: {numba: 2.5}}}\n")
    profile = load_profile(path)
    assert profile.device.lut == 500_000 and profile.device.ff == HardwareProfile().device.ff
    assert profile.device_budget().lut == 250_000 and profile.device_budget().ff == HardwareProfile().device.ff // 2
    c = crossings(profile)  # both call costs given: nothing is measured
    assert (c.numba_call_ns, c.python_call_ns, c.pcie_one_way_ns) == (200, 40, 425)
    sma = default_registry().get("indicator.sma")
    assert step_cost_ns(profile, sma, sma.Params(window=5), "numba") == (2.5, "profile")


@pytest.mark.parametrize("text, ns", [("2us", 2000.0), ("150 ns", 150.0), ("1.5ms", 1.5e6), ("2µs", 2000.0),
                                      ("500ps", 0.5), (42, 42.0), ("1e3ns", 1000.0)])
def test_durations(text, ns):
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize("bad", ["2 lightyears", "", "fast", -3, True])
def test_bad_durations_say_what_is_accepted(bad):
    with pytest.raises(ValueError):
        parse_duration_ns(bad)


def test_crossings_are_measured_once_then_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKLOOM_CACHE", str(tmp_path))
    first = calibrate_crossings()
    assert set(first) == {"numba_call_ns", "python_call_ns"}
    assert all(math.isfinite(v) and v > 0 for v in first.values())
    files = list((tmp_path / "calibration").glob("crossings-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["value"] == first
    assert calibrate_crossings() == first  # read back, not measured again
    c = crossings(HardwareProfile())
    assert (c.numba_call_ns, c.python_call_ns) == (first["numba_call_ns"], first["python_call_ns"])


def test_step_costs_are_measured_on_the_sample_bars_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKLOOM_CACHE", str(tmp_path))
    sma = default_registry().get("indicator.sma")
    params = sma.Params(window=10)
    measured = {target: measure_step_ns(sma, params, target) for target in ("cpu", "numba")}
    assert all(math.isfinite(v) and v > 0 for v in measured.values())
    assert len(list((tmp_path / "calibration").glob("step-indicator.sma-*.json"))) == 2
    assert measure_step_ns(sma, params, "numba") == measured["numba"]
    assert step_cost_ns(HardwareProfile(), sma, params, "cpu") == (measured["cpu"], "measured")
    # other params are another measurement (a longer window is another state)
    measure_step_ns(sma, sma.Params(window=30), "cpu")
    assert len(list((tmp_path / "calibration").glob("step-indicator.sma-*.json"))) == 3


def test_ops_with_context_and_many_outputs_are_measured(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKLOOM_CACHE", str(tmp_path))
    venue = default_registry().get("backtest.bar_venue")  # unkeyed, asks for the key, eight outputs
    assert measure_step_ns(venue, venue.Params(cash=10_000, commission=0.002), "cpu") > 0
    close = np.linspace(100.0, 110.0, 500)  # explicit inputs are measured, not cached
    crossover = default_registry().get("signal.crossover")
    ns = measure_step_ns(crossover, crossover.Params(), "cpu", inputs=[close, close[::-1].copy()])
    assert ns > 0 and not list((tmp_path / "calibration").glob("step-signal.crossover-*.json"))


def test_only_host_targets_are_measured():
    sma = default_registry().get("indicator.sma")
    with pytest.raises(ValueError, match="cpu or numba, not 'fpga'"):
        measure_step_ns(sma, sma.Params(window=3), "fpga")
