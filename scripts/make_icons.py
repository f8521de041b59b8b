"""Draw the /tech web app's icons (dispatcher/web/icons/*.png) with the standard library alone.

An hourglass in amber on the page's dark header colour: the "any" icons on a rounded square
with transparent corners, the maskable ones full-bleed with the glass inside the central
safe zone (a circle of 40 % of the size: what a launcher's mask may keep). Run it after a
change of design; the PNGs are committed, so a deployment needs neither this script nor an
image library.

    python scripts/make_icons.py [OUT_DIR]
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

BG = (17, 24, 39)  # #111827, the header and theme colour of /tech
SAND = (245, 158, 11)  # #f59e0b
FRAME = (243, 244, 246)  # #f3f4f6
SAMPLES = 3  # 3x3 samples per pixel: smooth edges without an image library
Colour = tuple[int, int, int, int]


def _glass(x: float, y: float) -> tuple[int, int, int] | None:
    """The hourglass in a unit square centred on (0.5, 0.5), filling about 80 % of it."""
    dx, dy = abs(x - 0.5), y - 0.5
    if abs(dy) > 0.40:
        return None
    if abs(dy) > 0.33:
        return FRAME if dx < 0.30 else None  # the top and bottom plates
    half = 0.04 + 0.21 * abs(dy) / 0.33  # the glass narrows to a waist at the middle
    if dx > half:
        return None
    if dx > half - 0.035:
        return FRAME  # the glass's outline
    sand_top = -0.33 < dy < 0 and dy > -0.16  # the upper bulb half full
    sand_bottom = dy > 0.16  # a heap in the lower bulb
    stream = dx < 0.012 and 0 <= dy <= 0.16
    return SAND if sand_top or sand_bottom or stream else BG


def _pixel(size: int, px: int, py: int, maskable: bool) -> Colour:
    """One pixel, averaged over its samples."""
    acc = [0.0, 0.0, 0.0, 0.0]
    scale = 0.62 if maskable else 0.86  # maskable: inside the safe circle
    for sy in range(SAMPLES):
        for sx in range(SAMPLES):
            x, y = (px + (sx + 0.5) / SAMPLES) / size, (py + (sy + 0.5) / SAMPLES) / size
            if not maskable and not _in_rounded_square(x, y, 0.18):
                continue
            c = _glass(0.5 + (x - 0.5) / scale, 0.5 + (y - 0.5) / scale) or BG
            for i in range(3):
                acc[i] += c[i]
            acc[3] += 255
    n = SAMPLES * SAMPLES
    alpha = acc[3] / n
    if alpha == 0:
        return (0, 0, 0, 0)
    covered = acc[3] / 255
    return (round(acc[0] / covered), round(acc[1] / covered), round(acc[2] / covered),
            round(alpha))


def _in_rounded_square(x: float, y: float, r: float) -> bool:
    """Inside the unit square with corners of radius r."""
    cx, cy = min(max(x, r), 1 - r), min(max(y, r), 1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def png(size: int, maskable: bool) -> bytes:
    """The icon as an 8-bit RGBA PNG."""
    rows = bytearray()
    for py in range(size):
        rows.append(0)  # filter type None
        for px in range(size):
            rows.extend(_pixel(size, px, py, maskable))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8 bits, RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b""))


def main() -> None:
    """Write the four icons."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "dispatcher/web/icons")
    out.mkdir(parents=True, exist_ok=True)
    for size in (192, 512):
        (out / f"icon-{size}.png").write_bytes(png(size, maskable=False))
        (out / f"maskable-{size}.png").write_bytes(png(size, maskable=True))
        print(f"{out}/icon-{size}.png, {out}/maskable-{size}.png")


if __name__ == "__main__":
    main()
