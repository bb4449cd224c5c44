"""Decoding users' image files safely: one ``ImageReadError`` naming the file, never a traceback.

* 16-bit images (PNG ``I;16``/``I`` modes) are scaled by their bit depth to 8 bits, not
  clipped (Pillow's ``convert("RGB")`` clips every value above 255 to white).
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
    """``I``/``I;16`` (16-bit greyscale PNG or TIFF) -> ``L``, scaled by the bit depth."""
    import numpy as np
    from PIL import Image

    values = np.asarray(img).astype(np.float64)
    # PNG stores 16-bit greyscale; Pillow may open it as "I" (32-bit) holding 0..65535.
    depth_max = 65535.0 if img.mode in _SIXTEEN_BIT_MODES or values.max(initial=0) <= 65535 else 2.0**32 - 1
    return Image.fromarray(np.clip(values * (255.0 / depth_max) + 0.5, 0, 255).astype(np.uint8), mode="L")


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
                if img.mode in _SIXTEEN_BIT_MODES or img.mode == "I":
                    img = _scaled_to_8_bits(img)
                elif img.mode == "F":
                    img = img.point(lambda v: v * 255.0).convert("L")
                return img.convert("RGB")
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageReadError(f"{path}: refused: {err}") from None
    except Exception as err:  # noqa: BLE001 - any decoder failure is a bad file, reported as such
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImageReadError(f"{path}: cannot read image: {detail}") from None
