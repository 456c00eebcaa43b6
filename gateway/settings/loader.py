"""Loading `gateway.yaml`: safe YAML, `${ENV}` interpolation, validation with every error reported.

`load_settings(path)` returns frozen `Settings` or raises `ConfigError`, which lists each problem as
`file: key.path: what is wrong` so that one run shows everything to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from gateway.settings.schema import Settings

_ENV_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Problem:
    path: str
    message: str


class ConfigError(Exception):
    """The configuration cannot be used; `problems` says every reason."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {p.path}: {p.message}" if p.path else f"{source}: {p.message}" for p in problems]
        super().__init__("\n".join(lines))


def load_settings(path: Path | str | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, interpolate and validate a configuration file; no file means all defaults."""
    if path is None:
        return Settings()
    source = str(path)
    env = os.environ if environ is None else environ
    raw = _read_yaml(Path(path), source)
    problems: list[Problem] = []
    try:
        data = _interpolate(raw, "", env, problems)
    except RecursionError:  # an alias that contains itself (`a: &a [*a]`), or nesting no config has
        raise ConfigError(source, [Problem("", "invalid YAML: an alias refers to itself")]) from None
    try:
        settings = parse_settings(data, source)
    except ConfigError as exc:
        # A missing variable left an empty value; its key's own complaint about that would be noise.
        unset = {problem.path for problem in problems}
        problems += [problem for problem in exc.problems if problem.path not in unset]
        raise ConfigError(source, problems) from None
    if problems:
        raise ConfigError(source, problems)
    return settings


def parse_settings(data: object, source: str = "<config>") -> Settings:
    """Validate an already-loaded mapping."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", "the top level must be a mapping of sections")])
    # A section left empty (only comments under it) means its defaults.
    data = {section: values for section, values in data.items() if values is not None}
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_problem_of(error) for error in exc.errors()]) from None


def _read_yaml(path: Path, source: str) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [Problem("", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise ConfigError(source, [Problem("", "cannot read: not UTF-8 text")]) from None
    try:
        loader = _StrictLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [Problem("", f"invalid YAML: {where}{problem}")]) from None


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML in which a key given twice in one mapping is an error, not the last one silently kept
    (a second `providers:` would otherwise drop every provider of the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _interpolate(node: object, path: str, env: Mapping[str, str], problems: list[Problem]) -> object:
    """Replace `${VAR}` and `${VAR:-default}` in string values (the default when VAR is unset or empty,
    as the shell and docker compose read it); `$$` is a literal `$`."""
    if isinstance(node, dict):
        return {key: _interpolate(value, _join(path, key), env, problems) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(value, _join(path, index), env, problems) for index, value in enumerate(node)]
    if not isinstance(node, str) or "$" not in node:
        return node

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if default is not None and not value:
            return default
        if value is None:
            problems.append(Problem(path, f"environment variable {name} is not set"))
            return ""
        return value

    return _ENV_REFERENCE.sub(substitute, node)


def _join(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _problem_of(error: object) -> Problem:
    assert isinstance(error, dict)
    location = error.get("loc", ())
    parts: list[str] = []
    for item in location:
        if item == "[key]":  # pydantic's marker for a dict key that failed; the key itself is named
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    message = str(error.get("msg", "invalid"))
    if error.get("type") == "extra_forbidden":
        message = "unknown key (not part of the schema)"
    return Problem("".join(parts), message.removeprefix("Value error, "))
