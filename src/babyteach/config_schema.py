"""The workflow config checked against its JSON schema, with one short line per problem.

The Snakefile's start-up path calls :func:`check_config` before Snakemake's own ``validate`` (which
fills in the defaults)::

    check_config(config, "workflow/schemas/config.schema.yaml")

Two things it does that ``validate`` does not:

- **Numbers in any YAML spelling.** PyYAML follows YAML 1.1, which reads ``1e-3``, ``1e8`` and
  ``5.0e-4`` (an exponent without a sign or without a dot) as *strings*. Where the schema asks for a
  number, such a string is turned into the number it spells, and an integral float (``1.0e8``,
  ``32.0``) into an int where the schema asks for an integer (:func:`as_number`, the one place this
  happens; :class:`babyteach.train_config.TrainConfig` calls it too, for values that do not pass the
  schema: probe settings, the training job's JSON).
- **Short errors.** One line per problem: the key path (``training.lr``, ``seeds[1]``), the
  offending value, the reason and what is allowed (type, range or values), and for an unknown key
  the closest known one. ``validate`` prints the whole schema and config instead (1,347 lines for a
  typo in a top-level key).

It is also the one place the package reads the schema's **defaults**: a dataclass field that holds
a config key takes its default from the schema (:func:`config_field`; :func:`schema_section` makes every
bare field of a class one), so ``TrainConfig()``,
``FinetuneConfig()``, ``make_method("dwml")`` and the ``babyteach`` command's options get the values
a workflow run gets, and no default is written twice. The schema is read from :data:`SCHEMA_PATH`.

And the **checks** every validating constructor shares: :func:`is_int`, :func:`is_number` (a bool is
neither) and :func:`require` (an :class:`InputError` naming the key, what it must be and the value).
"""

from __future__ import annotations

import copy
import difflib
import functools
import inspect
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_origin

import yaml

from babyteach.errors import InputError

_C = TypeVar("_C")  # a config dataclass

#: A number as YAML 1.1 leaves it a string: digits with an exponent (``1e-3``, ``5.0e4``), digit groups
#: (``1_000``) allowed; no ``inf``/``nan`` (a config value is never meant to be either).
_NUMBER_TEXT = re.compile(r"[-+]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][-+]?\d+)?")

#: How long an offending value may be in a message before it is cut.
_VALUE_CHARS = 80

#: The workflow config's JSON schema (``workflow/schemas/config.schema.yaml``, which the Snakefile
#: validates against): a link beside this module, packaged as a copy of it, so that a checkout and an
#: installed ``babyteach`` read the same defaults.
SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (``True`` is not, though Python counts bools as ints)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def require(ok: bool, key: str, what: str, *values: Any) -> None:
    """:class:`InputError` ``<key>: must be <what>, got <values>`` unless ``ok`` (``key`` the config key,
    e.g. ``training.lr``; without ``values`` the message ends after ``what``)."""
    if not ok:
        got = f", got {', '.join(repr(value) for value in values)}" if values else ""
        raise InputError(f"{key}: must be {what}{got}")


@functools.cache
def _package_schema() -> dict[str, Any]:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def schema_property(*keys: str) -> Mapping[str, Any]:
    """The schema of config key ``keys`` (``("training", "lr")``: its type, bounds, description and
    default); ``KeyError`` naming the key if the schema has none."""
    node: Mapping[str, Any] = _package_schema()
    for depth, key in enumerate(keys, start=1):
        properties = node.get("properties", {})
        if key not in properties:
            raise KeyError(f"the config schema ({SCHEMA_PATH}) has no key {key_path(keys[:depth])}")
        node = properties[key]
    return node


def schema_default(*path: str | int) -> Any:
    """The schema's default of config key ``path`` (a copy): ``("training", "lr")`` → 0.0001; an
    integer indexes into a list default, ``("seeds", 0)`` → the first default seed."""
    keys = [part for part in path if isinstance(part, str)]
    if path[: len(keys)] != tuple(keys):
        raise ValueError(f"config key path {path!r}: names first, then list indices")
    value = schema_property(*keys)["default"]
    for index in path[len(keys) :]:
        value = value[index]
    return copy.deepcopy(value)


def config_field(*path: str | int, help: str | None = None) -> Any:
    """A dataclass field that holds config key ``path``, with the schema's default (a list default as a
    tuple, so that frozen dataclasses stay hashable); ``metadata`` holds ``config_key``, the key's name
    (``training.lr``, ``seeds[0]``), and ``help``, the key's description unless given."""
    default = schema_default(*path)
    if isinstance(default, list):
        default = tuple(default)
    if help is None:
        help = " ".join(schema_property(*(part for part in path if isinstance(part, str)))["description"].split())
    return field(default=default, metadata={"help": help, "config_key": key_path(path)})


def schema_section(section: str) -> Callable[[type[_C]], type[_C]]:
    """A class decorator, placed under ``@dataclass``: every field the class body annotates without a
    value becomes ``config_field(section, <field name>)``.

    A config dataclass then names its schema section once, and each key once, as its field name (a
    field that holds another key, or has a default of its own, still writes it out). ``ClassVar``
    annotations are left alone. A field the section lacks is a ``KeyError`` at import, naming the key.
    """

    def fill(cls: type[_C]) -> type[_C]:
        for name, annotation in inspect.get_annotations(cls).items():
            if name in vars(cls) or _is_class_var(annotation):
                continue
            setattr(cls, name, config_field(section, name))
        return cls

    return fill


def _is_class_var(annotation: Any) -> bool:
    """Whether a class-body annotation (a string under ``from __future__ import annotations``) is a ``ClassVar``."""
    if isinstance(annotation, str):
        return re.match(r"(typing\.)?ClassVar\b", annotation) is not None
    return annotation is ClassVar or get_origin(annotation) is ClassVar


def as_number(value: Any, integer: bool = False) -> Any:
    """``value`` as the number it spells, else unchanged.

    A string that spells a number (``"1e-3"``: YAML 1.1 leaves it a string) becomes a float, or an
    int if ``integer`` and it is whole (``"1e8"`` → 100000000); with ``integer``, a whole float
    (``1.0e8``, ``32.0``) becomes an int. Anything else (booleans, ``None``, ``"abc"``) is returned as
    it is, and a number that is not whole stays a float (``"2.5e-1"`` → 0.25), for validation to
    reject with its type.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        value = float(value.strip().replace("_", ""))
        if not integer:
            return value
    if integer and isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type", [])
    return [kind] if isinstance(kind, str) else list(kind)


def coerce_numbers(value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` with every number spelled as text, or whole float for an integer, turned into the
    number the schema asks for (:func:`as_number`); mappings and lists are changed in place."""
    types = _types(schema)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in list(value):
            if key in properties:
                value[key] = coerce_numbers(value[key], properties[key])
        return value
    if isinstance(value, list):
        if isinstance(schema.get("items"), Mapping):
            value[:] = [coerce_numbers(item, schema["items"]) for item in value]
        return value
    if "string" in types:
        return value  # text is allowed here: "1e-3" stays text
    if "integer" in types and "number" not in types:
        return as_number(value, integer=True)
    if "number" in types:
        return as_number(value)
    return value


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def allowed(schema: Mapping[str, Any]) -> str:
    """What a schema allows, in words: "an integer >= 1, or null", "one of '10M', '100M'",
    "a list of at least 1 unique items, each one of …"."""
    if "enum" in schema:
        options = ", ".join(repr(option) for option in schema["enum"])
        return f"one of {options}"
    words = {
        "integer": "an integer",
        "number": "a number",
        "string": "a string",
        "boolean": "true or false",
        "object": "a mapping",
        "array": "a list",
    }
    types = _types(schema)
    main = [t for t in types if t != "null"]
    text = " or ".join(words.get(t, t) for t in main) or "any value"
    bounds = [
        f"{op} {_number(schema[key])}"
        for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))
        if key in schema
    ]
    if bounds:
        text += " " + " and ".join(bounds)
    if "array" in main:
        details = []
        if "minItems" in schema:
            details.append(f"at least {schema['minItems']} item{'s' if schema['minItems'] != 1 else ''}")
        if schema.get("uniqueItems"):
            details.append("no repeats")
        if details:
            text += f" ({', '.join(details)})"
        if isinstance(schema.get("items"), Mapping) and schema["items"]:
            text += f", each {allowed(schema['items'])}"
    if "object" in main and schema.get("properties") and schema.get("additionalProperties") is False:
        text += f" with keys among {', '.join(schema['properties'])}"
    if "null" in types:
        text += ", or null"
    return text


def key_path(parts: Sequence[str | int]) -> str:
    """``["training", "lr"]`` → ``training.lr``; ``["seeds", 1]`` → ``seeds[1]``; ``[]`` → ``(top level)``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 3] + "..."


def _reason(keyword: str, bound: Any, message: str) -> str:
    """Why a value breaks the schema keyword ``keyword`` (with its value ``bound``), after the value."""
    if keyword == "type":
        return f"is not {allowed({'type': bound})}"
    comparisons = {
        "minimum": "is less than",
        "exclusiveMinimum": "is not greater than",
        "maximum": "is greater than",
        "exclusiveMaximum": "is not less than",
    }
    if keyword in comparisons:
        return f"{comparisons[keyword]} {_number(bound)}"
    if keyword == "minItems":
        return f"has fewer than {bound} item{'s' if bound != 1 else ''}"
    if keyword == "enum":
        return "is not a valid choice"
    if keyword == "uniqueItems":
        return "repeats an item"
    return f"is not allowed ({message})"


def config_problems(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """One line per way ``config`` breaks ``schema`` (none: valid), in key order."""
    from jsonschema import Draft202012Validator

    problems = []
    shown: set[str] = set()  # one line per key: its type error first, if it has one
    errors = Draft202012Validator(schema).iter_errors(config)
    for error in sorted(errors, key=lambda e: ([str(p) for p in e.path], e.validator != "type")):
        path = list(error.absolute_path)
        if error.validator != "additionalProperties":
            if key_path(path) in shown:
                continue
            shown.add(key_path(path))
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            known = list(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - set(known), key=str):
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                where = "the top level" if not path else key_path(path)
                problems.append(
                    f"{key_path([*path, key])}: unknown key; {hint}valid keys of {where}: {', '.join(known)}"
                )
            continue
        value, reason = error.instance, _reason(str(error.validator), error.validator_value, error.message)
        problems.append(f"{key_path(path)}: {_shown(value)} {reason}; allowed: {allowed(error.schema)}")
    return problems


def check_config(config: dict[str, Any], schema_path: str | os.PathLike[str]) -> None:
    """Turn numbers spelled as text into numbers (:func:`coerce_numbers`), then stop with an
    :class:`InputError` listing every problem, one line each, if ``config`` breaks the schema."""
    with open(schema_path, encoding="utf-8") as f:
        schema = yaml.safe_load(f)
    coerce_numbers(config, schema)
    problems = config_problems(config, schema)
    if problems:
        count = f"{len(problems)} problems" if len(problems) > 1 else "a problem"
        raise InputError(
            f"the config (config.yaml with any --configfile and --config over it) has {count}:\n"
            + "\n".join(f"  {line}" for line in problems)
        )
