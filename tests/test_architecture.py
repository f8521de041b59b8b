"""The shape of the code, read from its imports (design.md "Shape", STYLE.md "Seams").

What counts as an import: every ``import`` and ``from ... import`` statement anywhere in a
module of agent/, collector/, dispatcher/, hourglass/ and schemas/: at the top, inside a
function (a late import is a dependency all the same, and one that only dodges a cycle is
still a cycle) and under ``if TYPE_CHECKING:`` (a type is a dependency too: the arrows
point one way, whatever the interpreter happens to load). No import is exempt.

Which module an import names: the most specific one it reaches. ``from agent.probes import
rasdaemon`` names the module ``agent.probes.rasdaemon``; ``from agent.probes import
default_registry`` names the package ``agent.probes``. The parent packages Python runs on
the way (``agent/probes/__init__.py`` for both) are not counted, or every package whose
``__init__`` re-exports a child would be a cycle with it.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "collector", "dispatcher", "hourglass", "schemas")

#: The agent's third-party imports, by the distribution pyproject's base install pulls in
#: ("It depends only on psutil, pysnmp, paho-mqtt and pyyaml", design.md).
AGENT_DEPENDENCIES = {"psutil": "psutil", "pysnmp": "pysnmp", "paho-mqtt": "paho",
                      "PyYAML": "yaml"}
#: What each server may import of the others: they meet in schemas/ and the database, and
#: both read the servers' configuration.
SERVERS_MAY_IMPORT = {
    "collector": {"collector", "schemas", "hourglass.config"},
    "dispatcher": {"dispatcher", "schemas", "hourglass.config"},
}
#: The collector's rules: pure (values and ``now`` in, decisions out), each checked to
#: import only the standard library and the collector's own values.
COLLECTOR_RULES = ("collector.rules", "collector.stateful", "collector.gaps",
                   "collector.liveness", "collector.facility")
#: What pure modules must not reach, with the reason. pydantic does no I/O, but its models
#: are the HTTP edge's request and response shapes; decisions are frozen dataclasses
#: (STYLE.md habit 2), so it stays at the edge with FastAPI.
ADAPTERS = {
    "psycopg": "the database", "psycopg_pool": "the database", "sqlite3": "a database file",
    "fastapi": "HTTP", "starlette": "HTTP", "uvicorn": "HTTP", "httpx": "HTTP",
    "http.client": "HTTP", "http.server": "HTTP", "urllib.request": "HTTP",
    "smtplib": "email", "paho": "MQTT", "amqtt": "MQTT", "pysnmp": "SNMP",
    "psutil": "the host", "socket": "the network", "ssl": "the network",
    "subprocess": "processes", "prometheus_client": "the /metrics endpoint",
    "pydantic": "the HTTP edge's models",
}


@dataclass(frozen=True)
class Import:
    """One imported name: ``target`` is the most specific module it names, when ours."""

    module: str
    path: str
    line: int
    target: str  # dotted: a module of ours, or the full name of a foreign one
    ours: bool

    def where(self) -> str:
        """``agent/config.py:19 (agent.config)``."""
        return f"{self.path}:{self.line} ({self.module})"


@cache
def modules() -> dict[str, Path]:
    """Every module of the five packages, by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _named(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    """The dotted names one statement imports (``from a import b`` yields ``a.b``)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: from the module's package, one level up per extra dot
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, *([base] if base else [])])
    for alias in node.names:
        yield base if alias.name == "*" else f"{base}.{alias.name}"


def _ours(name: str) -> str | None:
    """The most specific module of ours that ``name`` reaches, or None for a foreign one."""
    if name.split(".")[0] not in PACKAGES:
        return None
    while name not in modules() and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def read_imports(module: str, path: Path, source: str | None = None) -> list[Import]:
    """Every import in one module's source, wherever it stands (see the module docstring)."""
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source)
    is_package = path.name == "__init__.py"
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    found: list[Import] = []
    for node in ast.walk(tree):  # every node: function bodies and `if TYPE_CHECKING:` too
        if isinstance(node, ast.Import | ast.ImportFrom):
            for name in _named(node, module, is_package):
                mine = _ours(name)
                found.append(Import(module, rel, node.lineno, mine or name, mine is not None))
    return found


@cache
def imports() -> dict[str, tuple[Import, ...]]:
    """Each module's imports."""
    return {m: tuple(read_imports(m, p)) for m, p in modules().items()}


def edges(module: str) -> dict[str, Import]:
    """The modules of ours that ``module`` imports (not itself), each with its first import."""
    out: dict[str, Import] = {}
    for imp in imports()[module]:
        if imp.ours and imp.target != module:
            out.setdefault(imp.target, imp)
    return out


def reaches(module: str) -> dict[str, list[Import]]:
    """Every module of ours that ``module`` imports directly or through others, with the
    chain of imports that gets there first."""
    chains: dict[str, list[Import]] = {module: []}
    todo = [module]
    while todo:
        here = todo.pop(0)
        for target, imp in edges(here).items():
            if target not in chains:
                chains[target] = [*chains[here], imp]
                todo.append(target)
    return chains


def cycles() -> list[list[Import]]:
    """One cycle through each module that lies on one, as its chain of imports."""
    found: list[list[Import]] = []
    seen: set[str] = set()
    for module in modules():
        if module in seen:
            continue
        for target, imp in edges(module).items():
            back = reaches(target).get(module)
            if back is not None:
                cycle = [imp, *back]
                found.append(cycle)
                seen.update(i.module for i in cycle)
                break
    return found


def foreign_top(imp: Import) -> str:
    """The top-level name of a foreign import (``paho`` for ``paho.mqtt.client``)."""
    return imp.target.split(".")[0]


def stdlib(imp: Import) -> bool:
    """Whether a foreign import is of the standard library."""
    return foreign_top(imp) in sys.stdlib_module_names


def adapter(imp: Import) -> str | None:
    """The adapter a foreign import is part of, or None."""
    for name in ADAPTERS:
        if imp.target == name or imp.target.startswith(name + "."):
            return name
    return None


def report(problems: Iterable[str]) -> str:
    """Failures as one message, a line each."""
    return "\n".join(["", *problems])


# -- the reader itself ------------------------------------------------------------------


def test_the_reader_counts_late_and_type_checking_imports(tmp_path: Path) -> None:
    source = '''
from typing import TYPE_CHECKING
import psycopg.sql
from agent.probes import rasdaemon, default_registry
if TYPE_CHECKING:
    from collector.wire import Telemetry
def later() -> None:
    from . import edac
    from .. import messages
'''
    got = {(i.target, i.ours) for i in
           read_imports("agent.probes.smart", tmp_path / "smart.py", source)}
    assert got == {("typing.TYPE_CHECKING", False), ("psycopg.sql", False),
                   ("agent.probes.rasdaemon", True), ("agent.probes", True),
                   ("collector.wire", True), ("agent.probes.edac", True),
                   ("agent.messages", True)}


def test_the_reader_sees_the_whole_project() -> None:
    assert {"agent.config", "collector.rules", "dispatcher.domain.sla", "hourglass.config",
            "schemas.states"} <= set(modules())
    assert "agent.profiles" in edges("agent.config")  # a top-level import
    assert "agent.snmp" in edges("agent.config")  # a late one
    assert "collector.wire" in edges("collector.model")  # a TYPE_CHECKING one


# -- the rules --------------------------------------------------------------------------


def test_no_import_cycles() -> None:
    problems = [
        "import cycle: "
        + " -> ".join([c[0].module, *(f"{i.target} ({i.path}:{i.line})" for i in c)])
        + ": move what both sides need into a module both can import (as agent.profiles"
        " holds the SNMP profiles for agent.config and agent.proxy); a late or"
        " TYPE_CHECKING import does not break a cycle"
        for c in cycles()
    ]
    assert not problems, report(problems)


def test_the_agent_depends_on_nothing_but_its_own_install() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    names = {d.split(">")[0].split("=")[0].split("[")[0].strip()
             for d in pyproject["project"]["dependencies"]}
    assert names == set(AGENT_DEPENDENCIES), (
        "pyproject's base dependencies (the agent's install) changed: update "
        "AGENT_DEPENDENCIES here and design.md's Shape together")
    allowed = set(AGENT_DEPENDENCIES.values())
    problems: list[str] = []
    for imp in (i for m in modules() if m.split(".")[0] == "agent" for i in imports()[m]):
        if imp.ours and imp.target.split(".")[0] != "agent":
            problems.append(f"{imp.where()} imports {imp.target}: the agent installs alone on "
                            "customers' servers and imports nothing outside agent/; keep its "
                            "own copy (as agent/messages.py keeps the topics, held to "
                            "schemas/ by tests/test_contract_topics.py)")
        elif not imp.ours and not stdlib(imp) and foreign_top(imp) not in allowed:
            problems.append(f"{imp.where()} imports {imp.target}: the agent depends only on "
                            f"{', '.join(sorted(AGENT_DEPENDENCIES))} (pyproject's base "
                            "install); move this code to the servers or do without it")
    assert not problems, report(problems)


def test_the_servers_meet_only_in_schemas_and_the_database() -> None:
    problems: list[str] = []
    for module in modules():
        part = module.split(".")[0]
        for target, imp in edges(module).items():
            if part in SERVERS_MAY_IMPORT and not any(
                    target == ok or target.startswith(ok + ".")
                    for ok in SERVERS_MAY_IMPORT[part]):
                problems.append(
                    f"{imp.where()} imports {target}: the {part} may import only "
                    f"{', '.join(sorted(SERVERS_MAY_IMPORT[part] - {part}))} outside "
                    f"{part}/; put a contract in schemas/, pass state through the database")
            elif part == "schemas" and target.split(".")[0] != "schemas":
                problems.append(f"{imp.where()} imports {target}: schemas/ is the contract "
                                "every part imports, so it imports none of them; move the "
                                "piece into schemas/")
    assert not problems, report(problems)


def pure_modules() -> list[str]:
    """dispatcher/domain/ and the collector's rules."""
    domain = [m for m in modules() if m.startswith("dispatcher.domain.")]
    return [*sorted(domain), *COLLECTOR_RULES]


def test_pure_modules_reach_no_adapter() -> None:
    assert set(COLLECTOR_RULES) <= set(modules()), "a rule module was renamed: update this test"
    problems: list[str] = []
    for module in pure_modules():
        for through, chain in reaches(module).items():
            for imp in imports()[through]:
                name = None if imp.ours else adapter(imp)
                if name is None:
                    continue
                via = "".join(f" -> {i.target} ({i.path}:{i.line})" for i in chain)
                problems.append(
                    f"{module}{via} imports {imp.target} ({imp.path}:{imp.line}), "
                    f"{ADAPTERS[name]}: pure modules take values and now and return decisions; "
                    "do the I/O in an adapter (a store/, http/ or service module) and pass "
                    "the values in")
    assert not problems, report(problems)
