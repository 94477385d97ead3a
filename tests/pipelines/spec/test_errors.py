"""Spec errors a user can act on: each names file:line:col, what was expected and, for a near miss, "did you mean".

Every test writes a small spec, loads it and checks the one problem reported: the exact place (the token the
user has to change) and the words of the message. Graph errors (inputs, ports, cycles) are in
``tests/pipelines/test_graph_errors.py``.
"""

import pytest

from nodes.errors import GraphError, SourceLocation, SpecError
from pipelines.spec.load import COMMAND_LINE, load_spec


def _only_problem(error: pytest.ExceptionInfo) -> tuple[SourceLocation, str]:
    assert len(error.value.problems) == 1, error.value.problems
    return error.value.problems[0]


def _load_error(path, **options) -> tuple[SourceLocation, str]:
    with pytest.raises(SpecError) as error:
        load_spec(path, **options)
    assert not isinstance(error.value, GraphError), "a spec problem must be caught before the graph is built"
    return _only_problem(error)


# --- YAML ---------------------------------------------------------------------------------------------------


def test_yaml_syntax_error_points_at_the_misindented_key(write_spec):
    spec = write_spec("""
        fast:
          op: indicator.sma
          in: bars.close
         with: {window: 10}
    """)

    where, message = _load_error(spec.path)

    assert where == spec.at("^with: {window: 10}")
    assert message.startswith("YAML syntax error:")
    assert "expected <block end>" in message


def test_yaml_syntax_error_of_an_unclosed_quote_says_where_the_quote_opened(write_spec):
    # the parser only notices at the end of the file; the message must lead back to the opening quote
    spec = write_spec("""
        fast: {op: indicator.sma, in: "bars.close, with: {window: 10}}
    """)

    where, message = _load_error(spec.path)

    assert where == SourceLocation(str(spec.path), spec.text.count("\n") + 1, 1)
    opened = spec.at('in: ^"bars.close')
    assert "YAML syntax error: found unexpected end of stream" in message
    assert f"quoted scalar that starts at line {opened.line}, column {opened.column}" in message


def test_duplicate_key_points_at_the_second_one_and_names_the_first(write_spec):
    spec = write_spec("""
        fast: {op: indicator.sma, in: bars.close, with: {window: 10}}
        slow: {op: indicator.sma, in: bars.close, with: {window: 30}}
        fast:
          op: indicator.ema
    """)

    where, message = _load_error(spec.path)

    first = spec.at("^fast: {op")
    assert where == spec.at("^fast:\n")
    assert message == f"duplicate key 'fast' (first defined at line {first.line})"


# --- keys, ops and params -------------------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_known_one(write_yaml):
    spec = write_yaml("""
        tickloom: 1
        name: test
        kind: strategy
        nodse:
          fast: {op: indicator.sma, in: bars.close, with: {window: 10}}
    """)

    with pytest.raises(SpecError) as error:
        load_spec(spec.path)

    problems = error.value.problems
    assert (spec.at("^nodse:"), "unknown key 'nodse'; did you mean 'nodes'?") in problems
    assert (spec.at("^tickloom"), "missing required key 'nodes'") in problems
    assert len(problems) == 2


def test_unknown_key_in_a_node_suggests_the_known_one(write_spec):
    spec = write_spec("""
        fast:
          op: indicator.sma
          in: bars.close
          wiht: {window: 10}
    """)

    where, message = _load_error(spec.path)

    assert where == spec.at("^wiht:")
    assert message == "unknown key 'wiht'; did you mean 'with'?"


def test_unknown_op_suggests_the_closest_op(write_spec):
    spec = write_spec("""
        fast: {op: indicator.smma, in: bars.close, with: {window: 10}}
    """)

    where, message = _load_error(spec.path)

    assert where == spec.at("indicator.smma")
    assert message == "unknown op 'indicator.smma'; did you mean 'indicator.sma'?"


def test_unknown_op_without_a_near_miss_points_to_the_op_list(write_spec):
    spec = write_spec("""
        fast: {op: magic, in: bars.close}
    """)

    where, message = _load_error(spec.path)

    assert where == spec.at("magic")
    assert message == "unknown op 'magic'; `tickloom ops` lists the ops"


def test_missing_required_param_points_at_the_node(write_spec):
    spec = write_spec("""
        fast: {op: indicator.sma, in: bars.close}
    """)

    where, message = _load_error(spec.path)

    assert where == spec.at("^fast: {op")
    assert message == "missing required key 'window' in nodes.fast.with [op indicator.sma]"


def test_wrong_param_type_points_at_the_value(write_spec):
    spec = write_spec("""
        fast:
          op: indicator.sma
          in: bars.close
          with:
            window: "ten"
    """)

    where, message = _load_error(spec.path)

    assert where == spec.at('window: ^"ten"')
    assert message.startswith("nodes.fast.with.window: ")
    assert "valid integer" in message
    assert "(got 'ten')" in message
    assert message.endswith("[op indicator.sma]")


def test_out_of_range_param_names_the_bound_and_the_value(write_spec):
    spec = write_spec("""
        fast: {op: indicator.sma, in: bars.close, with: {window: 0}}
    """)

    where, message = _load_error(spec.path)

    assert where == spec.at("window: ^0")
    assert message == (
        "nodes.fast.with.window: Input should be greater than or equal to 1 (got 0) [op indicator.sma]"
    )


def test_every_bad_node_is_reported_at_once(write_spec):
    spec = write_spec("""
        fast: {op: indicator.sma, in: bars.close, with: {window: 0}}
        slow: {op: indicator.smma, in: bars.close, with: {window: 30}}
    """)

    with pytest.raises(SpecError) as error:
        load_spec(spec.path)

    assert [where for where, _ in error.value.problems] == [spec.at("window: ^0"), spec.at("indicator.smma")]


def test_user_op_params_are_validated_like_built_ins(write_spec, count_op_module):
    spec = write_spec(
        """
        count: {op: user.count, in: bars.close, with: {start: -1}}
        """,
        top=f"modules: [{count_op_module}]",
    )

    where, message = _load_error(spec.path)

    assert where == spec.at("start: ^-1")
    assert message == "nodes.count.with.start: Input should be greater than or equal to 0 (got -1) [op user.count]"


def test_missing_user_module_points_at_its_entry(write_spec):
    spec = write_spec(
        """
        fast: {op: indicator.sma, in: bars.close, with: {window: 10}}
        """,
        top="modules: [ops/nowhere.py]",
    )

    where, message = _load_error(spec.path)

    assert where == spec.at("ops/nowhere.py")
    assert message == f"module file {spec.path.parent / 'ops/nowhere.py'} not found"


# --- ${} references -------------------------------------------------------------------------------------------


def test_bad_reference_suggests_the_param(write_spec):
    spec = write_spec("""
        fast: {op: indicator.sma, in: bars.close, with: {window: "${fsat}"}}
    """)

    where, message = _load_error(spec.path)

    assert where == spec.at('window: ^"${fsat}"')
    assert message == "${fsat}: no param named 'fsat'; did you mean 'fast'?; params are: fast, slow"


# --- placement ------------------------------------------------------------------------------------------------


def test_unknown_placement_suggests_the_target(write_spec):
    spec = write_spec("""
        fast: {op: indicator.sma, in: bars.close, with: {window: 10}, place: numab}
    """)

    where, message = _load_error(spec.path)

    assert where == spec.at("numab")
    assert message == "unknown placement 'numab'; did you mean 'numba'?; expected one of: cpu, numba, fpga"


def test_placement_the_op_lacks_lists_where_it_runs(write_spec):
    spec = write_spec("""
        fast: {op: indicator.rsi, in: bars.close, with: {window: 10}, place: fpga}
    """)

    where, message = _load_error(spec.path)

    # RSI has no fixed-point twin: the refusal names the lines of its step that do not map to fabric
    assert where == spec.at("fpga")
    assert message.startswith("op indicator.rsi cannot be placed on fpga:")
    assert "nodes/indicators/rsi.py:" in message and "float" in message
    assert "Place it on cpu or numba" in message


def test_default_placement_the_op_lacks_points_at_the_default(write_spec):
    # the source stays on cpu (sources run in the host process); the stream node inherits fpga
    spec = write_spec(
        """
        fast: {op: indicator.rsi, in: bars.close, with: {window: 10}}
        """,
        top="defaults: {place: fpga}",
    )

    where, message = _load_error(spec.path)

    assert where == spec.at("fpga")
    assert message.startswith("op indicator.rsi cannot be placed on fpga:")


# --- overlays -------------------------------------------------------------------------------------------------


def test_overlay_of_a_missing_base_points_at_extends(write_yaml):
    spec = write_yaml("""
        extends: nope.yaml
        params: {fast: 5}
    """, name="overlay.yaml")

    where, message = _load_error(spec.path)

    assert where == spec.at("nope.yaml")
    assert message == f"extends: base spec 'nope.yaml' not found (looked for {spec.path.parent / 'nope.yaml'})"


def test_error_in_an_overlay_points_into_the_overlay(write_spec, write_yaml):
    write_spec("""
        fast: {op: indicator.sma, in: bars.close, with: {window: "${fast}"}}
    """, name="base.yaml")
    overlay = write_yaml("""
        extends: base.yaml
        nodes:
          fast:
            with: {window: 0}
    """, name="overlay.yaml")

    where, message = _load_error(overlay.path)

    assert where == overlay.at("window: ^0")
    assert "greater than or equal to 1 (got 0)" in message


def test_overlay_that_extends_itself_is_refused(write_yaml):
    spec = write_yaml("""
        extends: ./loop.yaml
    """, name="loop.yaml")

    where, message = _load_error(spec.path)

    assert where == spec.at("./loop.yaml")
    assert message == "extends './loop.yaml' forms a loop of overlays"


# --- command line ---------------------------------------------------------------------------------------------


def test_set_of_an_unknown_param_suggests_the_param(write_spec):
    spec = write_spec("""
        fast: {op: indicator.sma, in: bars.close, with: {window: "${fast}"}}
        slow: {op: indicator.sma, in: bars.close, with: {window: "${slow}"}}
    """)

    where, message = _load_error(spec.path, sets=["slow=40", "fsat=5"])

    # a command-line option has no line or column: the location names the option itself
    assert where == SourceLocation(f"{COMMAND_LINE} --set fsat=5", 0, 0)
    assert str(where) == "<command line> --set fsat=5"
    assert message == "--set fsat: the spec has no param 'fsat'; did you mean 'fast'?"


def test_set_without_a_value_says_the_form(write_spec):
    spec = write_spec("""
        fast: {op: indicator.sma, in: bars.close, with: {window: "${fast}"}}
    """)

    where, message = _load_error(spec.path, sets=["fast"])

    assert where == SourceLocation(f"{COMMAND_LINE} --set fast", 0, 0)
    assert message == "--set 'fast': expected name=value"


def test_place_of_an_unknown_node_suggests_the_node(write_spec):
    spec = write_spec("""
        fast: {op: indicator.sma, in: bars.close, with: {window: 10}}
    """)

    where, message = _load_error(spec.path, places=["fsat=numba"])

    assert where == SourceLocation(f"{COMMAND_LINE} --place fsat=numba", 0, 0)
    assert message == "--place fsat: no node 'fsat'; did you mean 'fast'?"


def test_place_on_a_target_the_op_lacks_names_the_option(write_spec):
    spec = write_spec("""
        fast: {op: indicator.sma, in: bars.close, with: {window: 10}}
    """)

    where, message = _load_error(spec.path, places=["bars=numba"])

    assert where == SourceLocation(f"{COMMAND_LINE} --place bars=numba", 0, 0)
    assert message == "op source.bars_csv is not available on 'numba'; it runs on: cpu"
