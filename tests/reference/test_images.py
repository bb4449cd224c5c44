import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from migrate_ml_reference import ImageFiles, ImageReadError
from migrate_ml_reference.images import load_image


def test_16_bit_png_is_scaled_by_bit_depth_not_clipped(tmp_path):
    values = np.array([[0, 16384, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    grey = np.asarray(load_image(tmp_path / "deep.png"))[0, :, 0]
    assert grey.tolist() == [0, 64, 128, 255]  # Pillow's convert("RGB") gives [0, 255, 255, 255]


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def _truncated_png(tmp_path) -> bytes:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.png")
    return (tmp_path / "full.png").read_bytes()[:300]


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"", "empty (0 bytes)"),
        (b"this is not an image", "cannot read image"),
        ("truncated", "cannot read image"),
        (_png_claiming(40_000, 40_000), "refused"),  # 1.6 G pixels: a decompression bomb
    ],
)
def test_bad_images_are_one_line_errors_naming_the_file(tmp_path, content, needle):
    path = tmp_path / "bad.png"
    path.write_bytes(_truncated_png(tmp_path) if content == "truncated" else content)
    with pytest.raises(ImageReadError) as info:
        load_image(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and needle in message and "\n" not in message


def test_image_error_in_a_dataloader_worker_stays_one_line(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"junk")
    data = torch.utils.data.DataLoader(ImageFiles([str(tmp_path / "bad.png")], torch.zeros(1, 2), ["a", "b"]), num_workers=1)
    with pytest.raises(ImageReadError) as info:
        next(iter(data))
    assert str(info.value).startswith(f"{tmp_path / 'bad.png'}: cannot read image") and "\n" not in str(info.value)


@pytest.mark.parametrize("dtype, scale, expected_top", [
    ("float32", 1.0, 255),      # an F TIFF of 0-255 values loaded all white
    ("float32", 1 / 255, 255),  # [0, 1] floats keep working
    ("int32", 1.0, 255),        # an I TIFF of 8-bit values loaded near black
    ("int32", 257.0, 255),      # 16-bit values in an I image
])
def test_float_and_32_bit_images_are_scaled_by_their_range(tmp_path, dtype, scale, expected_top):
    """Issue 21, item 19: scale by the data's range and mode, as for 16-bit PNGs."""
    values = (np.arange(256).reshape(16, 16) * scale).astype(dtype)
    Image.fromarray(values).save(tmp_path / "x.tif")
    pixels = np.asarray(load_image(tmp_path / "x.tif"))[..., 0]
    assert pixels.max() == expected_top and pixels.min() == 0
    assert abs(int(pixels.reshape(-1)[128]) - 128) <= 1  # mid-grey stays mid-grey
