"""Every architecture family of the lineage; importing this package registers them all.

One module per family. A family that fails to import is a bug, so imports are plain.
"""

from . import (
    alexnet,  # noqa: F401
    anynet,  # noqa: F401
    convnext,  # noqa: F401
    darts,  # noqa: F401
    deit,  # noqa: F401
    densenet,  # noqa: F401
    efficientnet,  # noqa: F401
    googlenet,  # noqa: F401
    highway,  # noqa: F401
    inception_v4,  # noqa: F401
    lenet,  # noqa: F401
    mlp,  # noqa: F401
    mnasnet,  # noqa: F401
    mobilenet,  # noqa: F401
    mobilevit,  # noqa: F401
    nin,  # noqa: F401
    preact_resnet,  # noqa: F401
    regnet,  # noqa: F401
    resnet,  # noqa: F401
    resnet_cifar,  # noqa: F401
    shufflenet,  # noqa: F401
    squeezenet,  # noqa: F401
    swin,  # noqa: F401
    vgg,  # noqa: F401
    vit,  # noqa: F401
    xception,  # noqa: F401
)
