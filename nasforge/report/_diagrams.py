"""Architecture diagrams drawn with matplotlib: layer sequences, stages of blocks, cells as DAGs.

One drawer per kind of space: the chain CNN and NAS-Bench-Macro are sequences of layer boxes,
MBConv a row of blocks per stage, NB201 and DARTS cells graphs whose edges carry operations.
Other spaces get no diagram (the report shows their parameter table instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.report._plots import figure, save
from nasforge.space import Architecture, ChainCNN, MBConvSpace, NB201Space
from nasforge.space._darts import CELLS, DartsSpace
from nasforge.space._macro import MACRO_OPS, MacroSpace
from nasforge.space._nb201 import EDGES, nb201_ops

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["can_draw", "draw_architecture"]

IO_COLOR = "#f3f4f6"
BOX_COLORS = {
    "conv": "#bfdbfe",
    "sepconv": "#99f6e4",
    "maxpool": "#fed7aa",
    "avgpool": "#fde68a",
    "identity": "#e5e7eb",
    "MB3_K3": "#bfdbfe",
    "MB6_K5": "#c7d2fe",
}
EDGE_STYLE = {  # operation -> (short label, colour)
    "none": ("none", "#b8c0cc"),
    "skip_connect": ("skip", "#15803d"),
    "nor_conv_1x1": ("conv1x1", "#60a5fa"),
    "nor_conv_3x3": ("conv3x3", "#1d4ed8"),
    "avg_pool_3x3": ("avgpool", "#d97706"),
    "max_pool_3x3": ("maxpool", "#b45309"),
    "sep_conv_3x3": ("sep3x3", "#2563eb"),
    "sep_conv_5x5": ("sep5x5", "#1e3a8a"),
    "dil_conv_3x3": ("dil3x3", "#9333ea"),
    "dil_conv_5x5": ("dil5x5", "#6b21a8"),
}
_W, _H, _GAP, _PITCH = 1.7, 1.1, 0.55, 2.4  # box width, height, gap in a row, row pitch


@dataclass(frozen=True)
class _Box:
    text: str
    color: str = IO_COLOR
    skip: bool = False  # a residual connection around the box


def can_draw(arch: Architecture) -> bool:
    """Whether ``arch``'s space has a diagram (else the report lists its parameters)."""
    return isinstance(arch.space, ChainCNN | MBConvSpace | MacroSpace | NB201Space | DartsSpace)


def draw_architecture(arch: Architecture, path: Path, title: str = "") -> Path | None:
    """Draw ``arch`` to the PNG ``path`` (with ``title`` above, if any); None for a space without one."""
    space = arch.space
    if isinstance(space, ChainCNN):
        return _draw_rows([("", _chain_boxes(arch))], path, title)
    if isinstance(space, MacroSpace):
        boxes = [_Box("input")]
        for i in range(len(space.dimensions())):
            op = MACRO_OPS[str(arch.params[f"layer{i}"])]
            boxes.append(_Box(op.replace("_", " "), BOX_COLORS.get(op, IO_COLOR)))
        return _draw_rows([("", [*boxes, _Box("classifier")])], path, title)
    if isinstance(space, MBConvSpace):
        return _draw_rows(_mbconv_rows(space, arch), path, title)
    if isinstance(space, NB201Space):
        return _draw_nb201(arch, path, title)
    if isinstance(space, DartsSpace):
        return _draw_darts(space, arch, path, title)
    return None


# ---------------------------------------------------------------------- sequences of boxes
def _shape_text(space: Any) -> str:
    shape = getattr(space, "input_shape", None)
    return "\n" + "×".join(str(s) for s in shape) if shape else ""


def _chain_boxes(arch: Architecture) -> list[_Box]:
    p = arch.params
    boxes = [_Box("input" + _shape_text(arch.space))]
    for i in range(int(p["depth"])):
        op, kernel = p[f"layer{i}.op"], p[f"layer{i}.kernel"]
        lines = [f"{op} {kernel}×{kernel}"]
        if f"layer{i}.filters" in p:
            lines.append(f"{p[f'layer{i}.filters']} ch, {p[f'layer{i}.act']}")
        if p.get(f"layer{i}.stride") == 2:
            lines.append("stride 2")
        if p.get(f"layer{i}.padding") == "valid":
            lines.append("valid padding")
        boxes.append(_Box("\n".join(lines), BOX_COLORS.get(op, IO_COLOR), bool(p.get(f"layer{i}.skip"))))
    classes = getattr(arch.space, "num_classes", None)
    boxes.append(_Box("avg pool\nlinear" + (f"\n{classes} classes" if classes else "")))
    return boxes


def _mbconv_rows(space: MBConvSpace, arch: Architecture) -> list[tuple[str, list[_Box]]]:
    rows: list[tuple[str, list[_Box]]] = [
        ("", [_Box("input" + _shape_text(space)), _Box(f"stem conv 3×3\n{space.stem} ch")])
    ]
    blocks = space.blocks(arch.params)
    for s, stage in enumerate(space.stages):
        boxes = []
        for blk in (b for b in blocks if b["stage"] == s):
            lines = [f"MBConv{blk['expand']} {blk['kernel']}×{blk['kernel']}"]
            extras = [x for x in ("SE" if blk["se"] else "", "stride 2" if blk["stride"] == 2 else "") if x]
            lines.append(", ".join([blk["act"], *extras]))
            boxes.append(_Box("\n".join(lines), "#c7d2fe" if blk["se"] else "#bfdbfe"))
        width = arch.params[f"stage{s}.width"]
        rows.append((f"stage {s}\n{width} ch, stride {stage['stride']}", boxes))
    rows.append(("", [_Box(f"conv 1×1\n{space.head} ch"), _Box("avg pool\nlinear")]))
    return rows


def _box(ax: Axes, x: float, y: float, box: _Box, fontsize: float) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(
        FancyBboxPatch(
            (x - _W / 2, y - _H / 2),
            _W,
            _H,
            boxstyle="round,pad=0.02,rounding_size=0.12",
            facecolor=box.color,
            edgecolor="#475569",
            linewidth=0.8,
        )
    )
    ax.text(x, y, box.text, ha="center", va="center", fontsize=fontsize, linespacing=1.25)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], **style: Any) -> None:
    props = {"arrowstyle": "-|>", "color": "#475569", "linewidth": 0.9, "shrinkA": 0, "shrinkB": 0, **style}
    ax.annotate("", xy=end, xytext=start, arrowprops=props)


def _draw_rows(rows: Sequence[tuple[str, Sequence[_Box]]], path: Path, title: str) -> Path:
    """Rows of boxes joined by arrows; a row's label at its left, a skip as an arc over its box."""
    wrapped: list[tuple[str, list[_Box]]] = []
    for label, boxes in rows:  # a long sequence continues on the next row
        chunk = list(boxes)
        while chunk:
            wrapped.append((label, chunk[:8]))
            label, chunk = "", chunk[8:]
    label_w = 2.0 if any(label for label, _ in wrapped) else 0.0
    longest = max(len(b) for _, b in wrapped)
    width = label_w + longest * (_W + _GAP)
    head = 0.75 if any(b.skip for b in wrapped[0][1]) else 0.15  # room for the first row's skip arcs
    height = (len(wrapped) - 1) * _PITCH + _H + 0.2 + head
    fig = figure(min(max(width * 0.78, 4.0), 12.0), min(max(height * 0.78, 1.8), 9.0))
    ax = fig.subplots()
    fontsize = 7.0
    prev: tuple[float, float] | None = None
    for r, (label, boxes) in enumerate(wrapped):
        y = -r * _PITCH
        if label:
            ax.text(label_w - 0.25, y, label, ha="right", va="center", fontsize=fontsize, color="#334155")
        for i, box in enumerate(boxes):
            x = label_w + _W / 2 + i * (_W + _GAP)
            _box(ax, x, y, box, fontsize)
            if prev is not None:
                if abs(prev[1] - y) < 1e-9:
                    _arrow(ax, (prev[0] + _W / 2, y), (x - _W / 2, y))
                else:  # from the end of one row down to the start of the next, below any skip arc
                    mid = prev[1] - _H / 2 - 0.3
                    ax.plot([prev[0], prev[0], x], [prev[1] - _H / 2, mid, mid], color="#475569", lw=0.9)
                    _arrow(ax, (x, mid), (x, y + _H / 2))
            if box.skip:
                _arrow(
                    ax,
                    (x - _W / 2 - _GAP / 2, y + _H / 2 - 0.1),
                    (x + _W / 2 + _GAP / 2, y + _H / 2 - 0.1),
                    connectionstyle="arc3,rad=-0.45",
                    color="#15803d",
                )
                ax.text(x, y + _H / 2 + 0.42, "+ skip", ha="center", fontsize=6.5, color="#15803d")
            prev = (x, y)
    ax.set_xlim(-0.4, width)
    ax.set_ylim(-(len(wrapped) - 1) * _PITCH - _H / 2 - 0.2, _H / 2 + head)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    fig.tight_layout()
    return save(fig, path)


# ---------------------------------------------------------------------- cells as graphs
_R = 0.32  # node radius


def _control(a: tuple[float, float], b: tuple[float, float], rad: float) -> tuple[float, float]:
    """The middle control point of matplotlib's ``arc3`` curve from ``a`` to ``b``."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    return (a[0] + b[0]) / 2 + rad * dy, (a[1] + b[1]) / 2 - rad * dx


def _toward(p: tuple[float, float], q: tuple[float, float], dist: float) -> tuple[float, float]:
    dx, dy = q[0] - p[0], q[1] - p[1]
    norm = (dx * dx + dy * dy) ** 0.5 or 1.0
    return p[0] + dist * dx / norm, p[1] + dist * dy / norm


def _edge(
    ax: Axes,
    a: tuple[float, float],
    b: tuple[float, float],
    op: str | None,
    rad: float,
    *,
    fontsize: float = 7.0,
    along: float = 0.5,
) -> None:
    """A directed edge between two nodes bent by ``rad`` (``arc3``), labelled with its operation.

    The ends are moved onto the node circles along the curve's tangents, so the arrow head shows.
    An edge without an operation is a thin grey connector.
    """
    label, color = EDGE_STYLE.get(op, (op, "#334155")) if op is not None else ("", "#cbd5e1")
    c = _control(a, b, rad)
    a2, b2 = _toward(a, c, _R), _toward(b, c, _R + 0.03)
    thin = op in (None, "none")
    _arrow(
        ax,
        a2,
        b2,
        connectionstyle=f"arc3,rad={rad}",
        color=color,
        linewidth=0.8 if thin else 1.4,
        linestyle="--" if op == "none" else "-",
        mutation_scale=9,
    )
    if not label:
        return
    c2 = _control(a2, b2, rad)
    t = along  # a point of the quadratic Bezier curve through a2, c2, b2
    lx = (1 - t) ** 2 * a2[0] + 2 * t * (1 - t) * c2[0] + t**2 * b2[0]
    ly = (1 - t) ** 2 * a2[1] + 2 * t * (1 - t) * c2[1] + t**2 * b2[1]
    ax.text(
        lx,
        ly,
        label,
        ha="center",
        va="center",
        fontsize=fontsize,
        color=color,
        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.9},
        zorder=5,
    )


def _node(ax: Axes, xy: tuple[float, float], text: str, color: str = "#e2e8f0") -> None:
    from matplotlib.patches import Circle

    ax.add_patch(Circle(xy, _R, facecolor=color, edgecolor="#475569", linewidth=0.9, zorder=3))
    ax.text(*xy, text, ha="center", va="center", fontsize=7.5, zorder=4)


def _finish_graph(ax: Axes, xlim: tuple[float, float], ylim: tuple[float, float], title: str) -> None:
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9, loc="left")


def _draw_nb201(arch: Architecture, path: Path, title: str) -> Path:
    ops = nb201_ops(arch.params)
    pos = {n: (2.6 * n, 0.0) for n in range(4)}
    # adjacent nodes: straight; 0->2 and 0->3 bend above, 1->3 below
    bend = {(1, 0): 0.0, (2, 1): 0.0, (3, 2): 0.0, (2, 0): -0.4, (3, 0): -0.45, (3, 1): 0.4}
    fig = figure(7.0, 3.4)
    ax = fig.subplots()
    for (to, frm), op in zip(EDGES, ops, strict=True):
        _edge(ax, pos[frm], pos[to], op, bend[(to, frm)])
    for n, xy in pos.items():
        _node(ax, xy, {0: "in", 3: "out"}.get(n, str(n)), "#f3f4f6" if n in (0, 3) else "#e2e8f0")
    _finish_graph(ax, (-0.6, 8.4), (-1.5, 2.1), title)
    fig.tight_layout()
    return save(fig, path)


def _draw_darts(space: DartsSpace, arch: Architecture, path: Path, title: str) -> Path:
    """Each cell as an arc diagram: the two inputs, the four nodes and the output on one line."""
    genotype = space.genotype(arch)
    fig = figure(9.0, 5.2)
    axes = fig.subplots(2, 1)
    pos = {n: (2.0 * n, 0.0) for n in range(6)}  # inputs c_{k-2}, c_{k-1}, then nodes 0..3
    out = (12.0, 0.0)
    names = {0: "$c_{k-2}$", 1: "$c_{k-1}$"}
    for ax, cell in zip(axes, CELLS, strict=True):
        pairs = genotype[cell]
        for node in range(2, 6):
            (op_a, src_a), (op_b, src_b) = pairs[2 * (node - 2) : 2 * (node - 2) + 2]
            # a neighbour is joined by a straight line; longer edges arc above, the second below
            above = True
            for op, src in ((op_a, src_a), (op_b, src_b)):
                if node - src == 1:
                    _edge(ax, pos[src], pos[node], op, 0.0, fontsize=6.5)
                    continue
                _edge(ax, pos[src], pos[node], op, -0.32 if above else 0.32, fontsize=6.5)
                above = not above
        for node in range(2, 6):  # the output concatenates the four nodes
            _edge(ax, pos[node], out, None, 0.0 if node == 5 else 0.22)
        for n, xy in pos.items():
            _node(ax, xy, names.get(n, str(n - 2)), "#f3f4f6" if n < 2 else "#e2e8f0")
        _node(ax, out, "$c_{k}$", "#f3f4f6")
        _finish_graph(ax, (-0.6, 12.6), (-2.2, 2.2), f"{cell} cell")
    if title:
        fig.suptitle(title, fontsize=9, x=0.02, ha="left")
    fig.tight_layout()
    return save(fig, path)
