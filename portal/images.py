"""Images people give the portal (a showcase entry's picture): opened with Pillow behind a
decompression-bomb limit, turned upright, shrunk to a maximum width and encoded again, so what
is stored and served holds pixels only — no EXIF (GPS position, camera, owner), no XMP, no
ICC profile, no comment, no trailing bytes."""

from __future__ import annotations

import io
import secrets
import tempfile
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DomainError
from .messages import _
from .storage import Storage

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 25_000_000  # a JPEG is decoded at a reduced scale (draft); more is refused unread
# PNG and WebP decode at full size (4 bytes a pixel with alpha): 12 million pixels is 48 MB.
MAX_PIXELS_LOSSLESS = 12_000_000
MAX_WIDTH = 1200
FORMATS = ("JPEG", "PNG", "WEBP")
TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


class ImageRefused(DomainError):
    """An upload that is not an image the portal takes."""


def clean(data: bytes) -> tuple[bytes, str]:
    """The image re-encoded without its metadata, and its extension (jpg or png); raises
    ImageRefused with a message for the person."""
    if len(data) > MAX_BYTES:
        raise ImageRefused(_("图片不能超过 %(mb)s MB", mb=MAX_BYTES // (1024 * 1024)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            opened = Image.open(io.BytesIO(data), formats=FORMATS)
            most = MAX_PIXELS if opened.format == "JPEG" else MAX_PIXELS_LOSSLESS
            if opened.width * opened.height > most:
                raise ImageRefused(_("图片尺寸过大，请缩小后再上传"))
            # Shrunk while it is read (a JPEG decodes at 1/2, 1/4 or 1/8 scale): a large photo
            # never lies in memory at full size. Twice the width kept either way: it may turn.
            opened.thumbnail((2 * MAX_WIDTH, 2 * MAX_WIDTH), Image.Resampling.LANCZOS, reducing_gap=2.0)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRefused(_("图片尺寸过大，请缩小后再上传")) from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ImageRefused(_("请上传 JPEG、PNG 或 WebP 格式的图片")) from exc
    image: Image.Image = ImageOps.exif_transpose(opened)  # upright as it was meant, before its EXIF goes
    if image.width > MAX_WIDTH:
        image = image.resize(
            (MAX_WIDTH, max(1, round(image.height * MAX_WIDTH / image.width))), Image.Resampling.LANCZOS
        )
    keeps_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    mode = "RGBA" if keeps_alpha else "RGB"
    # A new image of the pixels alone: nothing of the file's info (EXIF, XMP, ICC, comment) is
    # carried over by the encoder, whatever it copies by default.
    pixels = Image.frombytes(mode, image.size, image.convert(mode).tobytes())
    out = io.BytesIO()
    if keeps_alpha:
        pixels.save(out, "PNG", optimize=True)
        return out.getvalue(), "png"
    pixels.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue(), "jpg"


def store(storage: Storage, folder: str, data: bytes) -> str:
    """Clean the image and store it under a name of its own; returns its relative path."""
    cleaned, ext = clean(data)
    with tempfile.NamedTemporaryFile(dir=storage.scratch(), delete=False, suffix="." + ext) as f:
        f.write(cleaned)
    return storage.put(Path(f.name), f"{folder}/{secrets.token_hex(12)}.{ext}")


def content_type(path: str) -> str:
    return TYPES.get(path.rsplit(".", 1)[-1].lower(), "application/octet-stream")
