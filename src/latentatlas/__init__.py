"""latentatlas: learn and explore latent representations.

Two capabilities share one package:

* recommenders on explicit ratings — :class:`Ratings`, :func:`read_ratings`, :func:`prepare_ratings`;
  :class:`Recommender` (the default: a rating model for predictions and a ranking model for top-N lists),
  the rating model :class:`LatentFactorModel` (ALS, SGD, Bayesian MF; a scikit-learn regressor) and the
  ranking models :class:`EASE`, :class:`ImplicitALS` and :class:`Popularity`; side attributes of users and
  items as :class:`Features` (:func:`read_features`) for the Bayesian model;
* a convolutional autoencoder on images and its latent space — :func:`read_images`, :class:`ConvAutoencoder`,
  :func:`embed` (PCA, t-SNE, UMAP).

In a notebook, slow steps show one updating progress bar (:func:`set_progress` turns bars off or on), and
figures and results display inline without ``%matplotlib inline``.

Example
-------
>>> from latentatlas import Recommender, prepare_ratings
>>> data = prepare_ratings()                      # the built-in synthetic ratings
>>> model = Recommender().fit(data.split.train, validation=data.split.validation)

Importing the package is cheap and changes no global state: the names above are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from latentatlas.errors import LatentAtlasError

__version__ = "0.2.0"

_LAZY = {
    "LatentFactorModel": "latentatlas.ratings.model",
    "Recommender": "latentatlas.ratings.recommender",
    "EASE": "latentatlas.ratings.ease",
    "ImplicitALS": "latentatlas.ratings.ials",
    "Popularity": "latentatlas.ratings.popular",
    "load_recommender": "latentatlas.ratings.base",
    "Ratings": "latentatlas.ratings.data",
    "read_ratings": "latentatlas.ratings.io",
    "prepare_ratings": "latentatlas.ratings.pipeline",
    "Features": "latentatlas.ratings.features",
    "read_features": "latentatlas.ratings.io.features",
    "ConvAutoencoder": "latentatlas.images.autoencoder",
    "read_images": "latentatlas.images.io",
    "embed": "latentatlas.images.latent",
    "set_progress": "latentatlas.progress",
}

__all__ = ["Recommender", "LatentFactorModel", "EASE", "ImplicitALS", "Popularity", "load_recommender", "Ratings", "read_ratings", "prepare_ratings", "Features", "read_features",
           "ConvAutoencoder", "read_images",
           "embed", "set_progress", "LatentAtlasError", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from latentatlas.images.autoencoder import ConvAutoencoder
    from latentatlas.images.io import read_images
    from latentatlas.images.latent import embed
    from latentatlas.progress import set_progress
    from latentatlas.ratings.data import Ratings
    from latentatlas.ratings.io import read_ratings
    from latentatlas.ratings.base import load_recommender
    from latentatlas.ratings.ease import EASE
    from latentatlas.ratings.ials import ImplicitALS
    from latentatlas.ratings.model import LatentFactorModel
    from latentatlas.ratings.popular import Popularity
    from latentatlas.ratings.recommender import Recommender
    from latentatlas.ratings.pipeline import prepare_ratings
    from latentatlas.ratings.features import Features
    from latentatlas.ratings.io.features import read_features


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'latentatlas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
