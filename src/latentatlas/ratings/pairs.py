"""The old home of :mod:`latentatlas.ratings.io.pairs`; this name stays an alias of that module."""

import sys

from latentatlas.ratings.io import pairs as _module

sys.modules[__name__] = _module
