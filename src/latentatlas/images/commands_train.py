"""``latentatlas images train``."""


def train():
    """Train the convolutional autoencoder."""
    raise NotImplementedError
