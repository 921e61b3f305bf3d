"""Does an image file look like the images a checkpoint was trained on? Polarity, colour, brightness, size.

``predict`` feeds arbitrary files to a model that has only ever seen one data set. A
classifier answers confidently whatever it is given (softmax scores are not a measure of
familiarity), so the checks here look at the input itself, before the model: cheap
statistics of the decoded image compared with what the checkpoint records about its
training data (stored channels, input size, mean pixel intensity).

- **Polarity.** Digit sets (MNIST, scikit-learn's digits) are light strokes on a dark
  background; a digit written or scanned on paper is the reverse. When the training data
  is polarised (mean intensity far from 0.5), the input is grey and its background (the
  median of a border ring) is on the other side of 0.5, the image is inverted, and the
  result says so.
- **Colour vs grey.** Mean saturation ``(max(R,G,B) - min(R,G,B)) / 255`` above 0.1 for a
  model trained on grey images (converted to grey, with a warning), or below 0.02 for a
  model trained on colour images.
- **Mean intensity.** More than 0.25 away from the training mean (after any inversion).
- **Size.** Shrunk more than 8x or enlarged more than 4x to the model's input, or an aspect
  ratio squeezed by more than 1.25x.

Only PIL/torch statistics; no library is needed for this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

__all__ = ["Reference", "InputReport", "examine"]

# Thresholds, in one place so the docstring above and the code agree.
POLARISED = 0.2  # |training mean - 0.5| above this: a light-on-dark (or dark-on-light) data set
COLOUR_SATURATION = 0.1  # mean saturation above this: a colour image
GREY_SATURATION = 0.02  # below this: a grey image (even if stored as RGB)
MEAN_GAP = 0.25  # |input mean - training mean| above this: another kind of picture
MAX_SHRINK, MAX_ENLARGE, MAX_SQUEEZE = 8.0, 4.0, 1.25


@dataclass(frozen=True)
class Reference:
    """What the training images looked like, from a checkpoint."""

    dataset: str
    channels: int  # channels of the stored training images (1: grey, 3: colour)
    size: tuple[int, int]  # the model's input (H, W)
    mean: float  # mean pixel intensity of the training images, in [0, 1], averaged over channels

    def describe(self) -> str:
        """Return e.g. 'mnist5k: grey 28x28 images, light on dark (mean intensity 0.13)'."""
        kind = "grey" if self.channels == 1 else "colour"
        tone = ""
        if abs(self.mean - 0.5) > POLARISED:
            tone = ", light on dark" if self.mean < 0.5 else ", dark on light"
        return f"{self.dataset}: {kind} {self.size[0]}x{self.size[1]} images{tone}, mean intensity {self.mean:.2f}"


@dataclass
class InputReport:
    """What was found in one image and what was done about it."""

    size: tuple[int, int]  # (H, W) of the file
    saturation: float
    mean: float  # grey mean intensity in [0, 1], before any inversion
    background: float  # median intensity of the border ring, in [0, 1]
    invert: bool = False
    warnings: list[str] = field(default_factory=list)


def examine(rgb: torch.Tensor, ref: Reference, *, invert: str = "auto") -> InputReport:
    """Return the statistics of an RGB uint8 image (3, H, W), whether to invert it, and warnings against ``ref``.

    ``invert``: "auto" inverts a grey image whose polarity is the reverse of the training
    data's; "never" only warns about it; "always" inverts whatever the image is.
    """
    h, w = rgb.shape[-2:]
    x = rgb.float() / 255.0
    saturation = float((x.amax(dim=0) - x.amin(dim=0)).mean())
    grey = x.mean(dim=0)  # (H, W), as the loader's RGB -> grey conversion
    ring = max(1, round(0.1 * min(h, w)))
    border = torch.cat(
        [grey[:ring].flatten(), grey[-ring:].flatten(), grey[:, :ring].flatten(), grey[:, -ring:].flatten()]
    )
    report = InputReport(
        size=(h, w), saturation=saturation, mean=float(grey.mean()), background=float(border.median())
    )
    is_colour, is_grey = saturation > COLOUR_SATURATION, saturation < GREY_SATURATION

    polarised = ref.channels == 1 and abs(ref.mean - 0.5) > POLARISED
    reversed_polarity = polarised and not is_colour and (report.background < 0.5) != (ref.mean < 0.5)
    report.invert = invert == "always" or (invert == "auto" and reversed_polarity)
    if (
        reversed_polarity and invert == "never"
    ):  # (under "auto" it is inverted, and the preprocessing says so)
        report.warnings.append(
            f"{'dark on light' if ref.mean < 0.5 else 'light on dark'} (background {report.background:.2f}), "
            f"the reverse of the training images"
        )
    if ref.channels == 1 and is_colour:
        report.warnings.append(
            f"a colour image (mean saturation {saturation:.2f}); the model saw only grey images"
        )
    if ref.channels == 3 and is_grey:
        report.warnings.append("a grey image; the model saw only colour images")
    mean = 1.0 - report.mean if report.invert else report.mean
    if abs(mean - ref.mean) > MEAN_GAP:
        report.warnings.append(
            f"mean intensity {mean:.2f}{' after inversion' if report.invert else ''} where the training images "
            f"average {ref.mean:.2f}"
        )
    th, tw = ref.size
    shrink = max(h / th, w / tw)
    if shrink > MAX_SHRINK:
        report.warnings.append(f"{h}x{w} pixels shrunk {shrink:.0f}x to {th}x{tw}")
    elif 1 / max(shrink, 1e-9) > MAX_ENLARGE:
        report.warnings.append(f"{h}x{w} pixels enlarged {1 / shrink:.0f}x to {th}x{tw}")
    squeeze = math.exp(abs(math.log((w / h) / (tw / th))))
    if squeeze > MAX_SQUEEZE:
        report.warnings.append(f"aspect ratio {w / h:.2f} squeezed to {tw / th:.2f}")
    return report
