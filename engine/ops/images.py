"""Image input: decoding with clear errors, mode normalisation, and the numpy/Pillow
preprocessing every backend shares (so the torch reference and the runtime see the same pixels).

Documented handling of odd inputs:
- RGBA / LA / palette with transparency: composited over white.
- 16-bit (I;16*, I): scaled to 8 bit (value / 257); CMYK, YCbCr, LAB, 1-bit, L: converted to RGB.
- EXIF orientation is applied; a broken EXIF block (truncated, bad offsets) is ignored with a
  logged warning and the image is used as stored.
- Non-square images: short side resized, centre crop (the edit covers that square). Only the
  crop's window is resampled when the full resize would pass RESIZE_PIXELS (a 16 x 80,000 sliver
  would otherwise be upscaled to gigabytes first); below that the full resize is kept, so the
  pixels match the C++ host's to the bit.
- Smaller than MIN_SIDE on a side, or larger than MAX_PIXELS: refused with the sizes named.
  Anything else the decoder raises becomes one InputError; names that hold control characters
  (a newline) are shown as Python literals.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lredit.errors import InputError

log = logging.getLogger(__name__)

MIN_SIDE = 16
MAX_PIXELS = 178_956_970  # Pillow's decompression-bomb error threshold (2 x MAX_IMAGE_PIXELS)
RESIZE_PIXELS = 16_000_000
"""Largest full short-side resize (48 MB in RGB); beyond it only the crop's window is resampled."""
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


class ImageTooLarge(InputError):
    """Larger than a limit (a service answers 413 naming `limit`): pixels, a side, the aspect
    ratio, or data that decompresses past Pillow's safety limits (a decompression bomb)."""

    def __init__(self, message: str, limit: str = "max_pixels"):
        super().__init__(message)
        self.limit = limit


def shown(name: str) -> str:
    """`name` as printed in messages: as is, or as a Python literal when it holds a newline or
    another control character."""
    return name if name.isprintable() else repr(name)


def load_image(source: str | os.PathLike | bytes | Image.Image, *, max_pixels: int = MAX_PIXELS, name: str | None = None,
               max_side: int | None = None, max_aspect_ratio: float | None = None) -> Image.Image:
    """Decode a file, encoded bytes (an upload) or a PIL image and return an 8-bit RGB image, or
    raise InputError. The limits are checked from the header, before the pixels are decoded."""
    if isinstance(source, Image.Image):
        return to_rgb(source, name or "<PIL image>")
    if isinstance(source, (bytes, bytearray)):
        name, opened = name or "<upload>", io.BytesIO(source)
    else:
        path = Path(source)
        name = name or shown(str(path))
        if not path.exists():
            raise InputError(f"image not found: {name}")
        if not path.is_file():
            raise InputError(f"image path is not a file: {name}")
        opened = path
    try:
        with warnings.catch_warnings(record=True) as caught:
            # Sizes are checked below against max_pixels with a clearer message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                with Image.open(opened) as img:
                    check_size(img.size, name, max_pixels, max_side=max_side, max_aspect_ratio=max_aspect_ratio)
                    img.load()
                    return to_rgb(img, name)
            finally:  # Pillow's own warnings ('Corrupt EXIF data') go to the log, not across stderr
                for w in caught:
                    log.info("image %s: %s", name, w.message)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"not an image Pillow can read: {name}") from None
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image {name} is too large: {exc}", "max_pixels") from None
    except ValueError as exc:
        if "decompressed data too large" in str(exc).lower():  # a PNG text/ICC chunk bomb (PngImagePlugin)
            raise ImageTooLarge(f"image {name} holds a chunk that decompresses past Pillow's limit ({exc})",
                                "decompressed_size") from None
        raise _undecodable(name, exc) from None
    except Exception as exc:  # noqa: BLE001 -- whatever the decoder raises, the file is at fault
        raise _undecodable(name, exc) from None


def _undecodable(name: str, exc: BaseException) -> InputError:
    return InputError(f"cannot decode image {name}: {type(exc).__name__}: {exc} (is the file truncated or corrupt?)")


def check_size(size: tuple[int, int], name: str, max_pixels: int = MAX_PIXELS, *, max_side: int | None = None,
               max_aspect_ratio: float | None = None) -> None:
    width, height = size
    if min(width, height) < MIN_SIDE:
        raise InputError(
            f"image {name} is {width}x{height} pixels; at least {MIN_SIDE} pixels on each side are needed"
        )
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image {name} is {width}x{height} = {width * height} pixels; the limit is {max_pixels} "
            "(max_pixels; downscale it first)"
        )
    if max_side is not None and max(width, height) > max_side:
        raise ImageTooLarge(f"image {name} is {width}x{height} pixels; the longest side allowed is max_side={max_side}",
                            "max_side")
    if max_aspect_ratio is not None and max(width, height) > max_aspect_ratio * min(width, height):
        raise ImageTooLarge(f"image {name} is {width}x{height} pixels, an aspect ratio of "
                            f"{max(width, height) / min(width, height):.1f}; the limit is max_aspect_ratio={max_aspect_ratio:g} "
                            "(crop it first)", "max_aspect_ratio")


def to_rgb(img: Image.Image, name: str) -> Image.Image:
    """Normalise any Pillow mode to 8-bit RGB (see the module docstring for the rules)."""
    check_size(img.size, name)
    img = _exif_upright(img, name)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(img, dtype=np.float64)
        gray = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode == "F":
        raise InputError(f"image {name} is 32-bit float (mode F); convert it to 8-bit RGB first")
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _exif_upright(img: Image.Image, name: str) -> Image.Image:
    """EXIF orientation applied; a broken EXIF block is ignored (warned), not fatal: the pixels
    are intact, only the rotation hint is lost."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception as exc:  # noqa: BLE001 -- Pillow's EXIF parser raises struct.error, KeyError, ...
        log.warning("image %s: ignoring its unreadable EXIF block (%s: %s); using the image as stored",
                    name, type(exc).__name__, exc)
        return img


def _short_side_size(img: Image.Image, size: int) -> tuple[int, int]:
    width, height = img.size
    if width <= height:
        return size, max(size, int(size * height / width))
    return max(size, int(size * width / height)), size


def resize_short_side(img: Image.Image, size: int, resample=Image.Resampling.BICUBIC) -> Image.Image:
    """Resize so the short side is `size`, keeping the aspect (long side truncated as torchvision)."""
    new = _short_side_size(img, size)
    if new == img.size:
        return img.copy()
    return img.resize(new, resample=resample)


def center_crop(img: Image.Image, size: int) -> Image.Image:
    left, top = _centre_offsets(img.size, size)
    return img.crop((left, top, left + size, top + size))


def _centre_offsets(shape: tuple[int, int], size: int) -> tuple[int, int]:
    return int(round((shape[0] - size) / 2.0)), int(round((shape[1] - size) / 2.0))


def square_crop(img: Image.Image, size: int, resample=Image.Resampling.BICUBIC) -> Image.Image:
    """Short side to `size`, then the centre size x size square. Past RESIZE_PIXELS only the
    square's source window is resampled (memory bounded by the output, not the long side)."""
    new = _short_side_size(img, size)
    if new[0] * new[1] <= RESIZE_PIXELS or new == img.size:
        return center_crop(resize_short_side(img, size, resample), size)
    return _window_resize(img, new, _centre_offsets(new, size), size, resample)


def _window_resize(img: Image.Image, new: tuple[int, int], offsets: tuple[int, int], size: int, resample) -> Image.Image:
    """The size x size window at `offsets` of `img` resized to `new`, computed as Pillow computes
    the full resize (horizontal pass, then vertical) but over the source rows the window reads."""
    (w, h), (left, top) = img.size, offsets
    sx, sy = w / new[0], h / new[1]
    margin = 3.0 * max(sy, 1.0) + 2  # covers every filter's support (Lanczos: 3 source pixels per scale)
    r0, r1 = max(int(top * sy - margin), 0), min(int((top + size) * sy + margin) + 1, h)
    rows = img.crop((0, r0, w, r1))
    if new[0] != w:
        rows = rows.resize((size, r1 - r0), resample=resample, box=(left * sx, 0, (left + size) * sx, r1 - r0))
    else:
        rows = rows.crop((left, 0, left + size, r1 - r0))
    if new[1] != h:
        return rows.resize((size, size), resample=resample, box=(0, top * sy - r0, size, (top + size) * sy - r0))
    return rows.crop((0, top - r0, size, top - r0 + size))


def to_chw_unit(img: Image.Image) -> np.ndarray:
    """[3, H, W] float32 in [0, 1]."""
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0


def dino_pixels(img: Image.Image, size: int, imagenet_norm: bool) -> np.ndarray:
    """[1, 3, size, size] float32 DINO input."""
    x = to_chw_unit(square_crop(img, size))
    if imagenet_norm:
        x = (x - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]
    return x[None]


def clip_pixels(images: list[Image.Image], size: int = 224) -> np.ndarray:
    """[N, 3, size, size] float32 CLIP input (bicubic short side, centre crop, CLIP mean/std)."""
    batch = [to_chw_unit(square_crop(img, size)) for img in images]
    x = np.stack(batch)
    return ((x - CLIP_MEAN[:, None, None]) / CLIP_STD[:, None, None]).astype(np.float32)


def sd_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] in [-1, 1] (diffusers' normalisation)."""
    return (images.astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0).astype(np.float32)


def sd_to_uint8(images: np.ndarray) -> np.ndarray:
    """float [N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3], rounded as diffusers' numpy_to_pil."""
    x = np.clip(images.astype(np.float32) / 2.0 + 0.5, 0.0, 1.0)
    return (x.transpose(0, 2, 3, 1) * 255.0).round().astype(np.uint8)


def latent_windows(boxes_px: np.ndarray, factor: int, side: int, margin: int, minimum: int = 1) -> np.ndarray:
    """Square latent windows [R, 3] (top, left, size) covering each pixel box [R, 4] (x0, y0, x1,
    y1 inclusive) plus `margin` cells, inside a latent of `side` cells, at least `minimum` cells
    (a graph's smallest crop), shifted inward at the borders rather than cut."""
    boxes = np.asarray(boxes_px, dtype=np.int64).reshape(-1, 4)
    first = boxes[:, :2] // factor  # (x, y) cells holding the box's first and last pixels
    last = boxes[:, 2:] // factor
    extents = last - first + 1
    size = np.clip(extents.max(axis=1) + 2 * margin, max(1, minimum), side)
    # centred on the box's cells, then moved inside the latent (it still covers the box)
    start = np.clip(first - (size[:, None] - extents) // 2, 0, side - size[:, None])
    return np.stack([start[:, 1], start[:, 0], size], axis=1).astype(np.int64)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels from uint8 or float 0..255 ones, rounded half up (torchvision's save_image)."""
    if pixels.dtype == np.uint8:
        return pixels
    return np.clip(np.floor(pixels.astype(np.float32) + 0.5), 0, 255).astype(np.uint8)


def resize_bilinear(array: np.ndarray, size: int) -> np.ndarray:
    """float32 [..., H, W] resized to [..., size, size] as torch's bilinear interpolation with
    align_corners=False and no antialiasing (torchvision `T.Resize` on tensors in the authors'
    torchvision 0.15; for upsampling, antialiasing would change nothing)."""
    x = np.asarray(array, dtype=np.float32)
    rows = _linear_weights(x.shape[-2], size)
    cols = _linear_weights(x.shape[-1], size)
    return np.einsum("ih,...hw,jw->...ij", rows, x, cols, optimize=True).astype(np.float32)


def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] interpolation matrix: half-pixel centres, source index clamped at 0 and at
    the last pixel (torch's area_pixel_compute_source_index for linear modes)."""
    scale = np.float32(n_in / n_out)  # float32 arithmetic, as torch's CPU kernel
    src = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5), np.float32(0))
    low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = (src - low.astype(np.float32)).astype(np.float32)
    weights = np.zeros((n_out, n_in), dtype=np.float32)
    np.add.at(weights, (np.arange(n_out), low), 1.0 - frac)
    np.add.at(weights, (np.arange(n_out), high), frac)
    return weights
