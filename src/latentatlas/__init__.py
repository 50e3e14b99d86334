"""latentatlas: learn and explore latent representations.

Two capabilities share one package:

* :mod:`latentatlas.ratings` -- latent-factor recommenders on explicit ratings (ALS and SGD).
* :mod:`latentatlas.images` -- a convolutional autoencoder and tools to explore its latent space.
"""

from latentatlas.errors import LatentAtlasError

__version__ = "0.1.0"
__all__ = ["LatentAtlasError", "__version__"]
