"""``hourglass-agent capture``: write this host's hardware state as a replay root.

The layout is the one the Root reads (design.md): DIR/proc/..., DIR/sys/..., DIR/cmd/...
Sysfs symlinks the probes follow (a hwmon chip's ``device``, a NIC's ``device``) are kept
as symlinks; their targets' attributes are copied into the link's own directory.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from agent.probes import smart
from agent.root import Root

#: Whole files the probes read, relative to the root.
FILES = (
    "proc/loadavg",
    "proc/meminfo",
    "proc/stat",
    "proc/cpuinfo",
    "proc/mounts",
    "proc/net/dev",
    "proc/mdstat",
    "proc/sys/kernel/random/boot_id",
    "sys/class/dmi/id/sys_vendor",
    "sys/class/dmi/id/product_name",
    "sys/class/dmi/id/product_serial",
)
#: A sysfs attribute bigger than this is not a value a probe reads.
_MAX_ATTR = 64 * 1024


def _copy_file(src: Path, dst: Path) -> None:
    """Copy one readable regular file, quietly skipping what the kernel refuses."""
    try:
        if not src.is_file() or src.stat().st_size > _MAX_ATTR:
            return
        data = src.read_bytes()
    except OSError:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data)


def _copy_attrs(src: Path, dst: Path) -> None:
    """Copy the readable files directly inside a sysfs directory."""
    try:
        names = os.listdir(src)
    except OSError:
        return
    for name in names:
        if name != "uevent":
            _copy_file(src / name, dst / name)


def _copy_tree(src: Path, dst: Path, depth: int = 3) -> None:
    """Copy a small sysfs tree (EDAC) without following symlinks out of it."""
    _copy_attrs(src, dst)
    if depth == 0:
        return
    try:
        entries = list(os.scandir(src))
    except OSError:
        return
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            _copy_tree(Path(e.path), dst / e.name, depth - 1)


def _link(src: Path, dst: Path) -> None:
    """Recreate a sysfs symlink (the probes read only its target's name)."""
    if src.is_symlink():
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.readlink(src), dst)


def capture(out: Path) -> list[str]:
    """Write the live host's replay root under ``out``; return what was captured."""
    live = Path("/")
    for rel in FILES:
        _copy_file(live / rel, out / rel)
    for cls in ("hwmon", "net"):
        for entry in (
            sorted(os.listdir(live / "sys/class" / cls))
            if (live / "sys/class" / cls).is_dir()
            else []
        ):
            src, dst = live / "sys/class" / cls / entry, out / "sys/class" / cls / entry
            _copy_attrs(src, dst)
            _link(src / "device", dst / "device")
            if cls == "hwmon" and (src / "device").is_dir():
                _copy_attrs(src / "device", dst)  # older drivers keep attributes there
    _copy_tree(live / "sys/devices/system/edac/mc", out / "sys/devices/system/edac/mc")
    done = [str(p.relative_to(out)) for p in sorted(out.rglob("*")) if p.is_file()]
    return done + _capture_tools(out)


def _capture_tools(out: Path) -> list[str]:
    """Record smartctl per disk and ipmitool's sensor and event lists."""
    root = Root("/")
    done = []
    for dev in smart.devices(root):
        res = root.cmd_output("smartctl", ["--json", "-x", f"/dev/{dev}"])
        if res is not None and res.stdout.strip():
            path = out / "cmd" / "smartctl" / f"{dev}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                data = json.loads(res.stdout)
                # replay reads the exit status from here, so make sure it is recorded
                data.setdefault("smartctl", {})["exit_status"] = res.exit_status
                text = json.dumps(data, indent=1)
            except (ValueError, AttributeError):
                text = res.stdout
            path.write_text(text, encoding="utf-8")
            done.append(str(path.relative_to(out)))
    for what in ("sdr", "sel"):
        res = root.cmd_output("ipmitool", [what, "elist"])
        if res is not None and res.exit_status == 0:
            path = out / "cmd" / f"ipmitool-{what}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(res.stdout, encoding="utf-8")
            done.append(str(path.relative_to(out)))
    ras = Path("/var/lib/rasdaemon/ras-mc_event.db")
    if ras.is_file():
        (out / "cmd").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ras, out / "cmd" / "ras-mc_event.db")
        done.append("cmd/ras-mc_event.db")
    return done
