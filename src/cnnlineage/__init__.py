"""cnnlineage: the history of convolutional networks, runnable and measurable."""

from .registry import ModelCard, create_model, list_families, list_models, model_info, register_model

__version__ = "0.1.0"

__all__ = [
    "ModelCard",
    "create_model",
    "list_families",
    "list_models",
    "model_info",
    "register_model",
    "__version__",
]
