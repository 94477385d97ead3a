"""The topology: shortest-latency routes, what a link carries, serialization, physics checks, errors."""

from pathlib import Path

import pytest

from hardware.topology import (
    NS_PER_KM, feed_latency_ns, feed_route, great_circle_km, order_latency_ns, order_route, response_latency_ns, route,
    topology_from_data,
)
from nodes.errors import SpecError
from pipelines.hardware_profile import load_topology

REPO = Path(__file__).resolve().parents[2]
COLO = REPO / "specs" / "hardware" / "colo_topology.yaml"


def corridor(**overrides) -> dict:
    """Aurora ↔ Carteret with a data-only microwave and a fiber, and a colo rack next to each exchange."""
    data = {
        "topology": 1,
        "name": "corridor",
        "sites": {
            "aurora": {"kind": "exchange", "latitude": 41.80, "longitude": -88.24},
            "carteret": {"kind": "exchange", "latitude": 40.58, "longitude": -74.24},
            "rack": {"kind": "colocation"},
        },
        "venues": {"cme": {"site": "aurora", "feed_publish_ns": 1000, "order_entry_ns": 2000},
                   "nasdaq": {"site": "carteret"}},
        "links": [
            {"between": ["aurora", "carteret"], "medium": "microwave", "latency_ns": 4_250_000,
             "bandwidth_bps": 150e6, "carries": "market_data"},
            {"between": ["aurora", "carteret"], "medium": "long_haul_fiber", "latency_ns": 6_650_000},
            {"between": ["rack", "carteret"], "medium": "cross_connect", "distance_km": 0.1, "equipment_ns": 4},
        ],
    }
    data.update(overrides)
    return data


def test_feed_takes_the_microwave_and_orders_the_fiber():
    topology = topology_from_data(corridor())
    feed = feed_route(topology, "rack", "cme")
    assert feed.sites == ("aurora", "carteret", "rack") and feed.links[0].medium == "microwave"
    cross_connect = 0.1 * NS_PER_KM["cross_connect"] + 4
    expected_feed = 1000 + 4_250_000 + 96 * 8e9 / 150e6 + cross_connect + 96 * 8e9 / 10e9
    assert feed_latency_ns(topology, "rack", "cme") == pytest.approx(expected_feed)
    order = order_route(topology, "rack", "cme")
    assert order.sites == ("rack", "carteret", "aurora") and order.links[1].medium == "long_haul_fiber"
    expected_order = cross_connect + 6_650_000 + 2 * 128 * 8e9 / 10e9 + 2000
    assert order_latency_ns(topology, "rack", "cme") == pytest.approx(expected_order)
    # the answer comes back the way orders go (fiber), through the same gateway
    assert response_latency_ns(topology, "rack", "cme") == pytest.approx(expected_order)


def test_serialization_can_make_the_narrow_fast_link_lose():
    data = corridor()
    data["links"][0]["carries"] = "both"
    topology = topology_from_data(data)
    small = route(topology, "aurora", "carteret", 100)
    big = route(topology, "aurora", "carteret", 100_000)  # 5.3 ms on 150 Mb/s, 80 µs on 10 Gb/s
    assert small.links[0].medium == "microwave" and big.links[0].medium == "long_haul_fiber"
    assert big.serialization_ns == pytest.approx(100_000 * 8e9 / 10e9)


def test_shipped_topology_loads_and_routes():
    topology = load_topology(COLO)
    assert {"cme", "nasdaq", "nyse", "cboe_bzx", "jpx"} <= set(topology.venues)
    local = feed_latency_ns(topology, "aurora_colo", "cme")
    assert local == pytest.approx(0.1 * 4_897 + 4 + 96 * 8e9 / 10e9)  # one cross-connect and an L1 switch
    remote = feed_route(topology, "aurora_colo", "nasdaq")
    assert 3.9e6 < remote.latency_ns < 4.3e6 and "microwave" in {l.medium for l in remote.links}
    office = feed_latency_ns(topology, "chicago_office", "cme")
    assert office > local + 250_000  # the office is tens of km of metro fiber further away
    with pytest.raises(SpecError, match="no route from tokyo_colo to cme_aurora"):
        order_latency_ns(topology, "tokyo_colo", "cme")


def test_great_circle_matches_the_known_distance():
    topology = topology_from_data(corridor())
    km = great_circle_km(topology.sites["aurora"], topology.sites["carteret"])
    assert 1150 < km < 1200  # Aurora–Carteret is about 1,180 km as the crow flies
    assert great_circle_km(topology.sites["aurora"], topology.sites["rack"]) is None


def test_a_link_faster_than_light_is_refused_with_its_location(tmp_path):
    text = COLO.read_text().replace("latency_ns: 4250000", "latency_ns: 425000")
    path = tmp_path / "typo.yaml"
    path.write_text(text)
    line = next(i for i, l in enumerate(text.splitlines(), start=1) if "latency_ns: 425000" in l)
    with pytest.raises(SpecError) as caught:
        load_topology(path)
    message = str(caught.value)
    assert "faster than light" in message and "cme_aurora–nasdaq_carteret (microwave)" in message
    assert f"{path}:{line - 2}:" in message  # the link's entry (its `- between:` line)


def test_topology_errors_name_sites_and_suggest():
    data = corridor()
    data["links"].append({"between": ["rack", "carteret2"], "medium": "metro_fiber", "distance_km": 3})
    data["links"].append({"between": ["rack", "aurora"], "medium": "metro_fiber"})
    data["venues"]["nyse"] = {"site": "mahwah"}
    with pytest.raises(SpecError) as caught:
        topology_from_data(data)
    message = str(caught.value)
    assert "unknown site 'carteret2'; did you mean 'carteret'?" in message
    assert "give exactly one of latency_ns or distance_km" in message
    assert "venue nyse: unknown site 'mahwah'" in message
    with pytest.raises(SpecError, match="medium"):
        topology_from_data(corridor(links=[{"between": ["rack", "aurora"], "medium": "carrier_pigeon", "latency_ns": 1}]))


def test_unknown_names_and_unreachable_sites():
    topology = topology_from_data(corridor())
    with pytest.raises(SpecError, match="unknown venue 'cmee'; did you mean 'cme'"):
        feed_latency_ns(topology, "rack", "cmee")
    with pytest.raises(SpecError, match="unknown site 'rak'; did you mean 'rack'"):
        route(topology, "rak", "aurora", 64)
    island = topology_from_data(corridor(sites={**corridor()["sites"], "island": {"kind": "office"}}))
    with pytest.raises(SpecError, match="no route from island to aurora carries orders; from island it reaches: nothing"):
        route(island, "island", "aurora", 64, "orders")


def test_equal_routes_break_ties_deterministically():
    data = {
        "topology": 1, "name": "diamond",
        "sites": {s: {"kind": "colocation"} for s in ("a", "b", "c", "d")},
        "links": [{"between": ["a", "c"], "medium": "metro_fiber", "latency_ns": 100},
                  {"between": ["c", "d"], "medium": "metro_fiber", "latency_ns": 100},
                  {"between": ["a", "b"], "medium": "metro_fiber", "latency_ns": 100},
                  {"between": ["b", "d"], "medium": "metro_fiber", "latency_ns": 100}],
    }
    assert route(topology_from_data(data), "a", "d", 64).sites == ("a", "b", "d")
