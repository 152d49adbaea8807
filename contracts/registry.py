"""Loading product specs from YAML with errors a human can act on.

:func:`load_spec_file` parses one YAML file and validates it into a
:class:`~contracts.spec.ProductSpec`; :func:`load_products` loads several (the shipped
``contracts/specs/*.yaml`` by default) and refuses duplicate product codes or ids.

Every failure is a :class:`~contracts.errors.FlopexError` with one line:
``<file>:<line>: <field.path>: <what is wrong>`` — the line is that of the offending key
in the YAML (or of its parent mapping when the key is missing).

Numbers in YAML are read as exact decimals: the loader keeps YAML floats as their source
text (``tick_size: 0.001`` is the string ``"0.001"``), so no binary float ever holds a
price; integers stay integers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from contracts.errors import FlopexError
from contracts.spec import ProductSpec


class _ExactLoader(yaml.SafeLoader):
    """SafeLoader that never builds floats (kept as strings) and records key lines."""


# Drop the implicit float resolver: "0.001" stays a str, parsed later as Decimal.
_ExactLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:float"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# YAML 1.1 sexagesimal ints (08:30 -> 510) are a trap in trading hours: keep them strings.
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+$")


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    if _SEXAGESIMAL.match(node.value):
        return node.value
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_ExactLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict:
    """Map each field path (tuple of keys / list indexes) to its 1-based YAML line."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_index(value_node, (*path, key), out)
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), out)
    return out


def _line_for(lines: dict, loc: tuple) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _format_validation_error(source: str, exc: ValidationError, lines: dict) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    field = ".".join(str(p) for p in loc) or "(top level)"
    msg = first["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if first["type"] == "missing":
        msg = "required field is missing"
    elif first["type"] == "extra_forbidden":
        msg = "unknown field"
    elif first["type"] == "literal_error":
        msg = f"{msg}, got {first.get('input')!r}"
    line = _line_for(lines, loc)
    where = f"{source}:{line}" if line else source
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {field}: {msg}{more}"


def parse_spec_text(text: str, source: str = "<spec>") -> ProductSpec:
    """Validate YAML text into a ProductSpec; FlopexError with file:line: field: reason."""
    try:
        node = yaml.compose(text, Loader=_ExactLoader)
        data = yaml.load(text, Loader=_ExactLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FlopexError(f"{where}: not valid YAML: {problem}") from None
    if node is None or not isinstance(data, dict):
        raise FlopexError(f"{source}: a spec must be a YAML mapping of fields")
    lines = _line_index(node)
    try:
        return ProductSpec.model_validate(data)
    except ValidationError as exc:
        raise FlopexError(_format_validation_error(source, exc, lines)) from None


def load_spec_file(path: str | Path) -> ProductSpec:
    """Load and validate one spec file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FlopexError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FlopexError(f"{p}: cannot read: {exc}") from None
    return parse_spec_text(text, str(p))


def shipped_spec_paths() -> list[Path]:
    """The spec files shipped in the package (``contracts/specs/*.yaml``), sorted."""
    root = resources.files("contracts") / "specs"
    return sorted(Path(str(p)) for p in root.iterdir() if str(p).endswith(".yaml"))


def load_products(paths: Iterable[str | Path] | None = None) -> dict[str, ProductSpec]:
    """Load specs (shipped ones by default) keyed by product code, in product-id order.

    Raises FlopexError on the first bad file, or when two files share a code or product id.
    """
    files = [Path(p) for p in paths] if paths is not None else shipped_spec_paths()
    if not files:
        raise FlopexError("no spec files given")
    by_code: dict[str, tuple[ProductSpec, Path]] = {}
    by_id: dict[int, Path] = {}
    for f in files:
        spec = load_spec_file(f)
        if spec.code in by_code:
            raise FlopexError(
                f"{f}: code: duplicate product code {spec.code!r} (also in {by_code[spec.code][1]})"
            )
        if spec.product_id in by_id:
            raise FlopexError(
                f"{f}: product_id: duplicate product id {spec.product_id} (also in "
                f"{by_id[spec.product_id]})"
            )
        by_code[spec.code] = (spec, f)
        by_id[spec.product_id] = f
    ordered = sorted(by_code.values(), key=lambda sf: sf[0].product_id)
    return {s.code: s for s, _ in ordered}
