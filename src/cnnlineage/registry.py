"""The model registry: every architecture in cnnlineage, with its place in history.

Each family file decorates its builders with :func:`register_model`, which stores the
builder together with a :class:`ModelCard`. ``create_model``, ``list_models``,
``model_info``, the CLI's ``list`` and ``info``, the comparison table and the tests all
read this one registry; there is no second list of models anywhere.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import numbers
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch.nn as nn

__all__ = [
    "TOP1_KINDS",
    "ModelCard",
    "register_model",
    "create_model",
    "list_models",
    "list_families",
    "model_info",
    "get_builder",
    "closest_models",
]


TOP1_KINDS = ("paper", "recipe")
"""Where a card's top-1 comes from: ``"paper"``, a table of the paper that introduced the
architecture; ``"recipe"``, the accuracy of released weights trained (or ported) by a later
recipe, such as torchvision's, timm's or the authors' model zoo."""


@dataclass(frozen=True)
class ModelCard:
    """What a registered model is, where it comes from, and the figures it must reproduce."""

    name: str  # registry name, e.g. "resnet50"
    family: str  # family file it lives in, e.g. "resnet"
    year: int  # the year the work first appeared publicly (arXiv preprint or venue, whichever came first)
    paper: str  # paper title
    authors: tuple[str, ...]  # surnames in the paper's author order
    venue: str  # where it was published ("CVPR", "Proc. IEEE 86(11)"); "arXiv" for a preprint only
    venue_year: int  # the year of that venue (ResNet: first public 2015, CVPR 2016)
    key_idea: str  # one line, in our own words
    input_size: tuple[int, int, int]  # default input (C, H, W)
    ref_params: int  # parameters of the inference network (at 1000 classes unless num_classes says otherwise)
    ref_params_source: str  # where ref_params comes from: torchvision/timm metadata, the paper, a hand count
    arxiv: str | None = None  # arXiv id ("1512.03385") where the paper has one
    ref_params_train: int | None = None  # parameters with training-only parts (auxiliary heads), if any
    num_classes: int = 1000  # number of classes the reference count and the default build use
    ref_top1: float | None = None  # published ImageNet top-1 (%) where one exists
    ref_top1_source: str | None = None  # where ref_top1 comes from
    ref_top1_kind: str | None = None  # one of TOP1_KINDS: the paper's table, or a later training recipe
    torchvision: str | None = None  # name of the torchvision builder with identical structure, if any
    timm: str | None = None  # name of the timm model whose weights load_timm accepts, if any
    notes: str = ""  # simplifications, training details worth knowing (e.g. aux-loss weight)
    default_kwargs: dict[str, Any] = field(default_factory=dict)  # variant arguments the builder fixes

    def __post_init__(self) -> None:
        if not self.authors or isinstance(self.authors, str):
            raise ValueError(
                f"{self.name}: authors must be a non-empty tuple of surnames, got {self.authors!r}"
            )
        if self.venue_year < self.year:
            raise ValueError(
                f"{self.name}: venue year {self.venue_year} is before first appearance {self.year}"
            )
        if (self.ref_top1 is None) != (self.ref_top1_kind is None) or (
            self.ref_top1_kind is not None and self.ref_top1_kind not in TOP1_KINDS
        ):
            raise ValueError(
                f"{self.name}: a top-1 needs ref_top1_kind in {TOP1_KINDS} (and only a top-1 has one), "
                f"got ref_top1={self.ref_top1!r}, ref_top1_kind={self.ref_top1_kind!r}"
            )

    @property
    def first_author(self) -> str:
        """Return the first author's surname."""
        return self.authors[0]

    @property
    def author_line(self) -> str:
        """Return the authors as cited: "Chollet", "Simonyan & Zisserman", "He et al."."""
        if len(self.authors) == 1:
            return self.authors[0]
        if len(self.authors) == 2:
            return f"{self.authors[0]} & {self.authors[1]}"
        return f"{self.authors[0]} et al."

    @property
    def citation(self) -> str:
        """Return the short citation: authors, first-appearance year, venue and arXiv id."""
        if self.venue == "arXiv":
            return f"{self.author_line} {self.year}, arXiv:{self.arxiv}"
        arxiv = f", arXiv:{self.arxiv}" if self.arxiv else ""
        return f"{self.author_line} {self.year}, {self.venue} {self.venue_year}{arxiv}"

    def to_dict(self) -> dict[str, Any]:
        """Return the card as a plain dict (JSON-serialisable)."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["authors"] = list(self.authors)
        return d


_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_CARDS: dict[str, ModelCard] = {}


def register_model(
    *, name: str | None = None, **card_fields: Any
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Return a decorator that registers a builder under ``name`` (default: the function's name).

    The keyword arguments are the :class:`ModelCard` fields. The wrapped builder stamps
    every model it makes with ``model_name`` and ``card``, so error messages and the
    analyzer can name it.
    """

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        model_name = name or fn.__name__
        if model_name in _BUILDERS:
            raise ValueError(f"model {model_name!r} is already registered; names must be unique")
        card = ModelCard(name=model_name, **card_fields)

        @functools.wraps(fn)
        def builder(**kwargs: Any) -> nn.Module:
            model = fn(**kwargs)
            model.model_name = model_name
            model.card = card
            return model

        _BUILDERS[model_name] = builder
        _CARDS[model_name] = card
        return builder

    return decorator


def _ensure_models_loaded() -> None:
    # Importing the package registers every family.
    import cnnlineage.models  # noqa: F401


def _unknown(name: str) -> ValueError:
    close = closest_models(name)
    hint = f"; closest registered names: {', '.join(close)}" if close else ""
    return ValueError(
        f"unknown model {name!r}{hint}. Run `cnnlineage list` to see all {len(_BUILDERS)} models."
    )


def closest_models(text: str, *, n: int = 5) -> list[str]:
    """Return up to ``n`` registered names closest to ``text``: spelling first, then substrings (case-insensitive)."""
    _ensure_models_loaded()
    lowered = {k.lower(): k for k in _BUILDERS}
    close = [lowered[c] for c in difflib.get_close_matches(text.lower(), list(lowered), n=n, cutoff=0.5)]
    if not close:  # fall back to a substring match ("resnet" -> resnet18, resnet34, ...)
        close = [k for k in list_models() if text.lower() in k.lower()][:n]
    return close


def get_builder(name: str) -> Callable[..., nn.Module]:
    """Return the registered builder for ``name``; ValueError with close names if unknown."""
    _ensure_models_loaded()
    if not isinstance(name, str):
        raise ValueError(
            f"model name must be a string such as 'resnet18', got {type(name).__name__} {name!r}; "
            "run `cnnlineage list` to see the names"
        )
    return _BUILDERS[_resolve(name)]


def _resolve(name: str) -> str:
    # Exact name, else the one name equal to it ignoring case ("ResNet18" -> "resnet18").
    if name in _BUILDERS:
        return name
    folded = [k for k in _BUILDERS if k.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    raise _unknown(name)


def create_model(
    name: str, *, num_classes: int | None = None, in_chans: int | None = None, **kwargs: Any
) -> nn.Module:
    """Return a freshly initialised model ``name``.

    ``num_classes`` sets the classifier width (default: the card's, 1000 for ImageNet
    models, 10 for LeNet-5 and the CIFAR networks; 0 removes the classifier),
    ``in_chans`` the input channels (default: the model's own, 3 for most, 1 for
    LeNet-5), and further keyword arguments are passed to the builder as variant
    settings (e.g. ``width_mult``).
    """
    builder = get_builder(name)
    name = model_info(name).name
    for key, value, least in (("num_classes", num_classes, 0), ("in_chans", in_chans, 1)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
            raise ValueError(
                f"{key} must be an integer >= {least}, got {type(value).__name__} {value!r}"
                + (" (0 removes the classifier)" if key == "num_classes" else "")
            )
        kwargs[key] = int(value)  # numpy integers too
    if "pretrained" in kwargs or "weights" in kwargs:
        key = "pretrained" if "pretrained" in kwargs else "weights"
        card = model_info(name)
        source = (
            f"torchvision's {card.torchvision} with cnnlineage.weights.load_torchvision(model, state_dict_or_file)"
            if card.torchvision
            else f"timm's {card.timm} with cnnlineage.weights.load_timm(model, state_dict_or_file)"
            if card.timm
            else None
        )
        raise ValueError(
            f"create_model does not take {key}=: cnnlineage never downloads weights. "
            + (
                f"Build the model, then load {source}"
                if source
                else f"{name} has no torchvision or timm counterpart with published weights; train it with "
                f"`cnnlineage train {name}`"
            )
        )
    try:
        return builder(**kwargs)
    except TypeError as e:
        if "unexpected keyword argument" in str(e):
            import inspect
            import re

            bad = re.search(r"unexpected keyword argument '([^']+)'", str(e))
            accepted = [
                p.name
                for p in inspect.signature(inspect.unwrap(builder)).parameters.values()
                if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
            ]
            raise ValueError(
                f"{name} does not take the argument {bad.group(1) if bad else '?'!r}; "
                f"its builder accepts: {', '.join(accepted)}"
            ) from None
        raise


def list_models(pattern: str | None = None, *, family: str | None = None) -> list[str]:
    """Return registered model names in lineage order (year, then name), filtered by a shell-style pattern.

    The pattern and ``family`` match case-insensitively; an unknown family is a ValueError
    listing the families.
    """
    _ensure_models_loaded()
    names = list(_BUILDERS)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n.lower(), pattern.lower())]
    if family:
        families = list_families()
        if family.lower() not in families:
            close = difflib.get_close_matches(family.lower(), families, n=3, cutoff=0.5)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise ValueError(f"no model family {family!r}; {hint}families: {', '.join(families)}")
        names = [n for n in names if _CARDS[n].family == family.lower()]
    return sorted(names, key=lambda n: (_CARDS[n].year, _CARDS[n].family, _natural_key(n)))


def list_families() -> list[str]:
    """Return the registered family names in order of their first year."""
    _ensure_models_loaded()
    seen: dict[str, int] = {}
    for card in _CARDS.values():
        seen[card.family] = min(seen.get(card.family, 9999), card.year)
    return sorted(seen, key=lambda f: (seen[f], f))


def model_info(name: str) -> ModelCard:
    """Return the :class:`ModelCard` of a registered model."""
    _ensure_models_loaded()
    if not isinstance(name, str):
        raise ValueError(
            f"model name must be a string such as 'resnet18', got {type(name).__name__} {name!r}"
        )
    return _CARDS[_resolve(name)]


def _natural_key(name: str) -> list[Any]:
    # "resnet18" < "resnet101"; digit runs compare as numbers.
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]
