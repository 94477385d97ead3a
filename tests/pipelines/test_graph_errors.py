"""Graph errors: inputs that name no node or port, ports of the wrong type, cycles.

Each is a ``GraphError`` (a ``SpecError``) located at the input reference the user has to change.
"""

import pytest

from nodes.errors import GraphError, SourceLocation
from pipelines.spec.load import load_spec


def _graph_error(path) -> tuple[SourceLocation, str]:
    with pytest.raises(GraphError) as error:
        load_spec(path)
    assert len(error.value.problems) == 1, error.value.problems
    return error.value.problems[0]


def test_unknown_input_node_suggests_the_node(write_spec):
    spec = write_spec("""
        fast: {op: indicator.sma, in: bras.close, with: {window: 10}}
    """)

    where, message = _graph_error(spec.path)

    assert where == spec.at("bras.close")
    assert message == "unknown input node 'bras'; did you mean 'bars'?"


def test_unknown_input_node_in_a_list_points_at_the_item(write_spec):
    spec = write_spec("""
        fast: {op: indicator.sma, in: bars.close, with: {window: 10}}
        cross: {op: signal.crossover, in: [fast, fsat]}
    """)

    where, message = _graph_error(spec.path)

    assert where == spec.at("fsat]")
    assert message == "unknown input node 'fsat'; did you mean 'fast'?"


def test_unknown_output_port_suggests_the_port_and_lists_them(write_spec):
    spec = write_spec("""
        fast: {op: indicator.sma, in: bars.clsoe, with: {window: 10}}
    """)

    where, message = _graph_error(spec.path)

    assert where == spec.at("bars.clsoe")
    assert message.startswith("unknown output port 'clsoe' of node 'bars' (source.bars_csv)")
    assert "did you mean 'close'?" in message
    assert message.endswith("outputs: open, high, low, close, volume")


def test_wrong_port_type_names_both_types(write_spec, count_op_module):
    spec = write_spec(
        """
        count: {op: user.count, in: bars.close}
        smooth: {op: indicator.sma, in: count.n, with: {window: 3}}
        """,
        top=f"modules: [{count_op_module}]",
    )

    where, message = _graph_error(spec.path)

    assert where == spec.at("count.n")
    assert message == "wrong port type: input 'x' of indicator.sma expects f64, count.n is i64"


def test_cycle_is_printed_in_the_direction_data_flows(write_spec):
    # x reads z, y reads x, z reads y: data flows x → y → z → x
    spec = write_spec("""
        x: {op: signal.crossover, in: [bars.close, z]}
        y: {op: indicator.sma, in: x, with: {window: 3}}
        z: {op: indicator.sma, in: y, with: {window: 3}}
    """)

    where, message = _graph_error(spec.path)

    # printed from the first node of the cycle (y), located at that node's input (x → y closes the cycle)
    assert message == (
        "cycle: y → z → x → y; break it with a feedback input prev(node.port), which reads the value one event back"
    )
    assert where == spec.at("y: {op: indicator.sma, in: ^x")


def test_two_node_cycle(write_spec):
    spec = write_spec("""
        a: {op: indicator.sma, in: b, with: {window: 3}}
        b: {op: indicator.sma, in: a, with: {window: 3}}
    """)

    where, message = _graph_error(spec.path)

    assert message.startswith("cycle: b → a → b;")
    assert where == spec.at("b: {op: indicator.sma, in: ^a")


def test_feedback_input_breaks_the_cycle(write_spec):
    spec = write_spec("""
        x: {op: signal.crossover, in: [bars.close, prev(z.out)]}
        y: {op: indicator.sma, in: x, with: {window: 3}}
        z: {op: indicator.sma, in: y, with: {window: 3}}
    """)

    loaded = load_spec(spec.path)

    assert loaded.graph.order == ["bars", "x", "y", "z"]
