"""Project configuration: the ``[tool.migrate-ml]`` table of ``pyproject.toml``.

The table is looked up from the first target path upward (the nearest ``pyproject.toml`` that
has it wins, as with ruff and black). Every key is optional; the command line overrides any
key it sets. ``exclude`` patterns work like ``--exclude``; ``per-file-ignores`` patterns are
relative to the folder that holds the ``pyproject.toml`` (a pattern without ``/`` matches
base names anywhere).

.. code-block:: toml

    [tool.migrate-ml]
    select = ["ML0"]
    ignore = ["ML101"]
    threshold = 0.4
    exclude = ["legacy/*"]
    force-exclude = true        # exclude named files too (pre-commit, editors)
    respect-gitignore = true
    unsafe-fixes = false
    per-file-ignores = { "notebooks/*.ipynb" = ["ML101"] }
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

from migrate_ml.engine.transform import Settings

TABLE = "tool.migrate-ml"
KEYS = ("select", "ignore", "threshold", "exclude", "force-exclude", "respect-gitignore", "unsafe-fixes", "per-file-ignores")


class ConfigError(Exception):
    """A bad ``[tool.migrate-ml]`` value; ``str()`` is ``path: [tool.migrate-ml] key: why``."""

    def __init__(self, path: Path, key: str | None, message: str) -> None:
        where = f"[{TABLE}] {key}: " if key else ""
        super().__init__(f"{path}: {where}{message}")


@dataclass(frozen=True)
class ProjectConfig:
    path: Path | None = None
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] | None = None
    threshold: float | None = None
    exclude: tuple[str, ...] | None = None
    force_exclude: bool | None = None
    respect_gitignore: bool | None = None
    unsafe_fixes: bool | None = None
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(absolute glob, codes) pairs."""


def find_pyproject(start: str) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start`` that has a ``[tool.migrate-ml]`` table.

    A ``pyproject.toml`` on the way that cannot be read, or is not UTF-8 (as TOML must be), is
    an error: skipping it could silently drop the settings it holds.
    """
    folder = Path(os.path.realpath(start))  # not Path.resolve: it raises on a symbolic-link loop
    if not folder.is_dir():
        folder = folder.parent
    for candidate in (folder, *folder.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and _mentions_table(pyproject):
            return pyproject
    return None


def _mentions_table(pyproject: Path) -> bool:
    # A cheap byte test first: most pyproject.toml files have no such table, and parsing TOML
    # for each of them would cost every run.
    try:
        data = pyproject.read_bytes()
    except OSError as error:
        raise ConfigError(pyproject, None, f"cannot read: {error.strerror or error}") from None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(pyproject, None, f"line {line}: cannot decode byte 0x{data[error.start]:02x} as UTF-8 (TOML files must be UTF-8)") from None
    if b"migrate-ml" not in data and _TOOL_KEY.search(data) is None:
        return False
    # Mentioned: parse, so that a `migrate-ml` or `tool` key that is not a table is an error
    # rather than a table silently not found.
    tools = _document(pyproject).get("tool", {})
    if not isinstance(tools, dict):
        raise ConfigError(pyproject, None, "tool must be a table ([tool.migrate-ml] lives inside it)")
    return "migrate-ml" in tools


_TOOL_KEY = re.compile(rb"^[ \t]*tool[ \t]*=", re.MULTILINE)


def _document(pyproject: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(pyproject, None, f"cannot read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(pyproject, None, f"invalid TOML: {error}") from None


def load_config(targets: Sequence[str], known_codes: Sequence[str]) -> ProjectConfig:
    """The configuration that applies to ``targets`` (found from the first one), or defaults."""
    start = next((t for t in targets if t != "-"), os.getcwd())
    pyproject = find_pyproject(start)
    if pyproject is None:
        return ProjectConfig()
    return parse_config(pyproject, known_codes)


def parse_config(pyproject: Path, known_codes: Sequence[str]) -> ProjectConfig:
    document = _document(pyproject)
    tools = document.get("tool", {})
    if not isinstance(tools, dict):
        raise ConfigError(pyproject, None, "tool must be a table ([tool.migrate-ml] lives inside it)")
    table = tools.get("migrate-ml")
    if table is None:
        return ProjectConfig(path=pyproject)
    if not isinstance(table, dict):
        raise ConfigError(pyproject, None, f"[{TABLE}] must be a table")
    for key in table:
        if key not in KEYS:
            raise ConfigError(pyproject, key, f"unknown key; known keys: {', '.join(KEYS)}")
    root = pyproject.parent

    def codes(key: str, value: object) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(pyproject, key, "must be a list of rule codes or prefixes, like [\"ML001\", \"ML02\"]")
        normalized = tuple(item.strip().upper() for item in value)
        for prefix in normalized:
            if not any(code.startswith(prefix) for code in known_codes) or not prefix:
                raise ConfigError(pyproject, key, f"unknown rule code or prefix: {prefix or repr('')}")
        return normalized

    def globs(key: str, value: object) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise ConfigError(pyproject, key, "must be a list of glob patterns")
        return tuple(value)

    threshold = table.get("threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise ConfigError(pyproject, "threshold", "must be a number between 0 and 1 (exclusive)")
        threshold = float(threshold)
    def flag(key: str) -> bool | None:
        value = table.get(key)
        if value is not None and not isinstance(value, bool):
            raise ConfigError(pyproject, key, "must be true or false")
        return value

    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise ConfigError(pyproject, "per-file-ignores", 'must be a table of glob = [codes], like { "tests/*" = ["ML101"] }')
    exclude = table.get("exclude")
    return ProjectConfig(
        path=pyproject,
        select=codes("select", table["select"]) if "select" in table else None,
        ignore=codes("ignore", table["ignore"]) if "ignore" in table else None,
        threshold=threshold,
        exclude=globs("exclude", exclude) if exclude is not None else None,
        force_exclude=flag("force-exclude"),
        respect_gitignore=flag("respect-gitignore"),
        unsafe_fixes=flag("unsafe-fixes"),
        per_file_ignores=tuple(
            (str(root / pattern) if "/" in pattern else pattern, codes(f"per-file-ignores.{pattern}", value))
            for pattern, value in per_file.items()
        ),
    )


class Discovery(NamedTuple):
    """What a folder argument stands for: ``discover``'s options."""

    exclude: tuple[str, ...] = ()
    force_exclude: bool = False
    respect_gitignore: bool = True


def resolve_settings(
    targets: Sequence[str],
    known_codes: Sequence[str],
    *,
    select: tuple[str, ...] = (),
    ignore: tuple[str, ...] = (),
    unsafe_fixes: bool | None = None,
    threshold: float | None = None,
    exclude: Sequence[str] | None = None,
    force_exclude: bool | None = None,
    respect_gitignore: bool | None = None,
) -> tuple[Settings, Discovery]:
    """Settings and discovery options: each command-line value given replaces the project's."""
    config = load_config(targets, known_codes)

    def pick(cli, project, default):
        if cli is not None and cli != ():
            return cli
        return project if project is not None else default

    settings = Settings(
        select=pick(select, config.select, ()),
        ignore=pick(ignore, config.ignore, ()),
        unsafe_fixes=pick(unsafe_fixes, config.unsafe_fixes, False),
        threshold=pick(threshold, config.threshold, 0.5),
        per_file_ignores=config.per_file_ignores,
    )
    discovery = Discovery(
        exclude=tuple(pick(exclude, config.exclude, ())),
        force_exclude=pick(force_exclude, config.force_exclude, False),
        respect_gitignore=pick(respect_gitignore, config.respect_gitignore, True),
    )
    return settings, discovery
