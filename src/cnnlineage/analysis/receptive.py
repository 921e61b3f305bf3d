"""Receptive-field propagation through the real operator graph.

Each tensor that derives from the input carries a :class:`RF`: per spatial axis the
receptive field size ``r``, the jump ``j`` (distance in input pixels between adjacent
units, the effective stride) and ``start`` (the input coordinate of the centre of the
first unit). A k×k operator with stride s, padding p and dilation d maps
``r' = r + (k−1)·d·j``, ``j' = j·s``, ``start' = start + ((k−1)·d/2 − p)·j``.
Where branches merge (addition, multiplication, concatenation) the result is the union
of the inputs' fields, so a node's field is the largest over its input paths. Global
pooling, means over the spatial axes, attention, and fully connected layers over a
flattened map make a unit see the whole input (``is_global``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["RF"]


@dataclass(frozen=True)
class RF:
    """Receptive field of the units of one tensor, per spatial axis (height, width)."""

    r: tuple[float, float] = (1.0, 1.0)  # receptive field size in input pixels
    j: tuple[float, float] = (1.0, 1.0)  # jump: input pixels between adjacent units
    start: tuple[float, float] = (0.0, 0.0)  # input coordinate of the centre of the first unit
    is_global: bool = False  # every unit depends on the whole input (through some path)
    feat: int | None = None  # features per position once the map is flattened into a matrix
    context: bool = False  # a global summary with no local structure (after global pooling or attention)

    def window(self, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
               dilation: tuple[int, int] = (1, 1)) -> RF:  # fmt: skip
        """Return the field after a k×k window operator (convolution or pooling).

        A global field stays global; its local part (the field through convolution
        paths alone) still grows.
        """
        r = tuple(self.r[a] + (kernel[a] - 1) * dilation[a] * self.j[a] for a in range(2))
        j = tuple(self.j[a] * stride[a] for a in range(2))
        start = tuple(
            self.start[a] + ((kernel[a] - 1) * dilation[a] / 2 - padding[a]) * self.j[a] for a in range(2)
        )
        return RF(r, j, start, self.is_global, None, self.context)  # type: ignore[arg-type]

    def make_global(self, size: tuple[int, int]) -> RF:
        """Return a global summary: every unit sees the whole ``size`` input, with no local structure left."""
        return RF((float(size[0]), float(size[1])), self.j, ((size[0] - 1) / 2, (size[1] - 1) / 2), True, self.feat,
                  True)  # fmt: skip

    def flattened(self, feat: int) -> RF:
        """Return the field of a map flattened into rows of ``feat`` features per position."""
        return replace(self, feat=feat)

    @staticmethod
    def union(fields: list[RF], size: tuple[int, int]) -> RF:
        """Return the field of a unit that merges units of several branches (the union of their fields).

        A global summary merged into a map (an SE gate, an attention branch added to its
        residual) makes the result global, while its local part is the union of the
        other branches.
        """
        local = [f for f in fields if not f.context]
        if not local:
            return fields[0].make_global(size)
        is_global = any(f.is_global for f in fields)
        fields = local
        r, start = [], []
        for a in range(2):
            lo = min(f.start[a] - (f.r[a] - 1) / 2 for f in fields)
            hi = max(f.start[a] + (f.r[a] - 1) / 2 for f in fields)
            r.append(hi - lo + 1)
            start.append((lo + hi) / 2)
        j = max(fields, key=lambda f: f.r).j
        feats = {f.feat for f in fields}
        feat = feats.pop() if len(feats) == 1 else None
        return RF(tuple(r), j, tuple(start), is_global, feat)  # type: ignore[arg-type]

    def size(self) -> int | tuple[int, int]:
        """Return the field size as an int when square, else (height, width)."""
        h, w = (int(round(v)) for v in self.r)
        return h if h == w else (h, w)

    def jump(self) -> int | float | tuple[float, float]:
        """Return the jump as a number when equal on both axes, else (height, width)."""
        h, w = self.j
        v = h if h == w else (h, w)
        return int(v) if isinstance(v, float) and v.is_integer() else v

    def first(self) -> float | tuple[float, float]:
        """Return the start as a number when equal on both axes, else (height, width)."""
        h, w = self.start
        return h if h == w else (h, w)
