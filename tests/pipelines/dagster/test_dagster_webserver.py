"""`tickloom ui` for real: dagster dev on loopback, queried over GraphQL, then stopped without leaving a process.

About 15 s (more on a loaded machine): the UI answers HTTP after 6-11 s and loads the code location after that.
The process group is stopped with SIGINT (dagster shuts its children down), then SIGKILL for whatever is left,
including descendants that moved to their own process group.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.pipelines.dagster.support import INGEST_BARS, ROOT, STRATEGY_ON_CATALOG

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc").is_dir(), reason="uses /proc to find descendants")]

START_TIMEOUT_S = 180
QUERY = """{
  assetNodes { assetKey { path } groupName isPartitioned description dependencyKeys { path } }
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError {
    __typename
    ... on RepositoryLocation { repositories { name schedules { name cronSchedule } sensors { name } } }
    ... on PythonError { message } } } } }
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())["data"]


def wait_until_loaded(port: int, process: subprocess.Popen, log: Path) -> dict:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tickloom ui exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            data = graphql(port, QUERY)
            entries = data["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return data
        except (OSError, ValueError, KeyError, TypeError):  # not up yet, or the location is still loading
            pass
        time.sleep(0.5)
    pytest.fail(f"the UI did not load within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop(process: subprocess.Popen) -> set[int]:
    """SIGINT to the group and wait; then SIGKILL to the group and every descendant seen. Returns survivors."""
    tree = {process.pid} | descendants(process.pid)
    _signal_group(process.pid, signal.SIGINT)
    if not _all_gone(process, tree, 30):
        _signal_group(process.pid, signal.SIGKILL)
        for pid in tree:  # descendants that left the group (own session) too
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _all_gone(process, tree, 10)
    process.wait(timeout=10)
    return {p for p in tree if alive(p)}


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _all_gone(process: subprocess.Popen, tree: set[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is None:
            tree |= descendants(process.pid)  # children started while shutting down
        if not any(alive(p) for p in tree):
            return True
        time.sleep(0.2)
    return False


def test_the_ui_serves_assets_schedules_and_sensors_and_stops_cleanly(write_spec, project, tmp_path):
    write_spec("ingest/bars_in.yaml", INGEST_BARS)
    write_spec("strategies/cross.yaml", STRATEGY_ON_CATALOG)
    write_spec("broken/typo.yaml", "tickloom: 1\nname: typo\nkind: strategy\nnodes:\n  x: {op: source.nope}\n")
    port, log = free_port(), tmp_path / "ui.log"
    command = [sys.executable, "-m", "runtime.cli", "ui", "--port", str(port), "--specs", str(project / "specs"),
               "--catalog", str(project / "catalog"), "--home", str(tmp_path / "dagster_home")]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    try:
        data = wait_until_loaded(port, process, log)
    finally:
        survivors = stop(process)
    assert not survivors, f"processes left running: {survivors}"

    nodes = {tuple(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert nodes[("bars_in", "xnas")]["isPartitioned"] and nodes[("bars_in", "xnas")]["groupName"] == "bars_in"
    assert {"bars", "fast", "slow", "cross", "target", "sim"} <= {k[1] for k in nodes if k[0] == "cross_on_catalog"}
    assert {"path": ["bars_in", "xnas"]} in nodes[("cross_on_catalog", "bars")]["dependencyKeys"]
    broken = nodes[("broken_specs", "broken__typo")]
    assert f"{project / 'specs' / 'broken' / 'typo.yaml'}:5:" in broken["description"]

    [entry] = data["workspaceOrError"]["locationEntries"]
    [repository] = entry["locationOrLoadError"]["repositories"]
    assert repository["schedules"] == [{"name": "bars_in__xnas__schedule", "cronSchedule": "0 6 * * *"}]
    assert repository["sensors"] == [{"name": "bars_in__xnas__landing_sensor"}]
    home = tmp_path / "dagster_home"
    assert "enabled: false" in (home / "dagster.yaml").read_text() and (home / "workspace.yaml").is_file()
