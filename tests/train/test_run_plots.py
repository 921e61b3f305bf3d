"""The run plots: whole-number epochs, a one-epoch run that reads sensibly, a labelled colour bar."""

import stat

import torch

from cnnlineage.train.metrics import (
    confusion_figure,
    learning_curves_figure,
    plot_confusion,
    plot_learning_curves,
)


def _epoch(e, loss, acc):
    return {"epoch": e, "train_loss": loss, "test_loss": loss * 0.8, "train_top1": acc, "test_top1": acc + 3}


def test_epochs_are_whole_numbers():
    fig = learning_curves_figure([_epoch(e, 2.0 / e, 40 + 10 * e) for e in range(1, 4)])
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_a_one_epoch_run_has_one_tick_and_readable_ranges():
    fig = learning_curves_figure([_epoch(1, 1.5214, 48.73)])
    loss_ax, acc_ax = fig.axes
    for ax in fig.axes:
        assert list(ax.get_xticks()) == [1] and ax.get_xlim() == (0.5, 1.5)
    assert loss_ax.get_ylim()[0] == 0 and loss_ax.get_ylim()[1] > 1.5214
    lo, hi = acc_ax.get_ylim()
    assert hi - lo >= 10 and lo <= 48.73 and hi >= 51.73  # not a magnified 0.01% window


def test_confusion_colour_bar_is_labelled_and_files_are_0644(tmp_path):
    conf = torch.tensor([[5, 1], [2, 7]])
    fig = confusion_figure(conf, ["cat", "dog"])
    bar_ax = fig.axes[1]
    assert bar_ax.get_ylabel() == "test images (count)"
    assert fig.axes[0].get_xlabel() == "predicted class"
    for path in (plot_confusion(conf, ["cat", "dog"], tmp_path / "c.png"),
                 plot_learning_curves([_epoch(1, 1.0, 50.0)], tmp_path / "l.png")):  # fmt: skip
        assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044  # readable by others, not mkstemp's 0600
