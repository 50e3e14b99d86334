"""The old home of :mod:`latentatlas.ratings.io.names`; this name stays an alias of that module."""

import sys

from latentatlas.ratings.io import names as _module

sys.modules[__name__] = _module
