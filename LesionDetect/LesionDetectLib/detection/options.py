"""A detector's options dataclass → CLI flags, the panel's option widgets and the report's `params`.

Each field declares its help text (and optionally `choices`, `minimum`, `maximum`, `unit`) in
`field(metadata=option(...))`. A field of kind "region" holds a mask on the input's grid; the CLI
takes a file for it (a label map or a Slicer box ROI) and the panel a node. A field of kind "volume" holds a
second volume's array on the input's grid (e.g. a phase image, a parcellation), from a file or a volume node.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass

import numpy as np

from LesionDetectLib.errors import LesionDetectError

REGION = "region"
VOLUME = "volume"
NODE_KINDS = (REGION, VOLUME)  # options given as a file (CLI) or a node (panel)


def option(help: str, *, choices=None, minimum=None, maximum=None, unit: str = "", kind: str = "") -> dict:
    """Field metadata for one option."""
    return {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum, "unit": unit, "kind": kind}


@dataclass(frozen=True)
class OptionSpec:
    """What a front end needs to show one option: name, flag, value type, default, bounds, help."""

    name: str
    flag: str
    value_type: type  # float, int, bool, str; for kind "region": np.ndarray
    default: object
    help: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    kind: str = ""


def option_specs(options_type: type) -> list[OptionSpec]:
    """The options of a detector, in declaration order."""
    hints = typing.get_type_hints(options_type)
    specs = []
    for item in dataclasses.fields(options_type):
        meta = item.metadata
        if "help" not in meta:
            continue  # an internal field, not a user option
        default = item.default if item.default is not dataclasses.MISSING else item.default_factory()
        specs.append(
            OptionSpec(
                name=item.name,
                flag="--" + item.name.replace("_", "-"),
                value_type=_value_type(hints[item.name]),
                default=default,
                help=meta["help"],
                choices=tuple(meta["choices"]) if meta.get("choices") else None,
                minimum=meta.get("minimum"),
                maximum=meta.get("maximum"),
                unit=meta.get("unit", ""),
                kind=meta.get("kind", ""),
            )
        )
    return specs


def add_option_flags(parser: argparse.ArgumentParser, options_type: type) -> None:
    """One flag per option; region and volume options take a file path."""
    for spec in option_specs(options_type):
        help_text = spec.help + ("" if spec.kind in NODE_KINDS else f" (default {spec.default})")
        if spec.kind in NODE_KINDS:
            parser.add_argument(spec.flag, dest=spec.name, metavar="FILE", help=help_text)
        elif spec.value_type is bool:
            parser.add_argument(
                spec.flag, dest=spec.name, action=argparse.BooleanOptionalAction, default=spec.default, help=help_text
            )
        else:
            parser.add_argument(
                spec.flag,
                dest=spec.name,
                type=spec.value_type,
                default=spec.default,
                choices=spec.choices,
                help=help_text,
            )


def options_from_args(options_type: type, args: argparse.Namespace, resolve_file) -> object:
    """The options instance for parsed CLI flags; `resolve_file(kind, path)` reads a region or volume file."""
    values = {}
    for spec in option_specs(options_type):
        value = getattr(args, spec.name)
        values[spec.name] = resolve_file(spec.kind, value) if spec.kind in NODE_KINDS and value else value
    return options_type(**values)


def options_from(options_type: type, values: dict):
    """An options instance from a dict of field values (unknown keys refused)."""
    names = {f.name for f in dataclasses.fields(options_type)}
    unknown = set(values) - names
    if unknown:
        raise LesionDetectError(f"Unknown option(s) {sorted(unknown)}; known: {sorted(names)}.")
    return options_type(**values)


def check_bounds(options) -> list[str]:
    """Problems with option values outside their declared bounds or choices (empty when all fit)."""
    problems = []
    for spec in option_specs(type(options)):
        value = getattr(options, spec.name)
        if value is None or spec.kind in NODE_KINDS:
            continue
        if spec.minimum is not None and value < spec.minimum:
            problems.append(f"{spec.flag} must be ≥ {spec.minimum:g} (got {value:g})")
        if spec.maximum is not None and value > spec.maximum:
            problems.append(f"{spec.flag} must be ≤ {spec.maximum:g} (got {value:g})")
        if spec.choices and value not in spec.choices:
            problems.append(f"{spec.flag} must be one of {', '.join(map(str, spec.choices))} (got {value})")
    return problems


def params_of(options) -> dict:
    """The report's `params`: every user option's value; a region or volume is written as given / not given."""
    params = {}
    for spec in option_specs(type(options)):
        value = getattr(options, spec.name)
        if spec.kind in NODE_KINDS:
            params[spec.name] = "given" if value is not None else None
        elif isinstance(value, np.generic):
            params[spec.name] = value.item()
        else:
            params[spec.name] = value
    return params


def _value_type(hint) -> type:
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    base = args[0] if args else hint
    return base if base in (float, int, bool, str) else np.ndarray
