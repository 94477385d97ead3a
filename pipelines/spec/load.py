"""Load a spec: read YAML, layer overlays and overrides, substitute params, validate, build the graph, hash.

Precedence, lowest first: the base spec < each overlay that ``extends`` it (nearest last) < ``--set`` and
``--place`` on the command line. Mappings merge key by key; any other value is replaced whole; a node set to
``null`` in an overlay is removed. ``origins`` records which file, line and column (or which command-line
option) gave each final value; ``tickloom validate --explain`` prints it.
"""

import difflib
import hashlib
import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hardware.targets import KNOWN_TARGETS, targets_of
from nodes.contract import Op, OpRegistry, default_registry
from nodes.errors import SourceLocation, SpecError
from pipelines.spec.model import SpecModel
from pipelines.spec.yaml_source import Located, read_yaml

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_TYPE_TAG = re.compile(r"^(str|int|float|bool|list\[.*\]|dict\[.*\]|function-.*)$")
COMMAND_LINE = "<command line>"


@dataclass(frozen=True)
class NodeDefinition:
    """A validated node: its op class, validated params, raw input references and final placement."""

    id: str
    op: type[Op]
    params: Any
    inputs: Any
    place: str
    index: int  # declaration order, for stable topological order


@dataclass
class LoadedSpec:
    """A fully resolved and validated spec, ready to compile."""

    path: Path
    model: SpecModel
    nodes: dict[str, NodeDefinition]
    registry: OpRegistry
    origins: dict[tuple, SourceLocation]
    spec_hash: str
    warnings: list[str] = field(default_factory=list)
    graph: Any = None  # pipelines.graph.Graph, set by build_graph
    references: dict[tuple, list[str]] = field(default_factory=dict)  # path → params its ${} named

    @property
    def name(self) -> str:
        return self.model.name

    def origin(self, *path) -> SourceLocation | None:
        """Where exactly this value was written, or None when it is a default."""
        return self.origins.get(tuple(path))

    def where(self, *path) -> SourceLocation | None:
        path = tuple(path)
        while path and path not in self.origins:
            path = path[:-1]
        return self.origins.get(path)

    def resolved(self) -> dict:
        """The spec's meaning as plain data: what the hash is computed over."""
        return {
            "tickloom": self.model.tickloom,
            "name": self.model.name,
            "kind": self.model.kind,
            "params": self.model.params,
            "defaults": self.model.defaults.model_dump(),
            **({"placement": self.model.placement.model_dump()} if self.model.placement is not None else {}),
            "modules": {m: _file_digest(self.path.parent / m) for m in self.model.modules},
            "nodes": {
                node.id: {
                    "op": node.op.name,
                    "in": node.inputs,
                    "with": node.params.model_dump(mode="json"),
                    "place": node.place,
                }
                for node in self.nodes.values()
            },
        }


# A placement the planner resolves (pipelines/placement.py) before the plan is compiled.
AUTO_PLACE = "auto"

# A spec's promotion settings (regression window, tolerances) live beside it in ``<spec>.promotion.yaml``.
PROMOTION_SUFFIX = ".promotion.yaml"
# Folders of a specs tree that hold other YAML formats: hardware profiles and topologies, stress scenarios.
NON_SPEC_FOLDERS = ("hardware", "stress")


def spec_files(root: Path) -> list[Path]:
    """Return every spec file under ``root`` (``*.yaml``), sorted, leaving out the ``NON_SPEC_FOLDERS`` and
    promotion sidecars."""
    root = Path(root)
    return sorted(
        path for path in root.rglob("*.yaml")
        if not set(NON_SPEC_FOLDERS) & set(path.relative_to(root).parts[:-1])
        and not path.name.endswith(PROMOTION_SUFFIX)
    )


def load_spec(
    path: str | Path,
    sets: list[str] | None = None,
    places: list[str] | None = None,
    registry: OpRegistry | None = None,
) -> LoadedSpec:
    """Load, merge, validate and hash a spec.

    ``sets`` are ``name=value`` param overrides (value parsed as YAML); ``places`` are ``node=target``.

    Raises:
        SpecError: on any problem, listing every problem found with its file:line:col.
        GraphError: when the nodes do not form a valid graph.
    """
    path = Path(path)
    data, origins = _read_with_bases(path, chain=())
    _apply_overrides(data, origins, sets or [], places or [])
    model = _validate(SpecModel, data, origins, ())
    warnings = _unused_params(model, data)
    references: dict[tuple, list[str]] = {}
    nodes_data = _substitute(data["nodes"], model.params, origins, references)
    module_paths = [path.parent / m for m in model.modules]
    _check_modules_exist(module_paths, origins)
    registry = (registry or default_registry()).with_modules(module_paths)
    nodes = _validate_nodes(model, nodes_data, origins, registry, path.parent)
    loaded = LoadedSpec(path, model, nodes, registry, origins, spec_hash="", warnings=warnings, references=references)
    # imported here: the graph builder needs a LoadedSpec and the loader needs the graph's checks
    from pipelines.graph import build_graph

    build_graph(loaded)
    loaded.spec_hash = hashlib.sha256(canonical_json(loaded.resolved()).encode()).hexdigest()
    return loaded


def _read_with_bases(path: Path, chain: tuple[Path, ...]) -> tuple[dict, dict]:
    located = read_yaml(path)
    data = located.data
    if not isinstance(data, dict):
        raise SpecError.at(located.where(()), "a spec must be a mapping (tickloom, name, kind, nodes)")
    origins = dict(located.locations)
    base_ref = data.get("extends")
    if base_ref is None:
        return data, origins
    if not isinstance(base_ref, str):
        raise SpecError.at(located.where(("extends",)), "extends: expected the path of a base spec")
    base_path = (path.parent / base_ref).resolve()
    if base_path in chain or base_path == path.resolve():
        raise SpecError.at(located.where(("extends",)), f"extends {base_ref!r} forms a loop of overlays")
    if not base_path.exists():
        raise SpecError.at(
            located.where(("extends",)),
            f"extends: base spec {base_ref!r} not found (looked for {base_path})",
        )
    base_data, base_origins = _read_with_bases(base_path, chain + (path.resolve(),))
    # an overlay's modules are relative to the overlay; rebase the base's onto the overlay's folder
    if "modules" in base_data:
        base_data["modules"] = [_relative(base_path.parent / m, path.parent) for m in base_data["modules"]]
    merged_origins = dict(base_origins)
    merged = _merge(base_data, data, (), merged_origins, origins)
    merged.pop("extends", None)
    return merged, merged_origins


def _relative(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target.resolve(), start.resolve())


def _merge(base: Any, overlay: Any, path: tuple, origins: dict, overlay_origins: dict) -> Any:
    if isinstance(base, dict) and isinstance(overlay, dict):
        result = dict(base)
        for key, value in overlay.items():
            child = path + (key,)
            if value is None and path == ("nodes",):
                result.pop(key, None)
                continue
            result[key] = _merge(base.get(key), value, child, origins, overlay_origins)
        origins[path] = overlay_origins.get(path, origins.get(path))
        return result
    for key in [p for p in origins if p[: len(path)] == path and len(p) > len(path)]:
        del origins[key]
    for key, where in overlay_origins.items():
        if key[: len(path)] == path:
            origins[key] = where
    return overlay


def _apply_overrides(data: dict, origins: dict, sets: list[str], places: list[str]) -> None:
    params = data.setdefault("params", {})
    if not isinstance(params, dict):
        return
    for number, item in enumerate(sets, start=1):
        where = SourceLocation(f"{COMMAND_LINE} --set {item}", 0, 0)
        name, value = _split_assignment(item, "--set", "name=value", where)
        if name not in params:
            raise SpecError.at(where, f"--set {name}: the spec has no param {name!r}{_did_you_mean(name, params)}")
        params[name] = yaml.safe_load(value) if value else ""
        origins[("params", name)] = SourceLocation(f"{COMMAND_LINE} --set {item}", 0, 0)
    nodes = data.get("nodes")
    for number, item in enumerate(places, start=1):
        where = SourceLocation(f"{COMMAND_LINE} --place {item}", 0, 0)
        node, target = _split_assignment(item, "--place", "node=target", where)
        if not isinstance(nodes, dict) or node not in nodes:
            raise SpecError.at(where, f"--place {node}: no node {node!r}{_did_you_mean(node, nodes or {})}")
        nodes[node]["place"] = target
        origins[("nodes", node, "place")] = SourceLocation(f"{COMMAND_LINE} --place {item}", 0, 0)


def _split_assignment(item: str, option: str, form: str, where: SourceLocation) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise SpecError.at(where, f"{option} {item!r}: expected {form}")
    return name.strip(), value.strip()


def _validate(model_class, data: Any, origins: dict, prefix: tuple):
    try:
        return model_class.model_validate(data)
    except ValidationError as error:
        raise SpecError(validation_problems(error, model_class, origins, prefix)) from None


def validation_problems(error: ValidationError, model_class, origins: dict, prefix: tuple) -> list:
    """One problem per place: a value that fits none of a union's types is one error, not one per type."""
    by_place: dict[tuple, list[dict]] = {}
    for e in error.errors():
        place = tuple(p for p in e["loc"] if isinstance(p, int) or not _TYPE_TAG.match(p))
        by_place.setdefault(place, []).append(e)
    problems = []
    for place, errors in by_place.items():
        if len(errors) == 1:
            problems.append(_problem(errors[0], model_class, origins, prefix))
            continue
        where = _where(origins, prefix + place)
        expected = sorted({str(p) for e in errors for p in e["loc"] if isinstance(p, str) and _TYPE_TAG.match(p)})
        given = errors[0].get("input")
        shown = f" (got {given!r})" if not isinstance(given, (dict, list)) else ""
        problems.append((where, f"{'.'.join(map(str, prefix + place))}: expected one of {', '.join(expected)}{shown}"))
    return problems


def _problem(error: dict, model_class, origins: dict, prefix: tuple) -> tuple[SourceLocation | None, str]:
    # drop the union-member tags pydantic adds to a location ("str", "list[str]", ...): they are not keys
    loc = tuple(p for p in error["loc"] if isinstance(p, int) or not _TYPE_TAG.match(p))
    where = _where(origins, prefix + loc)
    field_name = loc[-1] if loc else ""
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model_class, loc[:-1])
        hint = _did_you_mean(str(field_name), allowed)
        expected = f"; expected one of: {', '.join(allowed)}" if allowed and not hint else ""
        return where, f"unknown key {field_name!r}{hint}{expected}"
    if kind == "missing":
        return where, f"missing required key {field_name!r}" + (f" in {'.'.join(map(str, prefix + loc[:-1]))}" if prefix + loc[:-1] else "")
    dotted = ".".join(map(str, prefix + loc))
    if kind == "value_error":
        return where, f"{dotted}: {error['ctx']['error']}"  # our own validator's words, without pydantic's prefix
    given = error.get("input")
    shown = f" (got {given!r})" if not isinstance(given, (dict, list)) else ""
    return where, f"{dotted}: {error['msg']}{shown}"


def _allowed_keys(model_class, loc: tuple) -> list[str]:
    """The keys a mapping at ``loc`` accepts, found by walking the models (``dict[str, Model]`` skips a key)."""
    current, parts = model_class, list(loc)
    while parts:
        fields = {(f.alias or n): f for n, f in current.model_fields.items()}
        field_info = fields.get(parts.pop(0))
        if field_info is None:
            return []
        annotation = field_info.annotation
        args = typing.get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            current = annotation
        elif args and isinstance(args[-1], type) and issubclass(args[-1], BaseModel):
            if parts:
                parts.pop(0)
            current = args[-1]
        else:
            return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _fpga_refusal(op: type[Op], params) -> str | None:
    """Why ``op`` with ``params`` cannot run on ``fpga``, or None when it can (``hardware.fpga``).

    An op runs on fpga through its golden model; one without an implementation is refused with the reasons
    its code does not map to fabric (floats, division, data-dependent loops), or, when it would map, because
    nobody has written its RTL and timing yet.
    """
    from hardware.fpga.registry import check_fpga_placeable, fpga_impl, fpga_impls

    impl = fpga_impl(op.name)
    try:
        if impl is not None:
            impl.check(params)
            return None
        check_fpga_placeable(op, params)
    except SpecError as error:
        return "; ".join(message for _, message in error.problems)
    return (f"op {op.name} has no FPGA implementation (golden model, RTL, timing); ops that run on fpga: "
            f"{', '.join(sorted(fpga_impls()))}")


def _where(origins: dict, path: tuple) -> SourceLocation | None:
    while path and path not in origins:
        path = path[:-1]
    return origins.get(path)


def _did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unused_params(model: SpecModel, data: dict) -> list[str]:
    text = json.dumps(data.get("nodes", {}))
    used = set(_REFERENCE.findall(text))
    return [f"param {name!r} is never used by a node" for name in model.params if name not in used]


def _substitute(nodes: dict, params: dict, origins: dict, references: dict) -> dict:
    def walk(value, path):
        if isinstance(value, dict):
            return {k: walk(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, path + (i,)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            references[path] = [name.strip() for name in _REFERENCE.findall(value)]
            return _resolve_references(value, params, _where(origins, path))
        return value

    return {node_id: walk(node, ("nodes", node_id)) if isinstance(node, dict) else node for node_id, node in nodes.items()}


def _resolve_references(text: str, params: dict, where: SourceLocation | None) -> Any:
    for name in _REFERENCE.findall(text):
        if name.strip() not in params:
            raise SpecError.at(
                where, f"${{{name}}}: no param named {name.strip()!r}{_did_you_mean(name.strip(), params)}"
                + (f"; params are: {', '.join(params)}" if params else "; the spec has no params")
            )
    whole = _REFERENCE.fullmatch(text.strip())
    if whole:
        return params[whole.group(1).strip()]  # keeps the param's type: ${fast} → 10, not "10"
    if text.count("${") != len(_REFERENCE.findall(text)):
        raise SpecError.at(where, f"{text!r}: unclosed '${{' (expected ${{name}})")
    return _REFERENCE.sub(lambda m: str(params[m.group(1).strip()]), text)


def _check_modules_exist(paths: list[Path], origins: dict) -> None:
    for index, module_path in enumerate(paths):
        if not module_path.exists():
            raise SpecError.at(_where(origins, ("modules", index)), f"module file {module_path} not found")


def _validate_nodes(model: SpecModel, nodes_data: dict, origins: dict, registry: OpRegistry, base_dir: Path) -> dict:
    problems: list[tuple[SourceLocation | None, str]] = []
    nodes: dict[str, NodeDefinition] = {}
    for index, (node_id, node) in enumerate(model.nodes.items()):
        at = ("nodes", node_id)
        op = registry.get(node.op)
        if op is None:
            close = registry.suggest(node.op)
            hint = f"; did you mean {close[0]!r}?" if close else "; `tickloom ops` lists the ops"
            problems.append((_where(origins, at + ("op",)), f"unknown op {node.op!r}{hint}"))
            continue
        raw_with = nodes_data[node_id].get("with") or {}
        try:
            params = op.Params.model_validate(raw_with)
        except ValidationError as error:
            for loc, message in validation_problems(error, op.Params, origins, at + ("with",)):
                problems.append((loc, f"{message} [op {op.name}]"))
            continue
        try:
            op = op.specialize(params, base_dir=base_dir)
        except SpecError as error:
            problems.extend((loc or _where(origins, at + ("with",)), f"{message} [op {op.name}]")
                            for loc, message in error.problems)
            continue
        place = node.place or model.defaults.place
        place_path = at + ("place",) if node.place else ("defaults", "place")
        if place == AUTO_PLACE:
            # the planner chooses among the op's targets (pipelines/placement.py); other ops stay on cpu
            nodes[node_id] = NodeDefinition(node_id, op, params, node.in_, AUTO_PLACE if op.kind == "stream" else "cpu",
                                            index)
            continue
        if place not in KNOWN_TARGETS:
            problems.append(
                (_where(origins, place_path),
                 f"unknown placement {place!r}{_did_you_mean(place, KNOWN_TARGETS)}; expected one of: "
                 f"{', '.join(KNOWN_TARGETS)}")
            )
            continue
        if op.kind != "stream" and node.place is None:
            place = "cpu"  # sources and table ops run in the host process whatever the default
        if place == "fpga" and op.kind == "stream":
            refused = _fpga_refusal(op, params)
            if refused:
                problems.append((_where(origins, place_path), refused))
                continue
        elif place not in op.targets:
            problems.append(
                (_where(origins, place_path),
                 f"op {op.name} is not available on {place!r}; it runs on: {', '.join(sorted(targets_of(op)))}")
            )
            continue
        nodes[node_id] = NodeDefinition(node_id, op, params, node.in_, place, index)
    if problems:
        raise SpecError(problems)
    return nodes


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"
