"""``latentatlas images encode|embed|interpolate``."""


def encode():
    """Encode images to latent codes."""
    raise NotImplementedError


def embed():
    """2-D embeddings of latent codes."""
    raise NotImplementedError


def interpolate():
    """Decode points on the line between two images' codes."""
    raise NotImplementedError
