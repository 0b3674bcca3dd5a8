"""Image input: decoding with clear errors, mode normalisation, and the numpy/Pillow
preprocessing every backend shares (so the torch reference and the runtime see the same pixels).

Documented handling of odd inputs:
- RGBA / LA / palette with transparency: composited over white.
- 16-bit (I;16*, I): scaled to 8 bit (value / 257); CMYK, YCbCr, LAB, 1-bit, L: converted to RGB.
- EXIF orientation is applied.
- Non-square images: short side resized, centre crop (the edit covers that square).
- Smaller than MIN_SIDE on a side, or larger than MAX_PIXELS: refused with the sizes named.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lredit.errors import InputError

MIN_SIDE = 16
MAX_PIXELS = 178_956_970  # Pillow's decompression-bomb error threshold (2 x MAX_IMAGE_PIXELS)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


class ImageTooLarge(InputError):
    """More pixels than allowed (a service answers it with its pixel limit)."""


def load_image(source: str | os.PathLike | bytes | Image.Image, *, max_pixels: int = MAX_PIXELS, name: str | None = None) -> Image.Image:
    """Decode a file, encoded bytes (an upload) or a PIL image and return an 8-bit RGB image, or
    raise InputError. `max_pixels` is checked from the header, before the pixels are decoded."""
    if isinstance(source, Image.Image):
        return to_rgb(source, name or "<PIL image>")
    if isinstance(source, (bytes, bytearray)):
        name, opened = name or "<upload>", io.BytesIO(source)
    else:
        path = Path(source)
        if not path.exists():
            raise InputError(f"image not found: {path}")
        if not path.is_file():
            raise InputError(f"image path is not a file: {path}")
        name, opened = name or str(path), path
    try:
        with warnings.catch_warnings():
            # Sizes are checked below against max_pixels with a clearer message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(opened) as img:
                check_size(img.size, name, max_pixels)
                img.load()
                return to_rgb(img, name)
    except UnidentifiedImageError:
        raise InputError(f"not an image Pillow can read: {name}") from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"image {name} is too large: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot decode image {name}: {exc} (is the file truncated or corrupt?)") from None


def check_size(size: tuple[int, int], name: str, max_pixels: int = MAX_PIXELS) -> None:
    width, height = size
    if min(width, height) < MIN_SIDE:
        raise InputError(
            f"image {name} is {width}x{height} pixels; at least {MIN_SIDE} pixels on each side are needed"
        )
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image {name} is {width}x{height} = {width * height} pixels; the limit is {max_pixels} "
            "(downscale it first)"
        )


def to_rgb(img: Image.Image, name: str) -> Image.Image:
    """Normalise any Pillow mode to 8-bit RGB (see the module docstring for the rules)."""
    check_size(img.size, name)
    img = ImageOps.exif_transpose(img)
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


def resize_short_side(img: Image.Image, size: int, resample=Image.Resampling.BICUBIC) -> Image.Image:
    """Resize so the short side is `size`, keeping the aspect (long side truncated as torchvision)."""
    width, height = img.size
    if width <= height:
        new = (size, max(size, int(size * height / width)))
    else:
        new = (max(size, int(size * width / height)), size)
    if new == img.size:
        return img.copy()
    return img.resize(new, resample=resample)


def center_crop(img: Image.Image, size: int) -> Image.Image:
    width, height = img.size
    left = int(round((width - size) / 2.0))
    top = int(round((height - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def square_crop(img: Image.Image, size: int, resample=Image.Resampling.BICUBIC) -> Image.Image:
    """Short side to `size`, then the centre size x size square."""
    return center_crop(resize_short_side(img, size, resample), size)


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
