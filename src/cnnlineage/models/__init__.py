"""Every architecture family of the lineage; importing this package registers them all.

One module per family. A family that fails to import is a bug, so imports are plain.
"""

from . import lenet  # noqa: F401
from . import alexnet  # noqa: F401
from . import vgg  # noqa: F401
from . import nin  # noqa: F401
from . import vit  # noqa: F401
from . import mlp  # noqa: F401
from . import resnet  # noqa: F401
from . import densenet  # noqa: F401
from . import regnet  # noqa: F401
from . import convnext  # noqa: F401
from . import mobilenet  # noqa: F401
from . import resnet_cifar  # noqa: F401
from . import preact_resnet  # noqa: F401
from . import xception  # noqa: F401
from . import googlenet  # noqa: F401
from . import efficientnet  # noqa: F401
from . import shufflenet  # noqa: F401
from . import highway  # noqa: F401
