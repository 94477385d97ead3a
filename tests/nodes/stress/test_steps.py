"""Step params (times, durations, windows) and the node overrides of a scenario."""

import datetime as dt

import pytest
from pydantic import ValidationError

from nodes.stress import TRANSFORMS, NodeOverride, StreamTransform
from nodes.stress.contract import duration_ns, timestamp_ns


@pytest.mark.parametrize("value, expected", [
    ("2013-04-15", 1_365_984_000_000_000_000),
    (dt.date(2013, 4, 15), 1_365_984_000_000_000_000),  # what YAML makes of an unquoted date
    ("2013-04-15T14:30:00Z", 1_365_984_000_000_000_000 + 52_200 * 10**9),
    ("2013-04-15T10:30:00-04:00", 1_365_984_000_000_000_000 + 52_200 * 10**9),
    ("2013-04-15 14:30:00.000001", 1_365_984_000_000_000_000 + 52_200 * 10**9 + 1_000),
    (dt.datetime(2013, 4, 15, 14, 30), 1_365_984_000_000_000_000 + 52_200 * 10**9),
    (1_365_984_000_000_000_123, 1_365_984_000_000_000_123),
])
def test_timestamps_are_utc_ns(value, expected):
    assert timestamp_ns(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("250ms", 250_000_000), ("2d", 172_800 * 10**9), ("1.5h", 5_400 * 10**9), ("200us", 200_000), ("30s", 30 * 10**9),
    ("5m", 300 * 10**9), (7, 7),
])
def test_durations_are_ns(value, expected):
    assert duration_ns(value) == expected


@pytest.mark.parametrize("value", ["2 days", "-5s", -1, "ms", True, "1y"])
def test_bad_durations_say_what_is_expected(value):
    with pytest.raises(ValueError, match="duration"):
        duration_ns(value)


def test_bad_params_are_rejected_by_the_step_model():
    shock = TRANSFORMS["price_shock"].Params
    with pytest.raises(ValidationError, match="not a date"):
        shock.model_validate({"at": "15/04/2013", "bps": -100})
    with pytest.raises(ValidationError, match="Extra inputs"):
        shock.model_validate({"at": "2013-04-15", "bps": -100, "half_life": "2d"})
    with pytest.raises(ValidationError, match="greater than -10000"):
        shock.model_validate({"at": "2013-04-15", "bps": -10_000})
    with pytest.raises(ValidationError, match="must be after start"):
        TRANSFORMS["feed_outage"].Params.model_validate({"start": "2013-04-16", "end": "2013-04-15"})
    with pytest.raises(ValidationError, match="must be after start"):
        TRANSFORMS["volatility_regime"].Params.model_validate({"start": "2013-04-16", "end": "2013-04-15", "factor": 2})


def test_every_step_is_a_stream_transform_or_a_node_override_with_described_params():
    for name, step in TRANSFORMS.items():
        assert step.name == name
        assert issubclass(step, (StreamTransform, NodeOverride))
        assert step.Params.model_config["frozen"] and step.Params.model_config["extra"] == "forbid"
        for field_name, field in step.Params.model_fields.items():
            assert field.description, f"{name}.{field_name} has no description"
        assert "Example::" in step.__doc__


def test_venue_reject_burst_finds_the_tick_venue_and_puts_its_windows_first():
    burst = TRANSFORMS["venue_reject_burst"]
    params = burst.Params.model_validate({"windows": [{"start": 10, "end": 20},
                                                      {"start": "1970-01-01T00:00:01Z", "end": 2 * 10**9, "rate": 0.5}]})
    ops = {"md": "source.binance_capture", "venue": "backtest.tick_venue", "quotes": "strategy.market_maker"}
    assert burst.node_of(params, ops) == "venue"
    spec_window = {"start": 1, "end": 30, "rate": 0.1}
    assert burst.override(params, {"seed": 7, "reject_windows": [spec_window]}) == {
        "seed": 7, "reject_windows": [{"start": 10, "end": 20, "rate": 1.0}, {"start": 10**9, "end": 2 * 10**9,
                                                                             "rate": 0.5}, spec_window]}
    with pytest.raises(ValueError, match="exactly one backtest.tick_venue node, it has none"):
        burst.node_of(params, {"sim": "backtest.bar_venue"})
    with pytest.raises(ValueError, match="'vneue' is not in the spec"):
        burst.node_of(burst.Params.model_validate({"node": "vneue", "windows": [{"start": 1, "end": 2}]}), ops)
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        burst.Params.model_validate({"windows": [{"start": 1, "end": 2, "rate": 2}]})


def test_node_params_set_some_params_and_keep_the_others():
    step = TRANSFORMS["node_params"]
    params = step.Params.model_validate({"node": "sim", "with": {"commission": 0.004}})
    assert step.node_of(params, {"sim": "backtest.bar_venue"}) == "sim"
    assert step.override(params, {"cash": 10_000, "commission": 0.002}) == {"cash": 10_000, "commission": 0.004}
    with pytest.raises(ValidationError):
        step.Params.model_validate({"node": "sim", "with": {}})


def test_docstring_examples_run():
    import doctest

    import nodes.stress.contract
    import nodes.stress.plots
    import nodes.stress.streams

    for module in (nodes.stress.contract, nodes.stress.streams, nodes.stress.plots):
        failed, tried = doctest.testmod(module)
        assert tried > 0 and failed == 0, module.__name__
