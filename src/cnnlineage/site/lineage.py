"""The lineage as data: who built on whom, and why, with a layered layout for the home page's graph.

Each :class:`Edge` names a parent and a child and says in one line what the child took
from the parent (our words; the facts come from the papers' related-work sections). An
endpoint is a registered model name or a family name (the family's first model in lineage
order stands for it), and may list alternatives separated by ``|``: the first one that is
registered wins, and an edge whose endpoint is not registered is left out. New families
with no edge still appear in the graph, as nodes of their own.

The layout is a small Sugiyama-style layering done here (no graph library needed): rows
run down the years, a same-year edge pushes its child one row lower, and nodes in a row
sit near the mean position of their parents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["EDGES", "Edge", "GraphLayout", "LaidNode", "ResolvedEdge", "layout", "resolve_edges"]


@dataclass(frozen=True)
class Edge:
    """One influence: ``child`` took something from ``parent``; ``reason`` says what."""

    parent: str  # model or family name; "a|b" tries a, then b
    child: str
    reason: str


EDGES: tuple[Edge, ...] = (
    # parent, child, what the child took from the parent
    Edge("perceptron", "mlp", "Hidden layers trained by back-propagation learn what a single threshold unit cannot (XOR)."),
    Edge("mlp", "lenet1|lenet5", "Local receptive fields and shared weights replace full connections, so the net learns image features."),
    Edge("lenet1", "lenet4", "More feature maps and a hidden fully connected layer on a larger 32x32 input."),
    Edge("lenet4|lenet1", "lenet5", "LeNet-1 and LeNet-4 were the earlier steps of the same convolution-subsampling design."),
    Edge("lenet5", "alexnet", "The same convolution-pooling-classifier recipe, scaled up with ReLU, dropout, GPUs and ImageNet."),
    Edge("alexnet", "zfnet", "Deconvnet views of AlexNet's features led to a 7x7 stride-2 first layer and a denser second layer."),
    Edge("zfnet", "vgg16", "Smaller first-layer filters and strides pushed to the limit: only 3x3 convolutions, depth as the variable."),
    Edge("alexnet", "nin", "The linear filter of a convolution becomes a small MLP (1x1 convolutions); global average pooling replaces the FC layers."),
    Edge("nin", "googlenet", "1x1 convolutions reduce channels before the expensive 3x3/5x5 branches; global average pooling at the end."),
    Edge("googlenet", "inception_v3", "Inception modules refined: factorised nxn convolutions, parallel grid reduction, BatchNorm."),
    Edge("inception_v3", "xception", "Inception taken to the extreme: fully separate spatial and cross-channel convolutions (depthwise separable)."),
    Edge("resnet50", "xception", "Residual connections around every module of the separable stack."),
    Edge("xception", "mobilenet_v1", "Depthwise separable convolutions as the whole network, with width and resolution multipliers for phones."),
    Edge("mobilenet_v1", "mobilenet_v2", "Separable convolutions inside inverted residual blocks with a linear bottleneck."),
    Edge("mobilenet_v1", "shufflenet_v1_g3", "Depthwise convolutions kept; the costly 1x1s become group convolutions mixed by a channel shuffle."),
    Edge("resnext50_32x4d", "shufflenet_v1_g3", "Grouped convolutions in bottleneck units, made cheap enough for mobile budgets."),
    Edge("shufflenet_v1_g3", "shufflenet_v2_x1_0", "Measured speed, not FLOPs: channel split replaces group convolutions, equal widths, fewer memory accesses."),
    Edge("mobilenet_v2", "mobilenet_v3_large", "The inverted residual block, searched by NAS and given squeeze-excitation and h-swish."),
    Edge("mobilenet_v2", "efficientnet_b0", "The MBConv (inverted residual) block, with squeeze-excitation, as the searched base network."),
    Edge("mobilenet_v2", "mnasnet1_0|mnasnet", "Inverted residual blocks as the search space of a latency-aware architecture search."),
    Edge("mnasnet1_0|mnasnet", "efficientnet_b0", "EfficientNet-B0 comes from the MnasNet search space, then scales by one compound coefficient."),
    Edge("efficientnet_b0", "efficientnet_v2_s|efficientnetv2", "Fused-MBConv in the early stages and progressive learning, found with training speed in the objective."),
    Edge("seresnet50", "efficientnet_b0", "Squeeze-and-excitation inside every MBConv block."),
    Edge("highway_cnn", "resnet50", "A carry path across layers, made parameter-free: an identity shortcut with no gate."),
    Edge("vgg16", "resnet50", "The plain baseline and the 3x3 design rules come from VGG; shortcuts make the deep version train."),
    Edge("plain20", "resnet20", "The same CIFAR network with identity shortcuts: the deeper plain nets' degradation disappears."),
    Edge("resnet50", "resnet20", "The same identity shortcuts at CIFAR scale (same paper, section 4.2)."),
    Edge("resnet50", "preact_resnet50", "BN and ReLU move before each convolution, leaving the identity path clean from end to end."),
    Edge("preact_resnet50", "wrn_28_10", "Pre-activation blocks made shallower and much wider: width instead of depth."),
    Edge("resnet50", "resnext50_32x4d", "The bottleneck's 3x3 becomes a grouped convolution: cardinality as a new dimension."),
    Edge("googlenet", "resnext50_32x4d", "Inception's split-transform-merge, with identical branches so it is one grouped convolution."),
    Edge("resnet50", "seresnet50", "Each bottleneck's output is reweighted per channel by a gate computed from global pooling."),
    Edge("seresnet50", "ecaresnet50", "The SE gate without its dimension reduction: a 1-D convolution across pooled channels."),
    Edge("resnext50_32x4d", "resnest50", "Cardinal groups split further into radix branches combined by a softmax (split) attention."),
    Edge("seresnet50", "resnest50", "Channel attention from globally pooled features, applied across splits."),
    Edge("resnet50", "densenet121", "Shortcuts again, but concatenated instead of added: each layer sees all earlier feature maps."),
    Edge("resnext50_32x4d", "regnet_x_1_6gf", "RegNetX's block is ResNeXt's grouped bottleneck; widths and depths come from a fitted linear rule."),
    Edge("resnext50_32x4d", "anynet", "AnyNet's stages are stacks of ResNeXt-style grouped bottlenecks with free depth, width, ratio and groups."),
    Edge("anynet", "regnet_x_1_6gf", "RegNet is the AnyNet space narrowed step by step to the region where good networks lie: widths on a quantised line."),
    Edge("xception", "darts_v2|darts", "The searched cell chooses among separable and dilated separable convolutions, pooling and identity."),
    Edge("resnet50", "darts_v2|darts", "Cells are stacked with skip connections as candidate operations; the network is searched rather than designed."),
    Edge("regnet_x_1_6gf", "regnet_y_1_6gf", "The same design space with a squeeze-excitation gate in every block."),
    Edge("regnet_y_1_6gf", "convnext_tiny", "Stage compute ratios revisited, as RegNet's design-space study had; RegNetY is ConvNeXt's main convnet baseline."),
    Edge("resnext50_32x4d", "convnext_tiny", "ResNeXt-ify: depthwise convolution as grouping taken to one channel per group, with the width raised."),
    Edge("mobilenet_v2", "convnext_tiny", "The inverted bottleneck: a 4x wider middle layer."),
    Edge("vit_b_16", "convnext_tiny", "A patchify stem, LayerNorm, GELU and fewer normalisation layers, borrowed from vision Transformers."),
    Edge("vit_b_16", "deit_tiny_distilled|deit_tiny_patch16_224|deit", "The same ViT trained on ImageNet alone, with a distillation token learning from a convnet teacher."),
    Edge("vit_b_16", "swin_t|swin", "Attention restricted to shifted local windows with a feature pyramid, so cost grows linearly with image size."),
    Edge("swin_t|swin", "convnext_tiny", "Swin's stage ratios, large kernels and training recipe as the targets ConvNeXt modernised towards."),
    Edge("mobilenet_v2", "mobilevit_xs|mobilevit", "MobileNetV2 blocks, with Transformer blocks that treat local patches as tokens."),
    Edge("vit_b_16", "mobilevit_xs|mobilevit", "Global self-attention as a layer inside a mobile convnet."),
    Edge("alexnet", "squeezenet1_0|squeezenet", "AlexNet-level ImageNet accuracy with 50x fewer parameters: fire modules of 1x1 squeeze and 1x1/3x3 expand."),
    Edge("inception_v3", "inception_v4", "A cleaner, uniform Inception with more modules per stage."),
    Edge("inception_v3", "inception_resnet_v2", "Inception modules with residual connections around them."),
)  # fmt: skip


@dataclass(frozen=True)
class ResolvedEdge:
    """An edge between two registered models."""

    parent: str
    child: str
    reason: str


def _resolve(
    endpoint: str, shown: set[str], registered: set[str], family_first: dict[str, str]
) -> str | None:
    for alt in endpoint.split("|"):
        if alt in registered:  # a model name: shown, or left out of this (partial) site
            return alt if alt in shown else None
        if alt in family_first:
            return family_first[alt]
    return None


def resolve_edges(
    names: Sequence[str],
    cards: dict,
    edges: Sequence[Edge] = EDGES,
    *,
    registered: Sequence[str] | None = None,
) -> tuple[list[ResolvedEdge], list[Edge]]:
    """Return (edges between the models ``names``, edges left out because an endpoint is not registered at all).

    ``cards`` maps each name to its card (anything with ``family`` and ``year``); ``names``
    are in lineage order, so a family stands for its first model. ``registered`` is every
    registered name (default ``names``): an endpoint naming a registered model that is not
    among ``names`` drops its edge quietly, and never falls back to the family.
    """
    family_first: dict[str, str] = {}
    for n in names:
        family_first.setdefault(getattr(cards[n], "family", n), n)
    shown = set(names)
    known = set(registered) if registered is not None else shown
    out: list[ResolvedEdge] = []
    skipped: list[Edge] = []
    seen = set()
    for e in edges:
        p = _resolve(e.parent, shown, known, family_first)
        c = _resolve(e.child, shown, known, family_first)
        if p is None or c is None or p == c or (p, c) in seen:
            unknown = [
                x
                for x in (e.parent, e.child)
                if not any(a in known or a in family_first for a in x.split("|"))
            ]
            if unknown:
                skipped.append(e)
            continue
        seen.add((p, c))
        out.append(ResolvedEdge(p, c, e.reason))
    return out, skipped


@dataclass(frozen=True)
class LaidNode:
    """A node of the laid-out graph: its model, year, row and centre."""

    name: str
    year: int
    row: int
    x: float
    y: float


@dataclass(frozen=True)
class GraphLayout:
    """Positions for the home page's SVG: nodes, edges, year bands (year, first row, last row) and the canvas size."""

    nodes: list[LaidNode]
    edges: list[ResolvedEdge]
    years: list[tuple[int, int, int]]
    width: float
    height: float
    node_w: float
    node_h: float
    row_h: float
    left: float


def layout(
    names: Sequence[str],
    cards: dict,
    edges: Sequence[ResolvedEdge],
    *,
    node_w: float | None = None,
    node_h: float = 30.0,
    gap: float = 14.0,
    row_h: float = 64.0,
    left: float = 64.0,
) -> GraphLayout:
    """Return the layered layout of the lineage graph: every edge endpoint plus one node per family without edges."""
    nodes = []
    for e in edges:
        nodes += [e.parent, e.child]
    covered = {getattr(cards[n], "family", n) for n in nodes}
    for n in names:  # a family no edge reaches still gets a node
        fam = getattr(cards[n], "family", n)
        if fam not in covered:
            covered.add(fam)
            nodes.append(n)
    nodes = list(dict.fromkeys(nodes))
    if node_w is None:  # wide enough for the longest name at 12.5px bold
        node_w = max(110.0, 7.8 * max((len(n) for n in nodes), default=8) + 18)
    order = {n: i for i, n in enumerate(names)}
    year = {n: int(getattr(cards[n], "year", 0) or 0) for n in nodes}
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        parents[e.child].append(e.parent)

    # rows: each year starts below the previous year's last row; a same-year parent pushes its child down
    row: dict[str, int] = {}
    years: list[tuple[int, int, int]] = []
    next_row = 0
    for y in sorted(set(year.values())):
        members = sorted((n for n in nodes if year[n] == y), key=lambda n: order.get(n, 0))
        pending = list(members)
        while pending:  # same-year edges form a DAG; place a node once its same-year parents are placed
            placed_any = False
            for n in list(pending):
                same = [p for p in parents[n] if year[p] == y]
                if all(p in row for p in same):
                    row[n] = max([next_row] + [row[p] + 1 for p in same])
                    pending.remove(n)
                    placed_any = True
            if not placed_any:  # a cycle would be a data error; place the rest flat
                for n in pending:
                    row[n] = next_row
                pending = []
        last = max(row[n] for n in members)
        years.append((y, next_row, last))
        next_row = last + 1

    # x: a downward sweep puts nodes near the mean x of their parents, then sweeps that also weigh the
    # children pull long edges straight (the barycentre heuristic of layered graph drawing)
    slot = node_w + gap
    children: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        children[e.parent].append(e.child)
    per_row: dict[int, list[str]] = {}
    for n in nodes:
        per_row.setdefault(row[n], []).append(n)
    width_slots = max(6, max((len(v) for v in per_row.values()), default=1))
    inner = width_slots * slot
    x: dict[str, float] = {}

    def place(members: list[str], want: dict[str, float]) -> None:
        members.sort(key=lambda n: (want[n], order.get(n, 0)))
        pos: list[float] = []
        for n in members:
            pos.append(max(want[n], pos[-1] + slot if pos else slot / 2))
        # pushing right only would drift the row right: centre it on what its members want
        shift = sum(want[n] - p for n, p in zip(members, pos)) / len(members)
        shift = max(shift, slot / 2 - pos[0])
        pos = [p + shift for p in pos]
        overflow = pos[-1] - (inner - slot / 2)
        if overflow > 0:  # shift left, keeping the spacing
            pos = [max(p - overflow, slot / 2 + i * slot) for i, p in enumerate(pos)]
        x.update(zip(members, pos))

    for r in sorted(per_row):
        members = per_row[r]
        want = {}
        for i, n in enumerate(members):
            px = [x[p] for p in parents[n] if p in x]
            want[n] = sum(px) / len(px) if px else (i + 0.5) * inner / len(members)
        place(members, want)
    for rows_order in (sorted(per_row, reverse=True), sorted(per_row)) * 3:
        for r in rows_order:
            members = per_row[r]
            want = {}
            for n in members:
                nb = [x[m] for m in parents[n] + children[n]]
                want[n] = (x[n] + sum(nb)) / (1 + len(nb))
            place(members, want)
    lo, hi = min(x.values(), default=0.0), max(x.values(), default=0.0)  # trim the canvas to the nodes
    shift = left + 8 + node_w / 2 - lo
    laid = [LaidNode(n, year[n], row[n], x[n] + shift, 24 + row[n] * row_h + node_h / 2) for n in nodes]
    return GraphLayout(
        nodes=laid, edges=list(edges), years=years, width=hi - lo + node_w + left + 24, height=24 + next_row * row_h,
        node_w=node_w, node_h=node_h, row_h=row_h, left=left,
    )  # fmt: skip
