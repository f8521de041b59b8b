"""A photo from a technician's phone made safe to keep and show: the bytes sniffed (never the
Content-Type), decoded by Pillow, turned upright, re-encoded as a plain JPEG without any of
the original's metadata (EXIF with GPS, XMP, ICC profile, comments) and downscaled to at most
2048 px on its long side, with a small thumbnail for /ops. Bytes in, bytes out; no I/O.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD = 8 * 1024 * 1024  # a phone's full-size JPEG is 2-6 MB; HEIC converted is larger
LONG_SIDE = 2048  # enough to read a label at the rack, a tenth of a phone photo's pixels
THUMB_SIDE = 320  # a thumbnail under the incident on /ops
QUALITIES = (85, 70, 50)  # JPEG quality: labels readable at ~400 KB; lower only if too big
MAX_STORED = 4 * 1024 * 1024  # job_photos.image's cap (schemas/sql/025_job_card.sql)
#: Decoded pixels allowed: a 50-megapixel phone sensor with room; a "decompression bomb"
#: (a small file that decodes to gigabytes) is refused before it is decoded.
MAX_PIXELS = 64_000_000
#: The formats a phone camera or gallery gives, by their first bytes.
MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"WEBP", 8, "WEBP"),  # after "RIFF" and the length
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
)


class PhotoRefused(ValueError):
    """The upload is not a photo we keep: an HTTP status and what to do."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(frozen=True)
class Clean:
    """A photo re-encoded: the JPEG, its size and its thumbnail."""

    image: bytes
    width: int
    height: int
    thumb: bytes


def sniff(data: bytes) -> str | None:
    """The image format its first bytes say, or None."""
    for magic, offset, name in MAGIC:
        if data[offset:offset + len(magic)] == magic and (name != "WEBP" or data[:4] == b"RIFF"):
            return name
    return None


def _jpeg(img: Image.Image) -> bytes:
    """Plain JPEG, at the first quality that fits the stored cap (a noisy picture is big)."""
    data = b""
    for quality in QUALITIES:
        out = io.BytesIO()
        # No exif=, icc_profile= or comment=: Pillow writes none of them unless asked.
        img.save(out, "JPEG", quality=quality, optimize=True)
        data = out.getvalue()
        if len(data) <= MAX_STORED:
            break
    return data


def clean(data: bytes) -> Clean:
    """Check, strip and downscale one uploaded photo; raise PhotoRefused with the reason."""
    if len(data) > MAX_UPLOAD:
        raise PhotoRefused(413, f"the photo is {len(data) / 1e6:.1f} MB; the limit is "
                                f"{MAX_UPLOAD // (1024 * 1024)} MB: take it at a lower "
                                "resolution or crop it")
    if not data:
        raise PhotoRefused(422, "the upload is empty: send the photo's bytes as the body")
    kind = sniff(data)
    if kind is None:
        raise PhotoRefused(415, "this is not a JPEG, PNG, WebP or GIF image (its first bytes "
                                "say so, whatever its type): take the photo with the camera "
                                "or pick a picture")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[kind]) as opened:
                if opened.width * opened.height > MAX_PIXELS:
                    raise PhotoRefused(413, f"the picture is {opened.width}x{opened.height} "
                                            "pixels, too many to keep: take it at a lower "
                                            "resolution")
                opened.load()
                img = ImageOps.exif_transpose(opened)  # upright, before EXIF goes
    except PhotoRefused:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoRefused(422, f"the {kind} image cannot be read ({exc}): it may be cut "
                                "short; take the photo again") from None
    img = img.convert("RGB")  # drops alpha and palettes; JPEG holds neither
    img.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
    image = _jpeg(img)
    thumb = img.copy()
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    return Clean(image, img.width, img.height, _jpeg(thumb))
