"""Read hardware profiles and topologies from YAML, with file:line:col on every error.

The models and their checks live in ``hardware/profile.py`` and ``hardware/topology.py``; reading the files lives
here because the one YAML loader that tracks locations and rejects duplicate keys (``pipelines/spec/yaml_source``)
is in this room, and ``hardware`` may not import ``pipelines``. A second loader in ``hardware`` would be a twin of
it; the hardware room takes plain data and a ``where(path)`` callback instead.
"""

from pathlib import Path

from hardware.profile import HardwareProfile, profile_from_data
from hardware.topology import Topology, topology_from_data
from nodes.errors import SpecError
from pipelines.spec.yaml_source import read_yaml

DEFAULT_PROFILE = Path(__file__).resolve().parents[1] / "specs" / "hardware" / "default_profile.yaml"


def load_profile(path: str | Path | None = None) -> HardwareProfile:
    """Read a hardware profile; without ``path``, the model's defaults (which default_profile.yaml spells out).

    Raises:
        SpecError: a missing file, bad YAML, a duplicate or unknown key, a value out of range — each with its
        file:line:col.
    """
    if path is None:
        return HardwareProfile()
    located = _read(Path(path), "hardware profile")
    return profile_from_data(located.data, located.where)


def load_topology(path: str | Path) -> Topology:
    """Read a topology (sites, venues, links).

    Raises:
        SpecError: as ``load_profile``, plus unknown sites and links faster than light, each with file:line:col.
    """
    located = _read(Path(path), "topology")
    return topology_from_data(located.data, located.where)


def _read(path: Path, what: str):
    if not path.exists():
        raise SpecError.at(None, f"{path}: no such {what} file")
    located = read_yaml(path)
    if not isinstance(located.data, dict):
        raise SpecError.at(located.where(()), f"a {what} must be a mapping")
    return located
