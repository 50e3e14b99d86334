"""``latentatlas ratings prepare``."""


def prepare():
    """Prepare a ratings file: read, filter cold-start users/items, split, write .npz + JSON."""
    raise NotImplementedError
