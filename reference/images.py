"""Decoding users' image files safely: one ``ImageReadError`` naming the file, never a traceback.

* 16-bit images (PNG ``I;16``/``I`` modes) are scaled by their bit depth to 8 bits, not
  clipped (Pillow's ``convert("RGB")`` clips every value above 255 to white); 32-bit integer
  (``I``) and float (``F``) images by the range their values occupy (see ``_scaled_to_8_bits``).
* Pillow's decompression-bomb limit is enforced as an error, warning band included.
* Empty, truncated and non-image files are refused with the reason.
"""

from __future__ import annotations

import os
import warnings

from .errors import ImageReadError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}


def _scaled_to_8_bits(img):
    """``I``/``I;16``/``F`` (16-bit or 32-bit greyscale, float) -> ``L``, scaled by mode and range.

    ``I;16`` is 16-bit whatever its values. ``I`` (32-bit integers) and ``F`` (floats) carry no
    depth of their own, so the values say it: the smallest of 255, 65535 and 2**32 - 1 that holds
    the maximum is white (an ``I`` TIFF of 8-bit values is not divided into near black); floats
    at most 1.0 are [0, 1] data (an ``F`` TIFF of 0-255 values is not multiplied into white).
    """
    import numpy as np
    from PIL import Image

    values = np.nan_to_num(np.asarray(img).astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = values.max(initial=0)
    if img.mode in _SIXTEEN_BIT_MODES:
        white = 65535.0
    elif img.mode == "F" and top <= 1.0:
        white = 1.0
    else:
        white = next(depth for depth in (255.0, 65535.0, 2.0**32 - 1, max(top, 1.0)) if top <= depth)
    return Image.fromarray(np.clip(values * (255.0 / white) + 0.5, 0, 255).astype(np.uint8), mode="L")


def load_image(path: str | os.PathLike):
    """Open ``path`` as an RGB ``PIL.Image`` (fully decoded), or raise :class:`ImageReadError`."""
    from PIL import Image

    path = os.fsdecode(path)
    try:
        if os.path.getsize(path) == 0:
            raise ImageReadError(f"{path}: cannot read image: the file is empty (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                if img.mode in _SIXTEEN_BIT_MODES or img.mode in ("I", "F"):
                    img = _scaled_to_8_bits(img)
                return img.convert("RGB")
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageReadError(f"{path}: refused: {err}") from None
    except Exception as err:  # noqa: BLE001 - any decoder failure is a bad file, reported as such
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImageReadError(f"{path}: cannot read image: {detail}") from None
