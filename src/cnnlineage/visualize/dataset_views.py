"""What a unit responds to across a data set, and how the classes lie in feature space.

``top_images`` is Zeiler & Fergus 2014, Fig. 2 (arXiv:1311.2901): for one channel of a
layer, the data set images whose strongest activation of that channel is largest, each
with the image patch under the winning unit's receptive field (from the analyzer). Written
here with a forward hook; no library does it. ``embedding`` is a t-SNE (van der Maaten &
Hinton 2008; scikit-learn's ``TSNE`` does the work) of the penultimate features
(``forward_head(..., pre_logits=True)``) of the held-out split, coloured by class, with the
leave-one-out 5-nearest-neighbour accuracy of the 2-D map as a number to read it by.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .plotting import _plt, save, show_image
from .subject import (
    Subject,
    Visual,
    _dataset,
    _display,
    _pipeline,
    check_channel,
    default_layer,
    find_layer,
    spatial_geometry,
    unit_centre,
)

__all__ = ["embedding", "top_images"]


def _batches(subject: Subject, split: str, *, limit: int = 0, batch_size: int = 256):
    """Return (DatasetInfo, sample indices, iterator of (normalised inputs (B, C, H, W), labels)).

    ``limit`` > 0 takes that many samples evenly spaced over the split (the bundled splits
    are ordered by class, so the first N would hold only a few classes).
    """
    ds, info = _dataset(subject, split)
    tf = _pipeline(subject, info.size, info.in_chans)
    n = len(ds) if limit <= 0 else min(limit, len(ds))
    indices = np.linspace(0, len(ds) - 1, n).round().astype(int).tolist() if n < len(ds) else list(range(n))

    def batches():
        for start in range(0, n, batch_size):
            items = [ds[i] for i in indices[start : start + batch_size]]
            imgs = torch.stack([im for im, _ in items])
            yield tf(imgs).float(), torch.tensor([lab for _, lab in items])

    return info, indices, batches()


def top_images(
    subject: Subject,
    *,
    layer: str | None = None,
    channel: int = 0,
    k: int = 9,
    split: str = "all",
    limit: int = 0,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Visual:
    """Return the ``k`` images that excite a channel most (indices, activations, patches); write the figure.

    Each image is scored by the channel's largest activation over positions; its patch is
    the theoretical receptive field of that unit, cut from the model-sized input (parts
    outside the image left black).
    """
    from tqdm import tqdm

    name = layer or default_layer(subject)
    geom = spatial_geometry(subject, name, kind="top-images")
    check_channel(geom, channel)
    module = find_layer(subject.model, name)
    store: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, o: store.append(o.detach()[:, channel]))
    scores, positions, labels = [], [], []
    info, indices, batches = _batches(subject, split, limit=limit)
    total = len(indices)
    bar = tqdm(total=total, desc=f"top-images {name}[{channel}]", unit="img", disable=not progress)
    try:
        with torch.no_grad():
            for x, y in batches:
                store.clear()
                subject.model(x)
                a = store[-1].flatten(1)  # (B, h*w)
                best, where = a.max(dim=1)
                scores.append(best)
                positions.append(where)
                labels.append(y)
                bar.update(len(x))
    finally:
        bar.close()
        handle.remove()
    scores_t, pos_t, labels_t = torch.cat(scores), torch.cat(positions), torch.cat(labels)
    order = scores_t.argsort(descending=True)[:k].tolist()
    top = [indices[i] for i in order]  # sample indices in the split
    w_out = geom.output_shape[-1]
    ds, _ = _dataset(subject, split)
    tf = _pipeline(subject, info.size, info.in_chans)
    shown, patches, units = [], [], []
    rf = max(geom.square() or subject.input_size[1:])  # the patch: the unit's field (whole image if none)
    for j, i in zip(order, top):
        img = _display(tf(ds[i][0][None]).float()[0], subject)
        r, c = divmod(int(pos_t[j]), w_out)
        cy, cx = unit_centre(geom, r, c)
        patches.append(_crop(img, cy, cx, rf))
        shown.append(img)
        units.append((r, c))
    paths = []
    if out_dir is not None:
        paths.append(_top_figure(subject, name, geom, channel, top, scores_t[order], labels_t[order], shown, patches, units,
                                 split=split, total=total, rf=rf, out_dir=out_dir))  # fmt: skip
    return Visual(
        "top-images",
        {"indices": np.array(top), "activations": scores_t[order].numpy(), "patches": np.stack(patches)},
        paths,
        {"layer": name, "channel": channel, "split": split, "images_scanned": total},
    )


def _crop(img: np.ndarray, cy: float, cx: float, rf: int) -> np.ndarray:
    """Return the rf x rf window of ``img`` centred at (cy, cx), black where it leaves the image."""
    h, w = img.shape[:2]
    top, left = int(round(cy - (rf - 1) / 2)), int(round(cx - (rf - 1) / 2))
    out = np.zeros((rf, rf, *img.shape[2:]), dtype=img.dtype)
    y0, y1, x0, x1 = max(top, 0), min(top + rf, h), max(left, 0), min(left + rf, w)
    if y1 > y0 and x1 > x0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = img[y0:y1, x0:x1]
    return out


def _top_figure(subject, name, geom, channel, top, scores, labels, shown, patches, units, *, split, total, rf,
                out_dir):  # fmt: skip  # noqa: ANN001
    from .attribution import _rf_square

    plt = _plt()
    k = len(top)
    fig, axes = plt.subplots(2, k, figsize=(1.35 * k + 0.4, 3.6), squeeze=False, layout="constrained")
    for j, i in enumerate(top):
        cls = (
            subject.classes[int(labels[j])] if int(labels[j]) < len(subject.classes) else str(int(labels[j]))
        )
        show_image(axes[0, j], patches[j], title=f"#{i} ({cls})\n{float(scores[j]):.3g}")
        show_image(axes[1, j], shown[j])
        _rf_square(axes[1, j], geom, *units[j])
    axes[0, 0].set_ylabel(f"{rf}x{rf} patch", fontsize=8)
    axes[1, 0].set_ylabel("image", fontsize=8)
    fig.suptitle(f"{subject.label}: top {k} of {total} {subject.dataset} {split} images for {name}[{channel}]\n"
                 f"({geom.describe()}); title: index (class), max activation", fontsize=9)  # fmt: skip
    return save(fig, out_dir, f"top-images-{name}-ch{channel}.png")


def embedding(
    subject: Subject,
    *,
    split: str = "test",
    limit: int = 1000,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
) -> Visual:
    """Return the t-SNE 2-D map (N, 2) of penultimate features of a split, with labels; write the scatter plot."""
    from sklearn.manifold import TSNE

    head = getattr(subject.model, "forward_head", None)
    if head is None:
        raise ValueError(
            f"embedding needs a model with forward_head(pre_logits=True); {subject.name} has none"
        )
    feats, labels = [], []
    _info, _indices, batches = _batches(subject, split, limit=limit)
    with torch.no_grad():
        for x, y in batches:
            feats.append(head(subject.model.forward_features(x), pre_logits=True).flatten(1).float())
            labels.append(y)
    f, y = torch.cat(feats).numpy(), torch.cat(labels).numpy()
    if len(f) < 5:
        raise ValueError(f"embedding needs at least 5 images, the {split} split gave {len(f)}")
    perplexity = min(30.0, (len(f) - 1) / 3)
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(f)
    knn = _knn_accuracy(xy, y, k=5)
    paths = []
    if out_dir is not None:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(7.5, 6.2), layout="constrained")
        cmap = plt.get_cmap("tab10" if y.max() < 10 else "tab20")
        for c in np.unique(y):
            m = y == c
            name = subject.classes[c] if c < len(subject.classes) else str(c)
            ax.scatter(xy[m, 0], xy[m, 1], s=8, color=cmap(c % cmap.N), label=name, alpha=0.8)
        ax.legend(title="class", fontsize=8, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
        ax.set_title(f"{subject.label}: t-SNE of penultimate features ({f.shape[1]}-d), {len(f)} {subject.dataset} "
                     f"{split} images\nperplexity {perplexity:g}, seed {seed}; 5-NN accuracy in the 2-D map "
                     f"{knn:.1%}", fontsize=9)  # fmt: skip
        paths.append(save(fig, out_dir, f"embedding-{split}.png"))
    return Visual("embedding", {"tsne": xy, "labels": y, "features": f}, paths,
                  {"knn5_accuracy_2d": knn, "perplexity": perplexity, "images": len(f)})  # fmt: skip


def _knn_accuracy(xy: np.ndarray, y: np.ndarray, *, k: int) -> float:
    """Return the leave-one-out k-nearest-neighbour accuracy (majority vote) of points ``xy`` with labels ``y``."""
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :k]
    votes = y[nearest]
    pred = np.array([np.bincount(v, minlength=y.max() + 1).argmax() for v in votes])
    return float((pred == y).mean())
