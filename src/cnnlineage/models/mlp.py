"""Before convolution: the perceptron and the multilayer perceptron.

``perceptron`` — Rosenblatt, "The Perceptron: A Probabilistic Model for Information Storage
and Organization in the Brain", Psychological Review 65(6), 1958. A layer of linear
threshold units on the raw input, ŷ = step(w·x + b), trained without gradients by the
perceptron rule w ← w + η (y − ŷ) x: a unit changes only when it is wrong, and the rule
converges whenever the classes are linearly separable (Novikoff 1962). Multi-class: one
unit per class, each a one-vs-rest perceptron; the predicted class is the largest net
input. Rosenblatt's Mark I had a 20×20 "retina"; the default here takes 1×28×28 digits.

``mlp`` — the multilayer perceptron trained by back-propagation (Rumelhart, Hinton &
Williams, "Learning representations by back-propagating errors", Nature 323, 1986). The
default is the 300-100 network of LeCun et al. 1998's MNIST baselines ("3-layer NN, 300+100
hidden units", 3.05% test error), with tanh hidden units.

Both flatten their input, so only the default size works (``fixed_size=True``); choose
another with ``img_size`` / ``in_chans``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from ..registry import register_model
from ._base import LineageModel

__all__ = ["Perceptron", "MLP"]


class Perceptron(LineageModel):
    """A single layer of linear threshold units on the flattened input (Rosenblatt 1958).

    ``forward`` returns the net inputs w·x + b (the logits, so the model also trains with
    cross-entropy like any other); ``predict_units`` the units' binary outputs
    step(w·x + b); ``rosenblatt_update`` applies the perceptron learning rule.
    ``num_classes == 1`` is the classic single unit for a two-class problem (y ∈ {0, 1}).
    """

    def __init__(self, *, num_classes: int = 10, in_chans: int = 1, img_size: int = 28) -> None:
        super().__init__(
            in_chans=in_chans,
            num_classes=num_classes,
            input_size=(in_chans, img_size, img_size),
            fixed_size=True,
        )
        self.num_features = in_chans * img_size * img_size
        self.flatten = nn.Flatten(1)
        self.fc = self._make_fc(num_classes)
        self.feature_info = [dict(module="flatten", num_chs=self.num_features, reduction=1)]

    def _make_fc(self, num_classes: int) -> nn.Module:
        if num_classes == 0:
            return nn.Identity()
        fc = nn.Linear(self.num_features, num_classes)
        nn.init.zeros_(fc.weight)  # the rule starts from zero weights; any start converges on separable data
        nn.init.zeros_(fc.bias)
        return fc

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(x)  # (B, C·H·W)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = self._make_fc(num_classes)

    def predict_units(self, x: torch.Tensor) -> torch.Tensor:
        """Return the threshold units' outputs ŷ = 1[w·x + b > 0], shape (B, num_classes)."""
        return (self(x) > 0).to(x.dtype)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Return class predictions (B,): the unit with the largest net input (the unit's ŷ if only one)."""
        scores = self(x)
        return (scores[:, 0] > 0).long() if self.num_classes == 1 else scores.argmax(1)

    def _targets(self, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if self.num_classes == 1:
            return y.reshape(-1, 1).to(dtype)  # (B, 1), y ∈ {0, 1}
        return nn.functional.one_hot(y.long(), self.num_classes).to(dtype)  # (B, K), one-vs-rest targets

    @torch.no_grad()
    def rosenblatt_update(self, x: torch.Tensor, y: torch.Tensor, lr: float = 1.0) -> int:
        """Apply the perceptron rule w += lr·(y − ŷ)·x, b += lr·(y − ŷ) sample by sample; return the mistakes.

        ``y`` holds class indices (B,) (0/1 labels when ``num_classes == 1``). Samples are
        taken one at a time, in order, as the rule is defined (online learning); a sample
        counts as a mistake when any unit's output is wrong.
        """
        if self.num_classes == 0:
            raise ValueError(f"{self.model_name or 'Perceptron'} has no units to train (num_classes=0)")
        self.check_input(x)
        feats = self.forward_features(x)  # (B, F)
        targets = self._targets(y, feats.dtype)  # (B, K)
        if targets.shape[0] != feats.shape[0]:
            raise ValueError(f"expected one label per sample ({feats.shape[0]}), got {targets.shape[0]}")
        mistakes = 0
        for xi, ti in zip(feats, targets):
            out = (self.fc(xi) > 0).to(xi.dtype)  # (K,) threshold outputs
            err = ti - out  # (K,) in {-1, 0, 1}
            if err.any():
                mistakes += 1
                self.fc.weight.add_(lr * torch.outer(err, xi))
                self.fc.bias.add_(lr * err)
        return mistakes


class MLP(LineageModel):
    """Flattened input → (Linear → act) per hidden width → Linear classifier."""

    def __init__(
        self,
        *,
        hidden: tuple[int, ...] = (300, 100),
        num_classes: int = 10,
        in_chans: int = 1,
        img_size: int = 28,
        dropout: float = 0.0,
        act_layer: Callable[[], nn.Module] = nn.Tanh,
    ) -> None:
        super().__init__(
            in_chans=in_chans,
            num_classes=num_classes,
            input_size=(in_chans, img_size, img_size),
            fixed_size=True,
        )
        if not hidden or any(h < 1 for h in hidden):
            raise ValueError(f"hidden must list at least one positive width, got {hidden!r}")
        self.flatten = nn.Flatten(1)
        layers: list[nn.Module] = []
        self.feature_info = []
        width = in_chans * img_size * img_size
        for h in hidden:
            layers += [nn.Linear(width, h), act_layer()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            self.feature_info.append(dict(module=f"hidden.{len(layers) - 1}", num_chs=h, reduction=1))
            width = h
        self.hidden = nn.Sequential(*layers)
        self.num_features = width
        self.fc = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(self.flatten(x))  # (B, hidden[-1])

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


@register_model(
    family="mlp",
    year=1958,
    paper="The Perceptron: A Probabilistic Model for Information Storage and Organization in the Brain",
    authors=("Rosenblatt",),
    venue="Psychological Review 65(6)",
    venue_year=1958,
    key_idea="Linear threshold units that learn from their mistakes, without gradients.",
    input_size=(1, 28, 28),
    num_classes=10,
    ref_params=7_850,
    ref_params_source="hand count: 784 x 10 weights + 10 thresholds",
    notes="One unit per class (one-vs-rest); train with rosenblatt_update (the perceptron rule) or, "
    "through the net inputs, with gradients. Weights start at zero.",
)
def perceptron(*, num_classes: int = 10, in_chans: int = 1, img_size: int = 28) -> Perceptron:
    """Return a single-layer perceptron on flattened 1×28×28 inputs, one threshold unit per class."""
    return Perceptron(num_classes=num_classes, in_chans=in_chans, img_size=img_size)


@register_model(
    family="mlp",
    year=1986,
    paper="Learning representations by back-propagating errors",
    authors=("Rumelhart", "Hinton", "Williams"),
    venue="Nature 323",
    venue_year=1986,
    key_idea="Hidden layers trained by back-propagation learn their own features.",
    input_size=(1, 28, 28),
    num_classes=10,
    ref_params=266_610,
    ref_params_source="hand count: (784+1)x300 + (300+1)x100 + (100+1)x10",
    notes="Default widths 300-100 as LeCun et al. 1998's MNIST baseline '3-layer NN, 300+100 HU' "
    "(3.05% test error); tanh units.",
)
def mlp(
    *,
    num_classes: int = 10,
    in_chans: int = 1,
    img_size: int = 28,
    hidden: tuple[int, ...] = (300, 100),
    dropout: float = 0.0,
    act_layer: Callable[[], nn.Module] = nn.Tanh,
) -> MLP:
    """Return a multilayer perceptron on flattened inputs (default 784-300-100-10, tanh)."""
    return MLP(
        hidden=tuple(hidden),
        num_classes=num_classes,
        in_chans=in_chans,
        img_size=img_size,
        dropout=dropout,
        act_layer=act_layer,
    )
