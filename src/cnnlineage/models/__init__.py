"""Every architecture family of the lineage; importing this package registers them all.

One module per family. A family that fails to import is a bug, so imports are plain.
"""

from . import lenet  # noqa: F401
