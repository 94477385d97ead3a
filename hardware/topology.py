"""Where the system runs and how far that is from each venue: sites, venues, links, shortest-latency routes.

A topology (format version 1) names **sites** (a co-location hall, an exchange's matching-engine hall, an
office), **venues** (an exchange and the site of its matching engine) and **links** between sites (a
cross-connect, metro or long-haul fiber, microwave), each with a one-way latency — given, or derived from a
distance and the medium — and a bandwidth. A message crossing a link takes the link's latency plus its own
serialization (bytes × 8 / bandwidth; every hop stores and forwards), so a narrow microwave link can lose to fiber
for big messages. A link may carry only market data or only orders (the CME–Nasdaq microwave carried only data).

A deployment names its site; ``feed_latency_ns(site, venue)`` is how long the venue's market data takes to reach
it and ``order_latency_ns(site, venue)`` how long an order takes to reach the venue's matching engine: the
backtest latency models can take both from here instead of a guessed constant.

Links between sites with coordinates are checked against physics: a latency below the great-circle distance at
the speed of light is an error (a typo, or a unit slip).
"""

import heapq
import math
from dataclasses import dataclass
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from hardware.profile import validate_located
from nodes.errors import SourceLocation, SpecError

C_KM_PER_S = 299_792.458
# One-way propagation per kilometre of path by medium, in ns.
NS_PER_KM = {
    "cross_connect": 4_897.0,  # single-mode fiber, group index ≈ 1.468 at 1550 nm: 4.897 µs/km
    "metro_fiber": 4_897.0,
    "long_haul_fiber": 4_897.0,
    "microwave": 3_336.6,  # air, n ≈ 1.0003: within 0.03% of c
    "millimeter_wave": 3_336.6,
    "copper": 5_000.0,  # twinax/DAC: "around five nanoseconds of latency per meter" (Arista, D. Snowdon)
}
Medium = Literal["cross_connect", "metro_fiber", "long_haul_fiber", "microwave", "millimeter_wave", "copper"]
Carries = Literal["both", "market_data", "orders"]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(_Closed):
    """A place: a co-location hall, an exchange's matching-engine hall, an office."""

    kind: Literal["colocation", "exchange", "office"] = Field(description="what the site is")
    description: str = Field("", description="free text: operator, address")
    latitude: float | None = Field(None, ge=-90, le=90, description="degrees north (for the speed-of-light check)")
    longitude: float | None = Field(None, ge=-180, le=180, description="degrees east")
    source: str = Field("", description="where the coordinates come from")


class Venue(_Closed):
    """An exchange: the site of its matching engine and what happens inside its walls."""

    site: str = Field(description="the site of its matching engine")
    description: str = Field("", description="free text")
    feed_publish_ns: float = Field(0.0, ge=0, description="matching engine to the market-data handoff, in ns "
                                   "(0: not modeled)")
    order_entry_ns: float = Field(0.0, ge=0, description="order-entry handoff to the matching engine, in ns "
                                  "(0: not modeled)")
    market_data_bytes: int | None = Field(None, gt=0, description="bytes of one market-data packet (default: "
                                          "the topology's)")
    order_bytes: int | None = Field(None, gt=0, description="bytes of one order frame (default: the topology's)")
    source: str = Field("", description="where the figures come from")


class Link(_Closed):
    """A connection between two sites, the same both ways."""

    between: tuple[str, str] = Field(description="the two sites it connects")
    medium: Medium = Field(description="cross_connect, metro_fiber, long_haul_fiber, microwave, millimeter_wave, "
                           "copper")
    latency_ns: float | None = Field(None, gt=0, description="one-way latency in ns (or give distance_km)")
    distance_km: float | None = Field(None, gt=0, description="path length in km: latency from the medium")
    equipment_ns: float = Field(0.0, ge=0, description="switches, repeaters, radios along it, in ns (added to a "
                                "distance-derived latency)")
    bandwidth_bps: float = Field(10e9, gt=0, description="bits per second a message serializes at")
    carries: Carries = Field("both", description="both, market_data or orders")
    source: str = Field("", description="where the latency comes from ('estimate' when nothing public gives it)")

    def propagation_ns(self) -> float:
        if self.latency_ns is not None:
            return self.latency_ns
        return self.distance_km * NS_PER_KM[self.medium] + self.equipment_ns

    def name(self) -> str:
        return f"{self.between[0]}–{self.between[1]} ({self.medium})"


class Topology(_Closed):
    """Sites, venues and the links between them (format version 1)."""

    topology: Literal[1] = Field(description="topology format version")
    name: str = Field(description="the topology's name")
    description: str = Field("", description="free text")
    market_data_bytes: int = Field(96, gt=0, description="default bytes of a market-data packet (estimate)")
    order_bytes: int = Field(128, gt=0, description="default bytes of an order frame (estimate)")
    sites: dict[str, Site] = Field(description="site name → site")
    venues: dict[str, Venue] = Field(default_factory=dict, description="venue name → venue")
    links: list[Link] = Field(default_factory=list, description="links between sites")


@dataclass(frozen=True)
class Route:
    """A path between two sites: the sites in order, the links taken, and its one-way latency split in two."""

    sites: tuple[str, ...]
    links: tuple[Link, ...]
    propagation_ns: float
    serialization_ns: float
    message_bytes: int

    @property
    def latency_ns(self) -> float:
        return self.propagation_ns + self.serialization_ns

    def describe(self) -> str:
        hops = " → ".join(self.sites)
        return (f"{hops}: {self.latency_ns:,.0f} ns ({self.propagation_ns:,.0f} propagation + "
                f"{self.serialization_ns:,.0f} serializing {self.message_bytes} B)")


def topology_from_data(data, where: Callable[[tuple], SourceLocation | None] | None = None) -> Topology:
    """Validate a topology given as plain data; ``where(path)`` locates values for error messages.

    Raises:
        SpecError: every problem at once (unknown sites, a link both or neither of latency and distance, a link
        faster than light), each with its file:line:col when ``where`` knows it.
    """
    topology = validate_located(Topology, data, where)
    problems = [((where(path) if where else None), message) for path, message in _consistency(topology)]
    if problems:
        raise SpecError(problems)
    return topology


def _consistency(topology: Topology) -> list[tuple[tuple, str]]:
    problems = []
    sites = topology.sites
    for name, venue in topology.venues.items():
        if venue.site not in sites:
            problems.append((("venues", name, "site"), f"venue {name}: unknown site {venue.site!r}{_hint(venue.site, sites)}"))
    for i, link in enumerate(topology.links):
        at = ("links", i)
        unknown = [s for s in link.between if s not in sites]
        for s in unknown:
            problems.append((at + ("between",), f"link {i}: unknown site {s!r}{_hint(s, sites)}"))
        if link.between[0] == link.between[1]:
            problems.append((at + ("between",), f"link {i} connects {link.between[0]} to itself"))
        if (link.latency_ns is None) == (link.distance_km is None):
            problems.append((at, f"link {i} ({' – '.join(link.between)}): give exactly one of latency_ns or distance_km"))
            continue
        if not unknown:
            bound = _light_bound_ns(sites[link.between[0]], sites[link.between[1]])
            if bound is not None and link.propagation_ns() < bound:
                problems.append((at, f"link {i} ({link.name()}): {link.propagation_ns():,.0f} ns is faster than light "
                                     f"over the {bound * C_KM_PER_S / 1e9:,.1f} km between the sites "
                                     f"(at least {bound:,.0f} ns)"))
    return problems


def _hint(name: str, choices) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def great_circle_km(a: Site, b: Site) -> float | None:
    """The great-circle distance between two sites with coordinates (haversine, mean Earth radius 6371 km)."""
    if None in (a.latitude, a.longitude, b.latitude, b.longitude):
        return None
    phi1, phi2 = math.radians(a.latitude), math.radians(b.latitude)
    dphi, dlam = phi2 - phi1, math.radians(b.longitude - a.longitude)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def _light_bound_ns(a: Site, b: Site) -> float | None:
    km = great_circle_km(a, b)
    return None if km is None else km / C_KM_PER_S * 1e9


def route(topology: Topology, origin: str, destination: str, message_bytes: int, carrying: str = "both") -> Route:
    """The shortest-latency route for a message of ``message_bytes`` from ``origin`` to ``destination``.

    ``carrying`` is ``market_data`` or ``orders`` (only links that carry it are used) or ``both``. Ties go to
    fewer hops, then to the alphabetically first sequence of sites, so the answer is deterministic.

    Raises:
        SpecError: an unknown site, or no route (naming the sites the origin can reach).
    """
    for site in (origin, destination):
        if site not in topology.sites:
            raise SpecError.at(None, f"unknown site {site!r}{_hint(site, topology.sites)}; sites: {', '.join(topology.sites)}")
    adjacent: dict[str, list[tuple[str, int]]] = {s: [] for s in topology.sites}
    for index, link in enumerate(topology.links):
        if carrying != "both" and link.carries not in ("both", carrying):
            continue
        a, b = link.between
        adjacent[a].append((b, index))
        adjacent[b].append((a, index))
    queue = [(0, 0, (origin,), ())]
    settled: set[str] = set()
    while queue:
        cost_ps, hops, path, links = heapq.heappop(queue)
        site = path[-1]
        if site in settled:
            continue
        settled.add(site)
        if site == destination:
            taken = tuple(topology.links[i] for i in links)
            propagation = sum(l.propagation_ns() for l in taken)
            serialization = sum(message_bytes * 8e9 / l.bandwidth_bps for l in taken)
            return Route(path, taken, propagation, serialization, message_bytes)
        for neighbour, index in adjacent[site]:
            if neighbour in settled:
                continue
            link = topology.links[index]
            step_ps = round((link.propagation_ns() + message_bytes * 8e9 / link.bandwidth_bps) * 1000)
            heapq.heappush(queue, (cost_ps + step_ps, hops + 1, path + (neighbour,), links + (index,)))
    what = {"both": "any traffic", "market_data": "market data", "orders": "orders"}[carrying]
    raise SpecError.at(None, f"no route from {origin} to {destination} carries {what}; from {origin} it reaches: "
                             f"{', '.join(sorted(settled - {origin})) or 'nothing'}")


def _venue(topology: Topology, venue: str) -> Venue:
    if venue not in topology.venues:
        raise SpecError.at(None, f"unknown venue {venue!r}{_hint(venue, topology.venues)}; venues: {', '.join(topology.venues)}")
    return topology.venues[venue]


def feed_route(topology: Topology, site: str, venue: str, message_bytes: int | None = None) -> Route:
    """The route the venue's market data takes from its matching engine's site to ``site``."""
    v = _venue(topology, venue)
    size = message_bytes or v.market_data_bytes or topology.market_data_bytes
    return route(topology, v.site, site, size, "market_data")


def order_route(topology: Topology, site: str, venue: str, message_bytes: int | None = None) -> Route:
    """The route an order takes from ``site`` to the venue's matching engine's site."""
    v = _venue(topology, venue)
    size = message_bytes or v.order_bytes or topology.order_bytes
    return route(topology, site, v.site, size, "orders")


def feed_latency_ns(topology: Topology, site: str, venue: str, message_bytes: int | None = None) -> float:
    """How long the venue's market data takes to reach ``site``: its publish delay plus the route, in ns."""
    return _venue(topology, venue).feed_publish_ns + feed_route(topology, site, venue, message_bytes).latency_ns


def order_latency_ns(topology: Topology, site: str, venue: str, message_bytes: int | None = None) -> float:
    """How long an order from ``site`` takes to reach the venue's matching engine, in ns."""
    return order_route(topology, site, venue, message_bytes).latency_ns + _venue(topology, venue).order_entry_ns


def response_latency_ns(topology: Topology, site: str, venue: str, message_bytes: int | None = None) -> float:
    """How long the venue's answer to an order (ack, fill) takes to reach ``site``, in ns.

    It leaves the matching engine through the order-entry gateway (``order_entry_ns``, the same hop the other
    way) and comes back over links that carry orders (the order-entry session's path).
    """
    v = _venue(topology, venue)
    size = message_bytes or v.order_bytes or topology.order_bytes
    return v.order_entry_ns + route(topology, v.site, site, size, "orders").latency_ns
