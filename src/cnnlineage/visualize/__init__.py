"""Seeing inside the networks: filters, feature maps, attributions, attention and effective receptive fields.

Captum computes the attributions (deconvnet, guided backprop, occlusion, saliency,
Grad-CAM, integrated gradients); attention rollout, the effective receptive field, top
images, the t-SNE embedding (scikit-learn) and the figures are written here. Every function
takes a :class:`Subject` (see :func:`load_subject`), returns a :class:`Visual` with its
arrays, and writes PNGs when given ``out_dir``.
"""

from .attention import attention, attention_layers, attention_weights, rollout
from .attribution import deconvnet, gradcam, integrated_gradients, occlusion, saliency
from .dataset_views import embedding, top_images
from .erf import erf
from .maps import features, filters
from .subject import (
    Example,
    LayerGeometry,
    Subject,
    Visual,
    dataset_examples,
    default_layer,
    find_layer,
    layer_geometry,
    load_images,
    load_subject,
    resolve_target,
)

__all__ = [
    "KINDS",
    "Example",
    "LayerGeometry",
    "Subject",
    "Visual",
    "attention",
    "attention_layers",
    "attention_weights",
    "dataset_examples",
    "deconvnet",
    "default_layer",
    "embedding",
    "erf",
    "features",
    "filters",
    "find_layer",
    "gradcam",
    "integrated_gradients",
    "layer_geometry",
    "load_images",
    "load_subject",
    "occlusion",
    "resolve_target",
    "rollout",
    "saliency",
    "top_images",
]

# The command line's KIND names and the functions behind them.
KINDS = {
    "filters": filters,
    "features": features,
    "deconvnet": deconvnet,
    "occlusion": occlusion,
    "saliency": saliency,
    "gradcam": gradcam,
    "integrated-gradients": integrated_gradients,
    "attention": attention,
    "erf": erf,
    "top-images": top_images,
    "embedding": embedding,
}
