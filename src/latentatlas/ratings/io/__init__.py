"""Reading ratings and what goes with them: one package, with a public column toolkit.

* :mod:`~latentatlas.ratings.io.readers` — :func:`read_ratings` for every file format (CSV/TSV, Parquet,
  MovieLens, Yelp and other JSON lines, ``.npy``), with format detection, column choice, bad-line policies
  and timestamps;
* :mod:`~latentatlas.ratings.io.names` — names and metadata of items and users (:class:`Names`,
  :func:`read_names`);
* :mod:`~latentatlas.ratings.io.sql` — ratings from SQL databases (extra ``sql``);
* :mod:`~latentatlas.ratings.io.pairs` — files of (user, item) pairs and of one new user's ratings.

The column toolkit is what every reader (and the Spark engine) shares: the column names recognised for users,
items, ratings and times, and the typing of id and time columns.
"""

from latentatlas.ratings.io.readers import (BAD_LINE_POLICIES, CANONICAL_INT, DUPLICATE_POLICIES, FORMATS,
                                            ITEM_NAMES, RATING_NAMES, TIME_HELP, TIME_NAMES, USER_NAMES, TextIds,
                                            detect_format, first_json_record, parse_times, read_ratings,
                                            typed_ids)

__all__ = ["read_ratings", "detect_format", "FORMATS", "DUPLICATE_POLICIES", "BAD_LINE_POLICIES", "USER_NAMES",
           "ITEM_NAMES", "RATING_NAMES", "TIME_NAMES", "TIME_HELP", "CANONICAL_INT", "TextIds", "typed_ids",
           "parse_times", "first_json_record"]
