"""Detection results with Ultralytics' names: ``results[0].boxes.xyxy``, ``.conf``, ``.cls``, ``.plot()``.

A :class:`~nasforge.deploy.Detector` call returns one :class:`Results` per image. Boxes are in
pixels of the **original** image (before the detector resized it). As in Ultralytics,
``xywh`` is centre x, centre y, width, height; the ``n`` variants are divided by the image width
and height. One difference: :meth:`Results.plot` returns a PIL image (Ultralytics returns a BGR
numpy array unless ``pil=True``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["Boxes", "Results"]


class Boxes:
    """The detections of one image: ``data`` is ``(N, 6)`` = ``x1, y1, x2, y2, conf, cls``.

    Args:
        data: ``(N, 6)`` tensor, boxes in original-image pixels.
        orig_shape: ``(height, width)`` of the original image.

    Example:
        >>> b = Boxes(torch.tensor([[10.0, 20.0, 30.0, 60.0, 0.9, 2.0]]), (100, 200))
        >>> b.xywh.tolist(), [round(v, 3) for v in b.xyxyn[0].tolist()], int(b.cls[0])
        ([[20.0, 40.0, 20.0, 40.0]], [0.05, 0.2, 0.15, 0.6], 2)
    """

    def __init__(self, data: torch.Tensor, orig_shape: tuple[int, int]) -> None:
        if data.dim() != 2 or data.shape[1] != 6:
            raise ValueError(f"boxes data must be (N, 6): x1, y1, x2, y2, conf, cls; got {tuple(data.shape)}")
        self.data = data
        self.orig_shape = (int(orig_shape[0]), int(orig_shape[1]))

    @property
    def xyxy(self) -> torch.Tensor:
        """``(N, 4)`` corners ``x1, y1, x2, y2`` in pixels."""
        return self.data[:, :4]

    @property
    def conf(self) -> torch.Tensor:
        """``(N,)`` confidence scores."""
        return self.data[:, 4]

    @property
    def cls(self) -> torch.Tensor:
        """``(N,)`` class ids (as floats, as in Ultralytics)."""
        return self.data[:, 5]

    @property
    def id(self) -> None:
        """Track ids: None (no tracking)."""
        return None

    @property
    def xywh(self) -> torch.Tensor:
        """``(N, 4)`` centre x, centre y, width, height in pixels."""
        b = self.xyxy
        return torch.stack(
            ((b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]), 1
        )

    def _scale(self) -> torch.Tensor:
        h, w = self.orig_shape
        return torch.tensor([w, h, w, h], dtype=self.data.dtype)

    @property
    def xyxyn(self) -> torch.Tensor:
        """:attr:`xyxy` divided by the image width and height."""
        return self.xyxy / self._scale()

    @property
    def xywhn(self) -> torch.Tensor:
        """:attr:`xywh` divided by the image width and height."""
        return self.xywh / self._scale()

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def __getitem__(self, index: Any) -> Boxes:
        data = self.data[index]
        return Boxes(data[None] if data.dim() == 1 else data, self.orig_shape)

    def cpu(self) -> Boxes:
        return Boxes(self.data.cpu(), self.orig_shape)

    def numpy(self) -> np.ndarray:
        """``data`` as a numpy array."""
        return self.data.detach().cpu().numpy()

    def __repr__(self) -> str:
        return f"Boxes({len(self)} boxes, orig_shape={self.orig_shape})"


class Results:
    """What a detector found in one image.

    Attributes:
        orig_img: the original image, ``(H, W, 3)`` uint8 RGB (grey images repeated to RGB).
        orig_shape: ``(height, width)``.
        boxes: :class:`Boxes`.
        names: class names by id, ``{0: "circle", ...}``.
        path: where the image came from (a path, or ``"image0.png"`` style names for arrays).
        speed: milliseconds per image for ``preprocess``, ``inference`` and ``postprocess``.
    """

    def __init__(
        self,
        orig_img: np.ndarray,
        path: str,
        names: dict[int, str],
        boxes: torch.Tensor,
        speed: Mapping[str, float | None] | None = None,
    ) -> None:
        self.orig_img = orig_img
        self.orig_shape = (int(orig_img.shape[0]), int(orig_img.shape[1]))
        self.path = path
        self.names = dict(names)
        self.boxes = Boxes(boxes, self.orig_shape)
        self.speed: dict[str, float | None] = dict(
            speed or {"preprocess": None, "inference": None, "postprocess": None}
        )

    def __len__(self) -> int:
        return len(self.boxes)

    def verbose(self) -> str:
        """Counts per class as Ultralytics logs them: ``"2 circles, 1 square, "``, ``"(no detections), "``."""
        if not len(self.boxes):
            return "(no detections), "
        counts = np.bincount(self.boxes.cls.long().numpy(), minlength=len(self.names))
        parts = []
        for c in np.nonzero(counts)[0]:
            n = int(counts[c])
            parts.append(f"{n} {self.names[int(c)]}{'s' * (n > 1)}, ")
        return "".join(parts)

    def summary(self, normalize: bool = False, decimals: int = 5) -> list[dict[str, Any]]:
        """One dict per box: ``name``, ``class``, ``confidence`` and ``box`` (``x1 y1 x2 y2``)."""
        h, w = self.orig_shape if normalize else (1, 1)
        out = []
        for x1, y1, x2, y2, conf, cls in self.boxes.data.tolist():
            out.append(
                {
                    "name": self.names[int(cls)],
                    "class": int(cls),
                    "confidence": round(conf, decimals),
                    "box": {
                        "x1": round(x1 / w, decimals),
                        "y1": round(y1 / h, decimals),
                        "x2": round(x2 / w, decimals),
                        "y2": round(y2 / h, decimals),
                    },
                }
            )
        return out

    def to_json(self, normalize: bool = False, decimals: int = 5) -> str:
        """:meth:`summary` as a JSON string (Ultralytics' format)."""
        return json.dumps(self.summary(normalize=normalize, decimals=decimals), indent=2)

    def plot(self, *, conf: bool = True, labels: bool = True, line_width: int | None = None) -> Any:
        """The image with its boxes and labels drawn, as a PIL image (Pillow's built-in bitmap font).

        Args:
            conf: append the confidence to each label.
            labels: draw the labels (else boxes only).
            line_width: box line width in pixels; default grows with the image size.
        """
        from PIL import Image, ImageDraw, ImageFont

        image = Image.fromarray(self.orig_img).convert("RGB")
        draw = ImageDraw.Draw(image)
        font = getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)()  # bitmap, no file
        width = line_width or max(1, round(sum(self.orig_shape) / 2 * 0.003))
        for x1, y1, x2, y2, score, cls in self.boxes.data.tolist():
            colour = _colour(int(cls))
            draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
            if labels:
                text = self.names[int(cls)] + (f" {score:.2f}" if conf else "")
                left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
                th = bottom - top + 2
                ty = y1 - th if y1 - th >= 0 else y1
                draw.rectangle((x1, ty, x1 + right - left + 2, ty + th), fill=colour)
                draw.text((x1 + 1, ty + 1 - top), text, fill=(255, 255, 255), font=font)
        return image

    def save(self, filename: str | Path | None = None, **plot_options: Any) -> str:
        """Write :meth:`plot`'s image (format from the suffix; ``results_<name>.png`` by default).

        Returns:
            the path written.
        """
        from nasforge._paths import check_writable_file

        if filename is None:
            filename = f"results_{Path(self.path).stem or 'image'}.png"
        path = check_writable_file(filename, what="results image")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.plot(**plot_options).save(path)
        return str(path)

    def save_txt(self, path: str | Path, *, save_conf: bool = False) -> str:
        """Write the boxes as a YOLO label file: one ``cls cx cy w h`` line per box, normalised
        (``... conf`` with ``save_conf``); the format :func:`nasforge.data.load_detection` reads.

        Returns:
            the path written.
        """
        from nasforge._paths import check_writable_file

        target = check_writable_file(path, what="label file")
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for (cx, cy, w, h), conf, cls in zip(
            self.boxes.xywhn.tolist(), self.boxes.conf.tolist(), self.boxes.cls.tolist(), strict=True
        ):
            line = f"{int(cls)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"
            lines.append(line + (f" {conf:.6f}" if save_conf else ""))
        target.write_text("".join(f"{line}\n" for line in lines))
        return str(target)

    def cpu(self) -> Results:
        return self

    def __repr__(self) -> str:
        return f"Results({self.path}: {self.verbose().rstrip(', ')}; orig_shape={self.orig_shape})"


# Ultralytics' palette (hex), so that class colours look familiar.
_PALETTE = (
    *("FF3838", "FF9D97", "FF701F", "FFB21D", "CFD231", "48F90A", "92CC17", "3DDB86", "1A9334", "00D4BB"),
    *("2C99A8", "00C2FF", "344593", "6473FF", "0018EC", "8438FF", "520085", "CB38FF", "FF95C8", "FF37C7"),
)


def _colour(index: int) -> tuple[int, int, int]:
    h = _PALETTE[index % len(_PALETTE)]
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
