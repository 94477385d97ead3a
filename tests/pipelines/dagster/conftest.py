"""Fixtures for the Dagster tests: a telemetry-free DAGSTER_HOME, ephemeral instances, cut sample data and
spec folders laid out like the project's (``<root>/specs/...`` next to ``<root>/data``)."""

import gzip
import shutil
from textwrap import dedent

import dagster as dg
import pytest

from tests.pipelines.dagster.support import DAYS, SAMPLES


@pytest.fixture(scope="session", autouse=True)
def dagster_home(tmp_path_factory):
    """Every Dagster test runs against a temporary DAGSTER_HOME with telemetry off."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        yield home


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def project(tmp_path):
    """A project folder: ``specs/`` (empty) and ``data/samples`` with each sample cut to its first DAYS rows."""
    samples = tmp_path / "data" / "samples"
    samples.mkdir(parents=True)
    for symbol in ("AAPL", "MSFT", "IBM", "KO"):
        lines = gzip.decompress((SAMPLES / f"{symbol}.csv.gz").read_bytes()).decode().splitlines(keepends=True)
        (samples / f"{symbol}.csv.gz").write_bytes(gzip.compress("".join(lines[: DAYS + 1]).encode(), mtime=0))
    shutil.copytree(SAMPLES / "dbn", samples / "dbn")
    (tmp_path / "specs").mkdir()
    return tmp_path


@pytest.fixture
def write_spec(project):
    """Write a spec under ``project/specs/<folder>/<name>.yaml`` (dedented)."""

    def write(relative: str, text: str):
        path = project / "specs" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text).lstrip("\n"))
        return path

    return write
