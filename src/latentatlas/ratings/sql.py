"""The old home of :mod:`latentatlas.ratings.io.sql`; this name stays an alias of that module."""

import sys

from latentatlas.ratings.io import sql as _module

sys.modules[__name__] = _module
