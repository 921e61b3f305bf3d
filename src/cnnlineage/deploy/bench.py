"""Time inference and training steps of a model on each backend, against the machine's measured GEMM peak.

For every (model, backend, batch): warm-up, then ``reps`` timed repetitions; the row holds
median and 90th-percentile latency, images/s, achieved GFLOP/s (the analyzer's FLOPs of that
model at that input divided by the median time), its fraction of the GEMM peak measured in
the same process, and the peak resident memory of the run. A training step (forward,
loss, backward, SGD step) counts 3x the forward FLOPs: the backward pass computes gradients
for inputs and for weights, each about one forward pass (Kaplan et al. 2020, §2.1).

The backends of one (model, mode, batch) are timed together, interleaved repetition by
repetition (the order reversed every other repetition), so a load that comes and goes on the
machine hits them all alike: ``speedup`` is the median of the paired ratios first backend's
time / this backend's time (> 1: faster than the first backend named, ``speedup_vs``).
``vs="torchvision"`` adds torchvision's model of the same architecture on each backend to
the same interleaving, holding our model's weights (so both compute on the same numbers);
``ratio`` is the median of the paired ratios torchvision time / our time, so > 1 means
ours is faster and machine noise hits both. ``ratio_low`` and
``ratio_high`` bound that median with at least 95 % confidence, distribution-free (the
order statistics of the paired ratios whose binomial tail is at most 2.5 % on each side;
6 pairs at least): ours is slower only where ``ratio_high`` < 1, and faster only where
``ratio_low`` > 1. ``paired_ratios`` keeps every pair, so an interval at another level (one
for a whole table of rows, say) can be computed later. Peak resident memory is the
process's while that group ran.

An int8 directory from ``cnnlineage quantize`` is timed on its own runtime (PT2E: inductor,
``compile``, or the saved graph as it is, ``eager``; ONNX Runtime int8: ``onnxruntime``); its
GFLOP/s counts the fp32 architecture's operations, and it has no fraction of the fp32 GEMM
peak (int8 kernels have another roof).
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .backends import BACKENDS, choose_backend, prepare

__all__ = [
    "MAX_REPS",
    "BenchRow",
    "bench",
    "check_options",
    "median_ci",
    "peak_rss_mb",
    "peak_rss_reset",
    "plot_latency",
    "rows_to_csv",
]

MAX_REPS = 10_000
CSV_LEFT_OUT = ("paired_ratios",)  # lists: in the JSON only
TRAIN_FLOPS_FACTOR = 3  # forward + backward (inputs and weights)


@dataclass
class BenchRow:
    """One timed configuration."""

    model: str
    backend: str
    mode: str  # "infer" or "train"
    batch: int
    input: str  # CxHxW
    reps: int
    median_ms: float
    p90_ms: float
    images_per_s: float
    gflop_per_image: float  # analyzer FLOPs per image (x3 for a training step)
    gflop_per_s: float
    peak_fraction: float | None  # of the fp32 GEMM peak measured in this run (None without --peak)
    peak_rss_mb: float  # peak resident memory of the process during this configuration
    baseline: str | None = None  # "torchvision" when timed against it
    baseline_median_ms: float | None = None
    ratio: float | None = None  # median paired (baseline time / our time); > 1: ours is faster
    speedup_vs: str | None = None  # the first backend of this model, mode and batch (None: it is the first)
    speedup: float | None = None  # median paired (speedup_vs time / this time), timed interleaved
    clock: str = "wall"  # "wall" (latency) or "cpu" (CPU seconds of the process)
    ratio_low: float | None = (
        None  # >= 95 % confidence bounds of the median paired ratio (None under 6 pairs)
    )
    ratio_high: float | None = None
    paired_ratios: list[float] | None = None  # every paired ratio, in order (JSON only), for other intervals

    def to_dict(self) -> dict[str, Any]:
        """Return the row as a plain dict."""
        return asdict(self)


def median_ci(values: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """Return a distribution-free confidence interval of the median of ``values``, or None if too few.

    The interval is (x_(k), x_(n+1-k)) of the sorted values with the largest k whose binomial
    tail P(Bin(n, 1/2) < k) is at most (1 - level) / 2, so its coverage is at least ``level``
    whatever the distribution (n = 10: the 2nd and 9th values, 97.9 %). Under 6 values no
    such k exists at 95 % and None is returned.
    """
    n, alpha = len(values), (1 - level) / 2
    tail, k = 0.0, 0
    while k < n and tail + math.comb(n, k) / 2**n <= alpha:
        tail += math.comb(n, k) / 2**n
        k += 1
    if k == 0:
        return None
    xs = sorted(values)
    return xs[k - 1], xs[n - k]


def check_clock(clock: str) -> None:
    """Raise ValueError unless ``clock`` is "wall", or "cpu" with one PyTorch thread.

    The CPU clock is the process's CPU time: on several threads it also counts ONNX Runtime's
    pool threads spinning while another backend runs, and it lags for threads still running
    on other cores, so short runs are under-counted and GEMM peaks come out too high.
    """
    if clock not in ("wall", "cpu"):
        raise ValueError(f"--clock must be wall or cpu, got {clock!r}")
    if clock == "cpu" and torch.get_num_threads() != 1:
        raise ValueError(
            f"--clock cpu needs --threads 1 (this run has {torch.get_num_threads()}): on several threads "
            "the process's CPU time also counts idle runtime threads and under-counts short runs; "
            "use --threads 1 with --clock cpu, or --clock wall on a quiet machine"
        )


def peak_rss_reset() -> None:
    """Reset the kernel's peak-RSS counter of this process (Linux), so the next reading covers one run."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """Return the process's peak resident memory in MB since the last reset (VmHWM; ru_maxrss elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1e6 if sys.platform == "darwin" else rss / 1024


def _percentile(ts: list[float], q: float) -> float:
    s = sorted(ts)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _forward_gflop(model: nn.Module, input_size: list[int]) -> float:
    from ..analysis import profile
    from .int8 import Int8Model

    if isinstance(model, Int8Model):  # the operations of the architecture it was quantized from
        return profile(model.float_twin(), tuple(input_size), device="meta").total_flops / 1e9
    try:
        p = profile(copy.deepcopy(model), tuple(input_size), device="meta")
    except Exception:  # noqa: BLE001 - a model that needs real tensors
        p = profile(copy.deepcopy(model), tuple(input_size))
    return p.total_flops / 1e9


def _step_fn(model: nn.Module, backend: str, *, mode: str, input_size, batch: int, meta: dict):
    """Return a no-argument callable running one inference or one training step."""
    x = torch.randn(batch, *input_size)
    if mode == "infer":
        if meta.get("int8"):
            from .int8 import Int8Model

            run = Int8Model(meta["source"], backend=backend)
        else:
            run = prepare(model, backend, input_size=input_size, batch=batch, meta=meta)

        def infer() -> None:
            with torch.inference_mode():
                run(x)

        return infer
    from ..train.engine import classification_loss

    if backend not in ("eager", "channels_last", "compile"):
        raise ValueError(f"--train runs on eager, channels_last or compile, not {backend}")
    model.train()
    if backend == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    fwd = torch.compile(model) if backend == "compile" else model
    y = torch.randint(0, max(1, getattr(model, "num_classes", 1000) or 1000), (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        classification_loss(fwd(x), y).backward()
        opt.step()

    return train_step


def _torchvision_twin(model: nn.Module) -> nn.Module:
    card = getattr(model, "card", None)
    if card is None or not card.torchvision:
        name = getattr(model, "model_name", type(model).__name__)
        raise ValueError(
            f"{name} has no torchvision twin; --vs torchvision needs one (see `cnnlineage info`)"
        )
    import torchvision

    kwargs: dict[str, Any] = {"weights": None, "num_classes": model.num_classes}
    if card.torchvision in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=True, init_weights=False)
    twin = torchvision.models.get_model(card.torchvision, **kwargs)
    _load_our_weights(twin, model)
    return twin


def _load_our_weights(twin: nn.Module, model: nn.Module) -> bool:
    """Copy ``model``'s weights into its torchvision twin; return False (twin left as built) where they do not fit.

    With the same numbers in both, the timing compares layout and code alone: two random
    initialisations differ in the magnitudes their activations reach, and a kernel's speed
    can depend on the values (denormals, for one). Module names are torchvision's except in
    families with ``remap_torchvision``, whose renames map one key to one key.
    """
    ours, theirs = model.state_dict(), twin.state_dict()
    if set(ours) != set(theirs):
        remap = getattr(model, "remap_torchvision", None)
        if remap is None:
            return False
        names = {}
        for key, value in theirs.items():
            renamed = list(remap({key: value}))
            if len(renamed) != 1 or renamed[0] not in ours:
                return False
            names[key] = renamed[0]
        ours = {key: ours[names[key]] for key in theirs}
    if any(tuple(ours[k].shape) != tuple(v.shape) for k, v in theirs.items()):
        return False  # e.g. a one-channel model against torchvision's three-channel stem
    with torch.no_grad():  # in place: the state_dict's tensors are the twin's own
        for key, value in theirs.items():
            value.copy_(ours[key])
    return True


def bench(
    sources: list[tuple[nn.Module, dict]],
    *,
    batches: list[int],
    backends: list[str] | None,
    input_size: list[int] | None = None,
    train: bool = False,
    reps: int = 20,
    warmup: int = 3,
    vs: str | None = None,
    peak_gflops: float | None = None,
    progress: bool = True,
    clock: str = "wall",
) -> list[BenchRow]:
    """Return one :class:`BenchRow` per (model, backend, batch); ``sources`` come from ``load_source``.

    ``backends`` None: eager for models, its own runtime for an int8 directory. ``train``
    times training steps instead of inference. ``clock="cpu"`` times the CPU
    seconds of this process (all its threads) instead of wall time: on a machine that other
    jobs share, time spent waiting for a core is then not counted.
    """
    check_options(sources, batches=batches, backends=backends, reps=reps, warmup=warmup, vs=vs, train=train)
    check_clock(clock)
    timer = time.perf_counter if clock == "wall" else time.process_time
    from tqdm import tqdm

    modes = ["train"] if train else ["infer"]
    groups = [
        (m, meta, mode, n, [_resolve(meta, b) for b in backends or [None]])
        for m, meta in sources
        for mode in modes
        for n in batches
    ]
    per = (warmup + reps) * (2 if vs else 1)
    bar = tqdm(
        total=sum(len(g[4]) for g in groups) * per,
        disable=not progress,
        unit="step",
        desc="bench",
        leave=False,
    )
    rows = []
    flops: dict[tuple[str, str], float] = {}
    try:
        for model, meta, mode, batch, names in groups:
            size = list(input_size or meta["input_size"])
            name = meta["model_name"]
            key = (name, "x".join(map(str, size)))
            if key not in flops:
                flops[key] = _forward_gflop(model, size)
            if mode == "train":  # inference-only backends have no training step
                bar.update(per * sum(b in ("auto", "onnxruntime") for b in names))
                names = [b for b in names if b not in ("auto", "onnxruntime")]
            if not names:
                continue
            bar.set_postfix_str(f"{name} {mode} b{batch} {','.join(names)}")
            peak_rss_reset()
            labels, fns = [], []
            for backend in names:
                label = backend
                if meta.get("int8"):  # e.g. "int8 pt2e:compile", "int8 onnxruntime"
                    method = meta["int8"]["method"]
                    label = f"int8 {method}" if backend == method else f"int8 {method}:{backend}"
                elif backend == "auto":
                    chosen = choose_backend(model, input_size=size, batch=batch, meta=meta, verbose=False)
                    label = f"auto:{chosen}"
                own = (
                    model if meta.get("int8") else copy.deepcopy(model)
                )  # (an int8 runner is rebuilt from its file)
                labels.append(label)
                fns.append(_step_fn(own, backend, mode=mode, input_size=size, batch=batch, meta=meta))
                if vs:
                    twin = _torchvision_twin(model)
                    fns.append(_step_fn(twin, backend, mode=mode, input_size=size, batch=batch, meta=meta))
            times = _interleaved(fns, reps=reps, warmup=warmup, bar=bar, timer=timer)
            rss = peak_rss_mb()
            stride = 2 if vs else 1
            first = times[0]
            gflop = flops[key] * (TRAIN_FLOPS_FACTOR if mode == "train" else 1)
            for k, label in enumerate(labels):
                ours = times[stride * k]
                med = statistics.median(ours)
                rate = gflop * batch / med
                row = BenchRow(
                    model=name, backend=label, mode=mode, batch=batch, input=key[1], reps=reps,
                    median_ms=med * 1e3, p90_ms=_percentile(ours, 0.9) * 1e3, images_per_s=batch / med,
                    gflop_per_image=gflop, gflop_per_s=rate,
                    peak_fraction=rate / peak_gflops if peak_gflops and not meta.get("int8") else None,
                    peak_rss_mb=rss, clock=clock,
                )  # fmt: skip
                if k:
                    row.speedup_vs = labels[0]
                    row.speedup = statistics.median(a / b for a, b in zip(first, ours))
                if vs:
                    tv = times[stride * k + 1]
                    row.baseline = vs
                    row.baseline_median_ms = statistics.median(tv) * 1e3
                    paired = [b / a for a, b in zip(ours, tv)]
                    row.ratio = statistics.median(paired)
                    row.paired_ratios = paired
                    ci = median_ci(paired)
                    if ci:
                        row.ratio_low, row.ratio_high = ci
                rows.append(row)
    finally:
        bar.close()
    return rows


def _interleaved(fns: list, *, reps: int, warmup: int, bar, timer=time.perf_counter) -> list[list[float]]:  # noqa: ANN001
    # Alternate which runs first each repetition, so neither always follows the other's cache state.
    for _ in range(warmup):
        for f in fns:
            f()
            bar.update(1)
    times: list[list[float]] = [[] for _ in fns]
    for i in range(reps):
        order = range(len(fns)) if i % 2 == 0 else reversed(range(len(fns)))
        for j in order:
            t = timer()
            fns[j]()
            times[j].append(timer() - t)
            bar.update(1)
    return times


def _resolve(meta: dict, backend: str | None) -> str:
    """Return the backend a source runs on for ``backend`` (None: eager, or an int8 program's own runtime)."""
    if meta.get("int8"):
        from .int8 import int8_backend

        return int8_backend(meta["source"], meta["int8"]["method"], backend)
    return backend or "eager"


def check_options(
    sources: list[tuple[nn.Module, dict]],
    *,
    batches: list[int],
    backends: list[str] | None,
    reps: int,
    warmup: int = 3,
    vs: str | None = None,
    train: bool = False,
) -> None:
    """Raise ValueError, before anything is measured, for options :func:`bench` cannot run."""
    _validate(batches=batches, backends=backends or [], reps=reps, warmup=warmup, vs=vs, train=train)
    _validate_int8(sources, backends=backends, vs=vs, train=train)


def _validate_int8(sources: list, *, backends: list[str] | None, vs: str | None, train: bool) -> None:
    for _, meta in sources:
        if not meta.get("int8"):
            continue
        if train:
            raise ValueError(
                f"{meta['source']} is an int8 model for inference only; --train does not apply to it"
            )
        if vs:
            raise ValueError(
                f"{meta['source']} is an int8 model: --vs {vs} compares fp32 architectures; "
                "compare int8 with fp32 in `cnnlineage compress-report`"
            )
        for b in backends or [None]:
            _resolve(meta, b)  # ValueError, before anything is timed, for a backend it cannot run on


def _validate(*, batches, backends, reps, warmup, vs, train) -> None:  # noqa: ANN001
    for b in batches:
        if not isinstance(b, int) or not 1 <= b <= 65536:
            raise ValueError(
                f"--batch must be positive integers (at most 65536), got {b!r}; e.g. --batch 1,32"
            )
    if not isinstance(reps, int) or not 1 <= reps <= MAX_REPS:
        raise ValueError(f"--reps must be between 1 and {MAX_REPS:,}, got {reps!r}; 20 to 100 is usual")
    if not isinstance(warmup, int) or not 0 <= warmup <= MAX_REPS:
        raise ValueError(f"--warmup must be between 0 and {MAX_REPS:,}, got {warmup!r}")
    for b in backends:
        if b not in (*BACKENDS, "auto"):
            raise ValueError(f"--backend must be among {', '.join((*BACKENDS, 'auto'))}, got {b!r}")
    if vs not in (None, "torchvision"):
        raise ValueError(f"--vs must be torchvision, got {vs!r}")
    if train and backends and all(b in ("onnxruntime", "auto") for b in backends):
        raise ValueError(
            "--train needs an eager, channels_last or compile backend; onnxruntime runs inference only"
        )


def rows_to_csv(rows: list[BenchRow]) -> str:
    """Return the rows as CSV text with a header."""
    import csv
    import io

    buf = io.StringIO()
    fields = [f for f in BenchRow.__dataclass_fields__ if f not in CSV_LEFT_OUT]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r.to_dict())
    return buf.getvalue()


def plot_latency(rows: list[BenchRow], path: str | Path) -> Path:
    """Write a bar chart of median latency (p90 as whisker) per backend, grouped by model/mode/batch; return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..common import atomic_savefig

    groups = list(dict.fromkeys(f"{r.model}\n{r.mode} b{r.batch}" for r in rows))
    backends = list(dict.fromkeys(r.backend for r in rows))
    width = 0.8 / max(1, len(backends))
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(groups) * max(1, len(backends)) ** 0.5), 3.8))
    for k, b in enumerate(backends):
        xs, med, err = [], [], []
        for r in rows:
            if r.backend == b:
                xs.append(
                    groups.index(f"{r.model}\n{r.mode} b{r.batch}") + (k - (len(backends) - 1) / 2) * width
                )
                med.append(r.median_ms)
                err.append(r.p90_ms - r.median_ms)
        ax.bar(xs, med, width, yerr=[[0] * len(err), err], capsize=2, label=b)
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_ylabel("latency, ms (median; whisker: p90)")
    ax.set_yscale("log")
    ax.legend(fontsize=8, ncol=min(4, len(backends)))
    ax.set_title(
        f"cnnlineage bench: {torch.get_num_threads()} threads, torch {torch.__version__}", fontsize=9
    )
    fig.tight_layout()
    try:
        return atomic_savefig(fig, path)
    finally:
        plt.close(fig)
