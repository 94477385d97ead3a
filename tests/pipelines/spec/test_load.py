"""Loading a valid spec: overlays and overrides merge in order, origins say who set what, the hash is stable.

Precedence, lowest first: base spec < overlay (``extends``) < ``--set`` / ``--place``.
"""

from pathlib import Path

from nodes.errors import SourceLocation
from pipelines.plan import compile_plan
from pipelines.spec.load import COMMAND_LINE, load_spec

SAMPLE_BARS = Path(__file__).resolve().parents[3] / "data" / "samples" / "AAPL.csv.gz"

NODES = """
    fast: {op: indicator.sma, in: bars.close, with: {window: "${fast}"}}
    slow:
      op: indicator.sma
      in: bars.close
      with:
        window: ${slow}
    cross: {op: signal.crossover, in: [fast, slow], with: {mode: state}}
"""


def _base_and_overlay(write_spec, write_yaml):
    base = write_spec(NODES, name="base.yaml")
    overlay = write_yaml("""
        extends: base.yaml
        name: tuned
        params:
          fast: 5
        nodes:
          cross:
            with: {short: false}
    """, name="tuned.yaml")
    return base, overlay


def test_overlay_changes_a_param_and_a_with_value_and_keeps_the_rest(write_spec, write_yaml):
    base, overlay = _base_and_overlay(write_spec, write_yaml)

    spec = load_spec(overlay.path)

    assert spec.name == "tuned"
    assert spec.model.params == {"fast": 5, "slow": 30}
    assert spec.nodes["fast"].params.window == 5  # the base's ${fast} sees the overlay's value
    assert spec.nodes["slow"].params.window == 30
    # mappings merge key by key: the overlay's `short` joins the base's `mode` and `in`
    assert (spec.nodes["cross"].params.mode, spec.nodes["cross"].params.short) == ("state", False)
    assert spec.nodes["cross"].inputs == ["fast", "slow"]
    assert spec.where("params", "fast") == overlay.at("fast: ^5")
    assert spec.where("params", "slow") == base.at("slow: ^30")
    assert spec.where("nodes", "cross", "with", "short") == overlay.at("short: ^false")
    assert spec.where("nodes", "cross", "with", "mode") == base.at("mode: ^state")
    assert spec.where("nodes", "cross", "in") == base.at("^in: [fast, slow]")  # a list is located at its key


def test_set_beats_the_overlay_and_says_so(write_spec, write_yaml):
    base, overlay = _base_and_overlay(write_spec, write_yaml)

    spec = load_spec(overlay.path, sets=["fast=7"], places=["slow=numba"])

    assert spec.model.params == {"fast": 7, "slow": 30}
    assert spec.nodes["fast"].params.window == 7
    assert spec.nodes["slow"].place == "numba"
    assert spec.where("params", "fast") == SourceLocation(f"{COMMAND_LINE} --set fast=7", 0, 0)
    assert spec.where("nodes", "slow", "place") == SourceLocation(f"{COMMAND_LINE} --place slow=numba", 0, 0)
    assert spec.where("params", "slow") == base.at("slow: ^30")


def test_overlay_removes_a_node_set_to_null(write_spec, write_yaml):
    write_spec(NODES, name="base.yaml")
    overlay = write_yaml("""
        extends: base.yaml
        nodes:
          cross: null
    """, name="no_cross.yaml")

    spec = load_spec(overlay.path)

    assert list(spec.nodes) == ["bars", "fast", "slow"]


def test_hash_ignores_key_order_comments_and_description(write_yaml, write_spec):
    spec = write_spec(NODES)
    reordered = write_yaml(f"""
        # the same spec, written differently
        kind: strategy
        description: only for people
        nodes:
          cross: {{in: [fast, slow], with: {{mode: state}}, op: signal.crossover}}
          slow:
            with: {{window: "${{slow}}"}}  # a comment
            in: bars.close
            op: indicator.sma
          fast: {{with: {{window: "${{fast}}"}}, op: indicator.sma, in: bars.close}}
          bars:
            with: {{timezone: America/New_York, instrument: AAPL, path: {SAMPLE_BARS}}}
            op: source.bars_csv
        params: {{slow: 30, fast: 10}}
        name: test
        tickloom: 1
    """, name="reordered.yaml")

    assert load_spec(reordered.path).spec_hash == load_spec(spec.path).spec_hash


def test_hash_changes_with_a_param_and_only_with_its_value(write_spec):
    spec = write_spec(NODES)

    plain = load_spec(spec.path).spec_hash

    assert load_spec(spec.path, sets=["fast=11"]).spec_hash != plain
    assert load_spec(spec.path, sets=["fast=10"]).spec_hash == plain


def test_user_op_module_is_loaded_validated_and_planned(write_spec, count_op_module):
    spec_file = write_spec(
        """
        count: {op: user.count, in: bars.close, with: {start: 2}}
        """,
        top=f"modules: [{count_op_module}]",
    )

    spec = load_spec(spec_file.path)
    plan = compile_plan(spec)

    assert spec.nodes["count"].op.name == "user.count"
    assert spec.nodes["count"].params.start == 2
    assert plan.segment_of("count").nodes == ["count"]
    assert plan.recorded == ["count"]
    lines = plan.describe().splitlines()
    assert any(line.split()[1:4] == ["count", "user.count", "on"] for line in lines), plan.describe()
