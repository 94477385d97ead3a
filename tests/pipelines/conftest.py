"""Spec files written into ``tmp_path``, and where a token sits in them (for file:line:col assertions)."""

from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent, indent

import pytest

from nodes.errors import SourceLocation

SAMPLE_BARS = Path(__file__).resolve().parents[2] / "data" / "samples" / "AAPL.csv.gz"

COUNT_OP = '''\
"""A user op for tests: counts events per instrument, as an i64."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, I64, OpParams, StreamOp


class CountParams(OpParams):
    start: int = Field(0, ge=0, description="count before the first event")


class Count(StreamOp):
    """Count the events of each instrument."""

    name = "user.count"
    Params = CountParams
    inputs = {"x": F64}
    outputs = {"n": I64}

    @staticmethod
    def init(c, n_keys):
        return (np.int64(c[0]),)

    @staticmethod
    def step(c, s, x):
        n = s[0] + 1
        return (n,), n
'''


@dataclass(frozen=True)
class SpecFile:
    path: Path
    text: str

    def at(self, needle: str) -> SourceLocation:
        """The location of ``needle`` (which must occur once), or of the ``^`` inside it."""
        plain = needle.replace("^", "")
        assert self.text.count(plain) == 1, f"{plain!r} must occur exactly once in {self.path.name}"
        offset = self.text.index(plain) + max(needle.find("^"), 0)
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return SourceLocation(str(self.path), line, column)


@pytest.fixture
def write_yaml(tmp_path):
    """Write a YAML file verbatim (dedented) into ``tmp_path``."""

    def write(text: str, name: str = "spec.yaml") -> SpecFile:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = dedent(text).lstrip("\n")
        path.write_text(text)
        return SpecFile(path, text)

    return write


@pytest.fixture
def write_spec(write_yaml):
    """Write a spec whose first node, ``bars``, reads the AAPL sample; ``nodes`` follow it under ``nodes:``."""

    def write(nodes: str, top: str = "params: {fast: 10, slow: 30}", name: str = "spec.yaml") -> SpecFile:
        text = (
            "tickloom: 1\nname: test\nkind: strategy\n"
            + dedent(top).strip() + "\n"
            + "nodes:\n  bars:\n    op: source.bars_csv\n"
            + f"    with: {{path: {SAMPLE_BARS}, instrument: AAPL, timezone: America/New_York}}\n"
            + indent(dedent(nodes).strip("\n"), "  ") + "\n"
        )
        return write_yaml(text, name)

    return write


@pytest.fixture
def count_op_module(tmp_path) -> str:
    """Write the ``user.count`` op module and return its path relative to specs in ``tmp_path``."""
    path = tmp_path / "ops" / "count.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(COUNT_OP)
    return "ops/count.py"
