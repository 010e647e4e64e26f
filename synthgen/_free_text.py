"""Which string columns hold free text (a comment, a note, a tweet) rather than categories or identifiers.

The one rule of the project: ``TabularSynthesizer`` infers with it which columns to learn with a language model
(``LANGUAGE_TEXT``) instead of as categories, and ``synthgen.evaluate`` which columns get text figures instead
of categorical ones (when ``text_columns`` is not given). A column is free text when all of these hold for its
non-NULL values (of at most :data:`MAX_VALUES_CHECKED`, taken at evenly spaced rows, so the answer is
deterministic and cheap on large tables):

- its dtype holds strings (:func:`holds_strings`: ``str``, ``string``, Arrow strings, or ``object`` holding only
  strings); a ``category`` dtype is a declaration of categories and is never free text, nor are booleans;
- at least :data:`MIN_VALUES` values;
- at least :data:`MIN_WORDY_SHARE` of them have :data:`MIN_WORDS` or more whitespace-separated words (labels such
  as ``"Twitter for iPhone"`` pass this, which is why the next rule exists; names and e-mails do not);
- at least :data:`MIN_DISTINCT_SHARE` of them are distinct (sentences rarely repeat, categories do);
- their mean length is at least :data:`MIN_MEAN_CHARS` characters.

The checks run on whole columns with pandas' string methods (no per-value Python loop).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

__all__ = ["MAX_VALUES_CHECKED", "MIN_VALUES", "MIN_WORDS", "MIN_WORDY_SHARE", "MIN_DISTINCT_SHARE",
           "MIN_MEAN_CHARS", "holds_strings", "is_free_text", "free_text_columns"]

MAX_VALUES_CHECKED = 10_000
MIN_VALUES = 20
MIN_WORDS = 3
MIN_WORDY_SHARE = 0.5
MIN_DISTINCT_SHARE = 0.5
MIN_MEAN_CHARS = 20.0


def holds_strings(values: pd.Series) -> bool:
    """Whether a column's dtype holds strings: ``str``, ``string``, Arrow strings, or ``object`` of strings only.

    ``category`` and boolean dtypes never do.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return False
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return True  # str, string[python], string[pyarrow]
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        return pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
    return pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(values, skipna=True) == "string"


def is_free_text(values: pd.Series) -> bool:
    """Whether ``values`` hold free text by the rule of this module (see the module's docstring).

    Parameters
    ----------
    values : Series
        One column.

    Returns
    -------
    bool
    """
    if not holds_strings(values):
        return False
    present = values.dropna()
    if len(present) < MIN_VALUES:
        return False
    if len(present) > MAX_VALUES_CHECKED:
        present = present.iloc[np.linspace(0, len(present) - 1, MAX_VALUES_CHECKED).astype(np.int64)]
    texts = present.astype("string")  # one vectorised path for every string dtype
    n_words = texts.str.count(r"\S+").to_numpy(dtype=np.int64, na_value=0)
    if (n_words >= MIN_WORDS).mean() < MIN_WORDY_SHARE:
        return False
    if texts.nunique() < MIN_DISTINCT_SHARE * len(texts):
        return False
    return float(texts.str.len().mean()) >= MIN_MEAN_CHARS


def free_text_columns(frame: pd.DataFrame, *, exclude: Collection[str] = ()) -> list[str]:
    """The columns of ``frame`` that hold free text (in column order), except those in ``exclude``.

    Parameters
    ----------
    frame : DataFrame
        A table.
    exclude : collection of str
        Columns not to consider (keys, columns with a declared encoding type).

    Returns
    -------
    list of str

    Examples
    --------
    >>> import pandas as pd
    >>> from synthgen._free_text import free_text_columns
    >>> frame = pd.DataFrame({"device": ["Twitter for iPhone", "Twitter Web Client"] * 20,
    ...                       "note": [f"Order {i} arrived late and the box was damaged" for i in range(40)]})
    >>> free_text_columns(frame)
    ['note']
    """
    return [c for c in frame.columns if c not in exclude and is_free_text(frame[c])]
