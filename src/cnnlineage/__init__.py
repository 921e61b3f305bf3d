"""cnnlineage: the history of convolutional networks, runnable and measurable.

The registry's functions are imported on first use (PEP 562), so that importing the
package is instant and a Ctrl-C while the command line starts up ends quietly.
"""

from __future__ import annotations

# No imports here: a Ctrl-C that arrives while the package loads must find `run()` in
# __main__.py already guarding, and even `typing` takes milliseconds to import.
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

_FROM_REGISTRY = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> object:
    if name in _FROM_REGISTRY:
        from . import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'cnnlineage' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FROM_REGISTRY)
