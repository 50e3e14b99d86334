"""Latent-factor recommenders on explicit ratings."""

from latentatlas.ratings.data import Ratings
from latentatlas.ratings.prep import Biases, Split, center, fit_biases, kcore, split, user_means
from latentatlas.ratings.synthetic import synthetic

__all__ = ["Ratings", "Biases", "Split", "center", "fit_biases", "kcore", "split", "synthetic", "user_means"]
