"""The replay-root seam: every probe reads /proc, /sys and tool output through a Root.

With path "/" a Root reads the live host and runs the tools. With any other path it reads
``DIR/proc/...`` and ``DIR/sys/...`` and takes each tool's output from ``DIR/cmd/`` (the
table in design.md), so the same probe code runs on a server, in tests and in a support
case. Anything absent is ``None``, never an error.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: A tool that hangs (a dying disk can stall smartctl) must not stall the agent for long.
TOOL_TIMEOUT_S = 60.0
#: A sysfs symlink unpacked from a text archive (ttar) becomes a small file holding the
#: target; anything longer than this is a real file, never such a placeholder.
_LINK_FILE_MAX = 256


@dataclass(frozen=True)
class CmdResult:
    """A tool's standard output and exit status."""

    stdout: str
    exit_status: int


class Root:
    """Reads a host's /proc, /sys and tool output, live (path "/") or from a replay root."""

    def __init__(self, path: str | Path = "/", timeout_s: float = TOOL_TIMEOUT_S) -> None:
        """Point at the live host ("/") or at a replay root directory."""
        self.path = Path(path)
        self.live = os.path.realpath(self.path) == "/"
        self.timeout_s = timeout_s

    # -- files -------------------------------------------------------------------------

    def _resolve(self, rel: str, follow_last: bool) -> Path | None:
        """Map a root-relative path to a real one, following ttar link placeholders."""
        parts = [p for p in rel.strip("/").split("/") if p]
        if self.live:
            return Path("/", *parts)
        cur = ""  # root-relative, normalized
        for i, part in enumerate(parts):
            cur = posixpath.normpath(posixpath.join(cur, part))
            if cur.startswith(".."):
                return None  # never read outside the replay root
            last = i == len(parts) - 1
            if last and not follow_last:
                break
            target = self._link_target(self.path / cur)
            if target is not None:
                cur = posixpath.normpath(posixpath.join(posixpath.dirname(cur), target))
                if cur.startswith("..") or posixpath.isabs(cur):
                    return None
        return self.path / cur

    def _link_target(self, p: Path) -> str | None:
        """The target of a symlink or of a ttar placeholder file, else None."""
        if p.is_symlink():
            target = os.readlink(p)
            return None if os.path.isabs(target) else target
        if not p.is_file() or self.live:
            return None
        try:
            if p.stat().st_size > _LINK_FILE_MAX:
                return None
            text = p.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if text.startswith("../") and "\n" not in text else None

    def read_text(self, rel: str) -> str | None:
        """The text of ``rel`` (e.g. "proc/loadavg"), or None when it is absent or unreadable."""
        p = self._resolve(rel, follow_last=False)
        if p is None:
            return None
        try:
            return p.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def read_int(self, rel: str) -> int | None:
        """The integer in file ``rel`` (sysfs style), or None."""
        text = self.read_text(rel)
        if text is None:
            return None
        try:
            return int(text.strip())
        except ValueError:
            return None

    def listdir(self, rel: str) -> list[str]:
        """Sorted names in directory ``rel``; empty when absent."""
        p = self._resolve(rel, follow_last=True)
        if p is None:
            return []
        try:
            return sorted(os.listdir(p))
        except OSError:
            return []

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` exists (a dangling symlink counts: sysfs links point outside)."""
        p = self._resolve(rel, follow_last=False)
        return p is not None and os.path.lexists(p)

    def link_name(self, rel: str) -> str | None:
        """The last component of the link at ``rel`` (e.g. a hwmon's device), or None."""
        p = self._resolve(rel, follow_last=False)
        if p is None:
            return None
        target = os.readlink(p) if p.is_symlink() else self._link_target(p)
        return posixpath.basename(target.rstrip("/")) if target else None

    def file_path(self, rel: str) -> Path | None:
        """The real path of a file such as a tool's database, when present."""
        p = self._resolve(rel, follow_last=True)
        return p if p is not None and p.is_file() else None

    # -- tools -------------------------------------------------------------------------

    def cmd_targets(self, tool: str) -> list[str] | None:
        """In replay, the devices a per-device tool has output for; None on a live host."""
        if self.live:
            return None
        names = self.listdir(f"cmd/{tool}")
        return [n.removesuffix(".json") for n in names if n.endswith(".json")]

    def has_tool(self, tool: str) -> bool:
        """Whether ``tool`` is installed (live), or its output was recorded (replay: a
        replay root without ``cmd/smartctl/`` is a host without smartmontools)."""
        if self.live:
            return _which(tool) is not None
        return any(n == tool or n.startswith(f"{tool}-") for n in self.listdir("cmd"))

    def privileged(self) -> bool:
        """Whether tools run as root here (a replay root stands for a root-run agent)."""
        return not self.live or os.geteuid() == 0

    def cmd_output(self, tool: str, args: Sequence[str]) -> CmdResult | None:
        """Run ``tool args`` (live) or read its recorded output (replay); None when absent."""
        if self.live:
            return self._run(tool, args)
        rel = replay_file(tool, args)
        if rel is None:
            return None
        text = self.read_text(f"cmd/{rel}")
        if text is None:
            return None
        return CmdResult(text, _recorded_exit(tool, text))

    def _run(self, tool: str, args: Sequence[str]) -> CmdResult | None:
        """Run a tool with a timeout; absent or hung tools give None."""
        exe = _which(tool)
        if exe is None:
            return None
        try:
            done = subprocess.run(  # noqa: S603 - fixed tool names, arguments built by probes
                [exe, *args], capture_output=True, text=True, timeout=self.timeout_s, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return CmdResult(done.stdout, done.returncode)


def _which(tool: str) -> str | None:
    """The tool's executable on PATH or in the sbin directories (root's tools live there)."""
    return shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def replay_file(tool: str, args: Sequence[str]) -> str | None:
    """The file under DIR/cmd/ that holds ``tool args``' output (design.md's table)."""
    if tool == "smartctl" and args and args[-1].startswith("/dev/"):
        # smartctl --json -x /dev/sda  ->  smartctl/sda.json
        return f"smartctl/{args[-1].removeprefix('/dev/').replace('/', '_')}.json"
    if tool == "ipmitool" and len(args) >= 2 and args[-2] in ("sdr", "sel") and args[-1] == "elist":
        # ipmitool sdr elist  ->  ipmitool-sdr.txt
        return f"ipmitool-{args[-2]}.txt"
    return None


def _recorded_exit(tool: str, text: str) -> int:
    """The exit status of a recorded run: smartctl keeps it in its JSON, others succeeded."""
    if tool != "smartctl":
        return 0
    try:
        status = json.loads(text).get("smartctl", {}).get("exit_status", 0)
    except (ValueError, AttributeError):
        return 0
    return status if isinstance(status, int) else 0
