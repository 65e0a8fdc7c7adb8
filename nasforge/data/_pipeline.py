"""The one image pipeline: how raw images become the tensors a network sees, in training and after.

Every image nasforge feeds a network goes through these functions, so that a model sees at
inference exactly what it saw in training:

- **pixels**: uint8 0..255 or floats in [0, 1], ``(C, H, W)``; files are read with Pillow
  (:func:`read_image`), arrays and tensors are scaled (:func:`scale_pixels`);
- **channels**: alpha dropped, grey from RGB by luminance (``0.299 R + 0.587 G + 0.114 B``), RGB
  from grey by repetition (:func:`convert_channels`);
- **size**: bilinear, antialiased resizing (:func:`resize`), the one resize used by
  :meth:`Task.with_resolution <nasforge.data.Task.with_resolution>`, the image-folder loaders,
  inference and export;
- **normalisation**: ``(pixel - mean) / std`` per channel (:func:`normalize`), in the dataset
  loaders, at inference (:class:`ImagePipeline`) and inside every exported graph
  (:meth:`ImagePipeline.network`); :func:`denormalize` turns a task's tensors back into pixels
  (calibration images for INT8).

A :class:`ImagePipeline` holds one network's input shape, mean and std: a
:class:`~nasforge.data.Task` and a trained model both expose theirs as ``.pipeline``.

Example:
    >>> import torch
    >>> pipeline = ImagePipeline((1, 4, 4), mean=(0.5,), std=(0.25,))
    >>> batch, sources = pipeline(torch.ones(2, 1, 8, 8))  # two white 8x8 images, resized to 4x4
    >>> batch.shape, float(batch.max()), sources
    (torch.Size([2, 1, 4, 4]), 2.0, ['input[0]', 'input[0][1]'])
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import DataError

# torch, Pillow and PixelNetwork (an nn.Module) are imported on first use, so that `import nasforge`
# stays light.
if TYPE_CHECKING:
    import torch
    from torch import nn

    from nasforge.data._pixel_network import PixelNetwork

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_URL_BYTES",
    "URL_TIMEOUT_S",
    "ImagePipeline",
    "ImageSizeWarning",
    "as_images",
    "convert_channels",
    "denormalize",
    "image_files",
    "is_url",
    "normalize",
    "read_image",
    "read_url_image",
    "resize",
    "scale_pixels",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: seconds an ``http(s)://`` image source may take to answer (each read, not the whole download)
URL_TIMEOUT_S = 15.0
#: the largest image download accepted, in bytes (a bigger file is refused, not truncated)
MAX_URL_BYTES = 32 * 1024 * 1024


class ImageSizeWarning(UserWarning):
    """An input image was resized from a size far from the model's input: the prediction may be
    meaningless (a 1-pixel side, an upscaled image, or one shrunk more than 2x on a side)."""


# ----------------------------------------------------------------------------------------- the steps
def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(N, C, H, W)`` images to ``size = (height, width)``: bilinear, antialiased.

    The same ``size`` returns the images unchanged; an empty batch stays empty.
    """
    import torch.nn.functional as F

    if tuple(images.shape[2:]) == tuple(size):
        return images
    if images.shape[0] == 0:
        return images.new_zeros((0, images.shape[1], *size))
    return F.interpolate(images, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)


def _stats(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.tensor(values, dtype=torch.float32, device=like.device).view(1, -1, 1, 1)


def normalize(pixels: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(pixels - mean) / std`` per channel of ``(N, C, H, W)`` pixels in [0, 1] (float32)."""
    return (pixels - _stats(mean, pixels)) / _stats(std, pixels)


def denormalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """The pixels in [0, 1] behind normalised ``(N, C, H, W)`` images (clamped)."""
    return (x * _stats(std, x) + _stats(mean, x)).clamp(0, 1)


def scale_pixels(t: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 in [0, 1]; floats must be in [0, 1] already (not normalised).

    Raises:
        DataError: other dtypes, or floats outside [0, 1].
    """
    import torch

    if t.dtype == torch.uint8:
        return t.float() / 255.0
    if t.dtype == torch.bool or not t.is_floating_point():
        raise DataError(f"image pixels must be uint8 (0..255) or floats in [0, 1], got {t.dtype}")
    t = t.float()
    if t.numel() and (float(t.min()) < -1e-3 or float(t.max()) > 1 + 1e-3):
        raise DataError(
            f"float pixels must be in [0, 1], got values in [{float(t.min()):.3g}, {float(t.max()):.3g}]; "
            "pass raw pixels (uint8 0..255 or floats in [0, 1]): the model normalises them itself"
        )
    return t


def convert_channels(t: torch.Tensor, channels: int) -> torch.Tensor:
    """One ``(C', H, W)`` image in [0, 1] -> ``channels`` channels (alpha dropped, luminance, repetition).

    Raises:
        DataError: a channel count that cannot be converted (2 channels, say).
    """
    if t.shape[0] == 4:  # drop alpha
        t = t[:3]
    if t.shape[0] == 3 and channels == 1:  # luminance, as PIL's "L" conversion
        t = (0.299 * t[0] + 0.587 * t[1] + 0.114 * t[2])[None]
    elif t.shape[0] == 1 and channels == 3:
        t = t.repeat(3, 1, 1)
    if t.shape[0] != channels:
        raise DataError(f"an image with {t.shape[0]} channels cannot feed a model that takes {channels}")
    return t


# ----------------------------------------------------------------------------------------- reading
def read_image(path: str | Path) -> Any:
    """The PIL image in ``path``, fully read (the file is closed again).

    Raises:
        DataError: no such file, or not an image Pillow can read.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"no image file {path}")
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def is_url(source: Any) -> bool:
    """Whether ``source`` is an ``http://`` or ``https://`` URL string (an image to download)."""
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


def read_url_image(url: str, *, timeout: float = URL_TIMEOUT_S, max_bytes: int = MAX_URL_BYTES) -> Any:
    """Download the image at an ``http(s)://`` ``url`` (urllib, into memory) and read it with Pillow.

    Nothing is written to disk and no code runs: the bytes go to Pillow's decoders only.

    Args:
        url: the image's address.
        timeout: seconds to wait for the server at each step (connect, each read).
        max_bytes: refuse a larger download (by its Content-Length, or once that much arrived).

    Raises:
        DataError: the URL is unreachable or answers with an HTTP error, the download is larger than
            ``max_bytes``, or the content is not an image Pillow can read; the message names the URL.
    """
    import io
    import urllib.error  # loads http.client and ssl: only when an image is downloaded
    import urllib.request

    from PIL import Image, UnidentifiedImageError

    if not is_url(url):
        raise DataError(f"not an http(s) URL: {url!r}")
    request = urllib.request.Request(url, headers={"User-Agent": "nasforge"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise DataError(
                    f"cannot read image {url}: {int(length):,} bytes, "
                    f"more than the {max_bytes:,} bytes allowed"
                )
            data = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise DataError(f"cannot read image {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, DNS, timeout, bad URL
        reason = getattr(exc, "reason", None) or exc
        raise DataError(f"cannot read image {url}: {reason}") from None
    if len(data) > max_bytes:
        raise DataError(f"cannot read image {url}: more than the {max_bytes:,} bytes allowed")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.copy()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"cannot read image {url}: not an image ({exc})") from None


def _from_pil(img: Any) -> torch.Tensor:
    import torch

    if img.mode not in ("L", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    a = np.array(img, dtype=np.uint8)  # a writable copy
    a = a[..., None] if a.ndim == 2 else a
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float() / 255.0


def as_images(item: Any, index: int = 0) -> list[torch.Tensor]:
    """One input -> float ``(C, H, W)`` tensors in [0, 1] (several for a batched array or tensor).

    An input is an image file path, an ``http(s)://`` URL (:func:`read_url_image`), a PIL image,
    a numpy array in the numpy / PIL layout
    (``(H, W)``, ``(H, W, C)`` with C = 1, 3 or 4, a batch ``(N, H, W)`` / ``(N, H, W, C)``) or a
    tensor in torch's (``(H, W)``, ``(C, H, W)``, ``(N, C, H, W)``). ``index`` names it in errors.

    Raises:
        DataError: an unreadable file, another type or shape, or pixels out of range.
    """
    import torch

    if is_url(item):
        return [_from_pil(read_url_image(item))]
    if isinstance(item, str | Path):
        return [_from_pil(read_image(item))]
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None  # type: ignore[assignment]
    if Image is not None and isinstance(item, Image.Image):
        return [_from_pil(item)]
    if isinstance(item, torch.Tensor):
        t = item.detach().cpu()
        if t.dim() == 2:
            t = t[None]
        if t.dim() == 3:
            return [scale_pixels(t)]
        if t.dim() == 4:
            return list(scale_pixels(t))
        raise DataError(
            f"input[{index}]: a tensor image must be (H, W), (C, H, W) or (N, C, H, W), got {tuple(t.shape)}"
        )
    if isinstance(item, np.ndarray):
        a = item
        if a.ndim == 2:  # (H, W) grey
            return [scale_pixels(torch.from_numpy(np.ascontiguousarray(a))[None])]
        if a.ndim == 3:
            if a.shape[-1] in (1, 3, 4):  # (H, W, C), the numpy / PIL convention
                return [scale_pixels(torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))))]
            return [scale_pixels(torch.from_numpy(np.ascontiguousarray(x))[None]) for x in a]  # (N, H, W)
        if a.ndim == 4:
            if a.shape[-1] in (1, 3, 4):  # (N, H, W, C)
                a = a.transpose(0, 3, 1, 2)
            return list(scale_pixels(torch.from_numpy(np.ascontiguousarray(a))))
        raise DataError(f"input[{index}]: an array image must have 2 to 4 dimensions, got shape {a.shape}")
    raise DataError(
        f"input[{index}] is a {type(item).__name__}; give image file paths, PIL images, numpy arrays "
        "or torch tensors"
    )


def image_files(paths: Iterable[str | Path]) -> list[Path | str]:
    """Expand folders into their image files (sorted by name); keep files and ``http(s)://`` URLs
    (as strings: a ``Path`` would fold their ``//``) as given."""
    out: list[Path | str] = []
    for given in paths:
        if is_url(given):
            out.append(str(given))
            continue
        p = Path(given)
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out


# ----------------------------------------------------------------------------------------- sizes
def size_problem(height: int, width: int, h: int, w: int) -> str:
    """Why resizing a ``height`` x ``width`` image to the model's ``h`` x ``w`` is doubtful ("" if not).

    Bilinear resizing keeps the content of an image of about the model's size; a side of one
    pixel carries no shape, upscaling invents detail, and shrinking by more than 2x on a side
    throws most of it away (a 28x28 digit fed to an 8x8 model), so those are reported.
    """
    if min(height, width) <= 1 < min(h, w):
        return "a side of 1 pixel"
    if height < h or width < w:
        return "smaller than the model's input, so it is upscaled"
    if height > 2 * h or width > 2 * w:
        return f"{max(height / h, width / w):.1f}x larger on a side, so most of its detail is lost"
    return ""


def _warn_far_sizes(far: list[tuple[str, int, int]], total: int, h: int, w: int, stacklevel: int) -> None:
    source, height, width = far[0]
    which = (
        f"{source} is {height}x{width}"
        if len(far) == 1
        else (f"{len(far)} of {total} images, e.g. {source} at {height}x{width}")
    )
    warnings.warn(
        f"{which}: {size_problem(height, width, h, w)}; resized to the model's {h}x{w} input, the "
        f"prediction may be meaningless. Give images of about {h}x{w} pixels (up to {2 * h}x{2 * w})",
        ImageSizeWarning,
        stacklevel=stacklevel + 1,
    )


# ------------------------------------------------------------------------------------ a network's pipeline
@dataclass(frozen=True)
class ImagePipeline:
    """The preprocessing of one network: its input shape and per-channel normalisation.

    Training data was made with it (the loaders normalise with these ``mean`` and ``std``, and
    :meth:`Task.with_resolution <nasforge.data.Task.with_resolution>` resizes with :func:`resize`);
    a trained model applies it to every image it is called on, and its exported graphs start with
    :meth:`network`.

    Args:
        input_shape: ``(C, H, W)`` the network takes.
        mean: per-channel mean subtracted from pixels in [0, 1].
        std: per-channel standard deviation the centred pixels are divided by.
    """

    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def fit(self, image: torch.Tensor) -> torch.Tensor:
        """One ``(C', H', W')`` image in [0, 1] -> the network's channels and size (not normalised)."""
        import torch

        c, h, w = self.input_shape
        t = resize(convert_channels(image, c)[None], (h, w))[0]
        return t.clamp(0.0, 1.0) if t.dtype == torch.float32 else t.float()

    def pixels(self, images: Any, *, stacklevel: int = 1) -> tuple[torch.Tensor, list[str]]:
        """Images in any supported form (see :func:`as_images`; one or a list) -> float32
        ``(N, C, H, W)`` pixels in [0, 1] at the network's size, and where each came from.

        Images far from the input size are resized too, with one :class:`ImageSizeWarning`
        attributed ``stacklevel`` frames above this call.

        Raises:
            DataError: no images, or an image that cannot be read or converted.
        """
        import torch

        items = list(images) if isinstance(images, list | tuple) else [images]
        if not items:
            raise DataError("no images given")
        _, h, w = self.input_shape
        out: list[torch.Tensor] = []
        sources: list[str] = []
        far: list[tuple[str, int, int]] = []  # images whose size is far from the network's input
        for i, item in enumerate(items):
            for j, t in enumerate(as_images(item, i)):
                source = (
                    str(item) if isinstance(item, str | Path) else f"input[{i}]" + (f"[{j}]" if j else "")
                )
                if size_problem(t.shape[1], t.shape[2], h, w):
                    far.append((source, int(t.shape[1]), int(t.shape[2])))
                out.append(self.fit(t))
                sources.append(source)
        if far:
            _warn_far_sizes(far, len(out), h, w, stacklevel + 1)
        return torch.stack(out), sources

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """:func:`normalize` with this pipeline's mean and std."""
        return normalize(pixels, self.mean, self.std)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """:func:`denormalize` with this pipeline's mean and std."""
        return denormalize(x, self.mean, self.std)

    def __call__(self, images: Any, *, stacklevel: int = 1) -> tuple[torch.Tensor, list[str]]:
        """The normalised ``(N, C, H, W)`` batch the network sees, and each image's source."""
        pixels, sources = self.pixels(images, stacklevel=stacklevel + 1)
        return self.normalize(pixels), sources

    def network(self, net: nn.Module) -> PixelNetwork:
        """``net`` with this normalisation in front: raw pixels in [0, 1] in, ``net``'s output out
        (what every exported graph is made of; in eval mode)."""
        from nasforge.data._pixel_network import PixelNetwork

        return PixelNetwork(net, self.mean, self.std).eval()
