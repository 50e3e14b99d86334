"""``latentatlas ratings train|evaluate|recommend``."""


def train():
    """Train a latent factor model."""
    raise NotImplementedError


def evaluate():
    """Evaluate a saved model on test ratings."""
    raise NotImplementedError


def recommend():
    """Top-N recommendations for a user."""
    raise NotImplementedError
