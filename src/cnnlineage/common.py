"""Small helpers at the bottom of the house: text tables, human-readable counts, atomic writes.

Every package may import this module; it imports nothing from cnnlineage.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = [
    "atomic_path",
    "atomic_savefig",
    "atomic_write_bytes",
    "atomic_write_text",
    "format_table",
    "human_count",
    "strip_onnx_debug_info",
]


def format_table(rows: Sequence[Sequence[object]], headers: Sequence[str], align: str | None = None) -> str:
    """Return a plain-text table; ``align`` is one character per column, 'l' or 'r'."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)

    def fmt(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(r, widths, align)).rstrip()

    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells[1:]]
    return "\n".join(lines)


def human_count(n: float) -> str:
    """Return 61706 as '61.7K', 25557032 as '25.6M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(int(n))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was, so a
    reader never sees a half-written file. The result gets the ordinary file mode ``mode``
    (``mkstemp``'s 0600 is not kept).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, mode & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_savefig(fig, path: str | os.PathLike, *, dpi: int = 120) -> Path:  # noqa: ANN001
    """Save a matplotlib figure as PNG at ``path`` atomically; return the path."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return Path(path)


def strip_onnx_debug_info(model) -> None:  # noqa: ANN001
    """Drop the per-node debugging metadata torch's ONNX exporter records (stack traces, FX names, rewrite rules).

    ``model`` is the ``onnx_ir.Model`` of a ``torch.onnx.export`` program. Inference reads none
    of it, and it is 50-100 KB on a small network, a third of an int8 file. The model-level
    ``metadata_props`` (where cnnlineage keeps class names and normalisation) are kept.
    """
    for g in (model.graph, *model.functions.values()):
        values = [*g.inputs, *g.outputs, *getattr(g, "initializers", {}).values()]
        for node in g:
            node.metadata_props.clear()
            node.doc_string = None
            values.extend(node.outputs)
        for v in values:
            v.metadata_props.clear()
