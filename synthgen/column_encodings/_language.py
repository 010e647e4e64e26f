"""The LANGUAGE_* encodings: statistics of the columns of a LANGUAGE table and the text of their values.

A LANGUAGE model writes each row as a record of typed fields (see :mod:`synthgen.models.language`), so these
encodings produce no codes. ``analyze`` / ``reduce`` publish the statistics that bound generation (with value
protection, counted per subject like the tabular ones); :meth:`LanguageEncoding.texts` turns values into the
text a record holds, already confined to the published statistics, which is what ``encode`` writes.

- ``LANGUAGE_CATEGORICAL``: the tabular categorical analysis (categories held by fewer than 5–7 subjects are
  rare); a rare value is written ``_RARE_``. Stats: ``categories``, ``no_of_rare_categories``, ``has_nan``.
- ``LANGUAGE_NUMERIC``: ``min`` / ``max`` (the 5–7 most extreme subjects on each side dropped; hidden with
  fewer than 20 subjects), ``max_scale`` (the most decimals, at most 8). Values are clipped and rounded.
- ``LANGUAGE_DATETIME``: ``min`` / ``max`` as ISO strings (protected as above), ``has_time``. Values are clipped.
- ``LANGUAGE_TEXT``: ``nchar_max`` (the protected maximum length in characters), ``nchar_avg``. Values are cut
  to ``nchar_max`` characters. A text column must hold some text.

A numeric or datetime column without a published range, and a categorical column without a published
category and without NULLs, has nothing to generate from: it is generated as NULL (``generated_as_null``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..domain import ModelEncodingType
from ..privacy._value_protection import protected_range, subject_extremes
from ._categorical import CategoricalEncoding, as_category_strings
from ._common import RARE_TOKEN

__all__ = ["LanguageEncoding", "get_language_encoding", "generated_as_null", "MAX_SCALE", "MAX_DIGITS"]

MAX_SCALE = 8
# Numbers are generated digit by digit in int64 units of 10**-scale.
MAX_DIGITS = 18
_DATETIME_TEXT = "%Y-%m-%dT%H:%M:%S"


def generated_as_null(stats: dict[str, Any]) -> bool:
    """Whether the published statistics leave nothing to generate but NULL."""
    kind = stats["encoding_type"]
    if kind == ModelEncodingType.LANGUAGE_CATEGORICAL.value:
        return not stats["categories"] and not stats["no_of_rare_categories"]
    if kind in (ModelEncodingType.LANGUAGE_NUMERIC.value, ModelEncodingType.LANGUAGE_DATETIME.value):
        return stats["min"] is None
    return False


def _header(encoding_type: ModelEncodingType, value_protection: bool, partials) -> dict[str, Any]:
    return {"encoding_type": encoding_type.value, "value_protection": bool(value_protection),
            "has_nan": any(p["has_nan"] for p in partials)}


class LanguageEncoding(ABC):
    """Analyze and reduce one LANGUAGE_* column; write its values as record text."""

    encoding_type: ClassVar[ModelEncodingType]

    @abstractmethod
    def analyze(self, values: pd.Series, subjects: np.ndarray, *, sequence=None) -> dict[str, Any]:
        """Partial statistics of one partition; ``subjects[i]`` identifies the subject of ``values.iloc[i]``."""

    @abstractmethod
    def reduce(self, partials: list[dict[str, Any]], *, value_protection: bool,
               rng: np.random.Generator) -> dict[str, Any]:
        """Merge partial statistics into published (protected when asked) JSON-serializable statistics."""

    @abstractmethod
    def texts(self, values: pd.Series, stats: dict[str, Any]) -> list[str | None]:
        """The text of every value in a record (None for NULL), within the published statistics."""


class LanguageCategoricalEncoding(LanguageEncoding):
    encoding_type = ModelEncodingType.LANGUAGE_CATEGORICAL

    def analyze(self, values, subjects, *, sequence=None):
        return CategoricalEncoding().analyze(values, subjects)

    def reduce(self, partials, *, value_protection, rng):
        stats = CategoricalEncoding().reduce(partials, value_protection=value_protection, rng=rng)
        del stats["cardinalities"]
        return stats | {"encoding_type": self.encoding_type.value}

    def texts(self, values, stats):
        strings = as_category_strings(values)
        known = set(stats["categories"])
        if generated_as_null(stats):
            return [None] * len(values)
        return [None if s is None else s if s in known else RARE_TOKEN for s in strings.tolist()]


def _scale(values: np.ndarray) -> int:
    """The fewest decimals (up to MAX_SCALE) that represent every value."""
    for scale in range(MAX_SCALE + 1):
        scaled = values * 10.0**scale
        # relative float noise (0.1 + 0.2) is no decimal; a tiny value is one (1e-12 is not 0)
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(np.abs(scaled), 1e-6)):
            return scale
    return MAX_SCALE


class LanguageNumericEncoding(LanguageEncoding):
    encoding_type = ModelEncodingType.LANGUAGE_NUMERIC

    def analyze(self, values, subjects, *, sequence=None):
        numbers = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
        present = ~np.isnan(numbers)
        finite = numbers[present]
        if not np.isfinite(finite).all():
            raise ValueError("it holds infinite values, which a LANGUAGE_NUMERIC column cannot generate.")
        minima, maxima, n_subjects = subject_extremes(finite, np.asarray(subjects)[present])
        return {"has_nan": bool((~present).any()), "minima": minima, "maxima": maxima, "n_subjects": n_subjects,
                "scale": _scale(finite) if len(finite) else 0}

    def reduce(self, partials, *, value_protection, rng):
        low, high = protected_range([p["minima"] for p in partials], [p["maxima"] for p in partials],
                                    sum(p["n_subjects"] for p in partials), value_protection=value_protection,
                                    rng=rng)
        scale = max(p["scale"] for p in partials)
        if low is not None:
            digits = len(str(int(max(abs(float(low)), abs(float(high))))))
            if digits > MAX_DIGITS:
                raise ValueError(f"its values reach {max(abs(float(low)), abs(float(high))):g}, beyond the "
                                 f"{MAX_DIGITS} digits a LANGUAGE_NUMERIC column generates; declare it "
                                 "LANGUAGE_CATEGORICAL or scale it.")
            scale = min(scale, MAX_DIGITS - digits)
            if scale == 0:  # bounds inside the integers, so that an integer lies within them
                low, high = math.ceil(float(low)), math.floor(float(high))
                if low > high:
                    low = high = round((low + high) / 2)
        return _header(self.encoding_type, value_protection, partials) | {
            "max_scale": int(scale),
            "min": None if low is None else float(low),
            "max": None if high is None else float(high),
        }

    def texts(self, values, stats):
        if generated_as_null(stats):
            return [None] * len(values)
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        clipped = numbers.clip(stats["min"], stats["max"]).round(stats["max_scale"])
        from ..models.language._records import format_number

        return [None if np.isnan(v) else format_number(v, stats["max_scale"]) for v in clipped.tolist()]


def _as_datetimes(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        if getattr(values.dtype, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        return values.astype("datetime64[us]")
    return pd.to_datetime(values, errors="coerce").astype("datetime64[us]")


class LanguageDatetimeEncoding(LanguageEncoding):
    encoding_type = ModelEncodingType.LANGUAGE_DATETIME

    def analyze(self, values, subjects, *, sequence=None):
        stamps = _as_datetimes(values)
        present = stamps.notna().to_numpy()
        micros = stamps[present].to_numpy().astype("datetime64[us]").astype(np.int64)
        minima, maxima, n_subjects = subject_extremes(micros, np.asarray(subjects)[present])
        return {"has_nan": bool((~present).any()), "minima": minima, "maxima": maxima, "n_subjects": n_subjects,
                "has_time": bool((micros % 86_400_000_000 != 0).any())}

    def reduce(self, partials, *, value_protection, rng):
        low, high = protected_range([p["minima"] for p in partials], [p["maxima"] for p in partials],
                                    sum(p["n_subjects"] for p in partials), value_protection=value_protection,
                                    rng=rng)

        def text(micros):
            return None if micros is None else pd.Timestamp(int(micros), unit="us").strftime(_DATETIME_TEXT)

        return _header(self.encoding_type, value_protection, partials) | {
            "has_time": any(p["has_time"] for p in partials), "min": text(low), "max": text(high)}

    def texts(self, values, stats):
        if generated_as_null(stats):
            return [None] * len(values)
        stamps = _as_datetimes(values).clip(pd.Timestamp(stats["min"]), pd.Timestamp(stats["max"]))
        layout = _DATETIME_TEXT if stats["has_time"] else "%Y-%m-%d"
        return [None if pd.isna(v) else v.strftime(layout) for v in stamps.tolist()]


def _as_texts(values: pd.Series) -> list[str | None]:
    """Values as Python strings (None for NULL): non-string values by their ``str``."""
    return [None if missing else v if isinstance(v, str) else str(v)
            for v, missing in zip(values.astype(object).tolist(), values.isna().tolist(), strict=True)]


class LanguageTextEncoding(LanguageEncoding):
    encoding_type = ModelEncodingType.LANGUAGE_TEXT

    def analyze(self, values, subjects, *, sequence=None):
        texts = _as_texts(values)
        present = np.array([t is not None for t in texts], dtype=bool)
        lengths = np.array([len(t) for t in texts if t is not None], dtype=np.int64)
        minima, maxima, n_subjects = subject_extremes(lengths, np.asarray(subjects)[present])
        return {"has_nan": bool((~present).any()), "maxima": maxima, "minima": minima, "n_subjects": n_subjects,
                "n_values": int(present.sum()), "n_chars": int(lengths.sum())}

    def reduce(self, partials, *, value_protection, rng):
        n_values = sum(p["n_values"] for p in partials)
        if n_values == 0:
            raise ValueError("it is declared LANGUAGE_TEXT but every value is NULL, so there is no text to learn. "
                             "Drop the column or give it another encoding type.")
        average = sum(p["n_chars"] for p in partials) / n_values
        _, high = protected_range([p["minima"] for p in partials], [p["maxima"] for p in partials],
                                  sum(p["n_subjects"] for p in partials), value_protection=value_protection,
                                  rng=rng)
        # too few subjects to publish the longest length: the average stands in for it
        nchar_max = int(high) if high is not None else int(math.ceil(average))
        return _header(self.encoding_type, value_protection, partials) | {
            "nchar_max": max(1, nchar_max), "nchar_avg": round(float(average), 2)}

    def texts(self, values, stats):
        limit = stats["nchar_max"]
        return [None if v is None else v[:limit] for v in _as_texts(values)]


_ENCODINGS = {cls.encoding_type: cls for cls in (LanguageCategoricalEncoding, LanguageNumericEncoding,
                                                  LanguageDatetimeEncoding, LanguageTextEncoding)}


def get_language_encoding(encoding_type: ModelEncodingType | str) -> LanguageEncoding:
    """The encoding object for a LANGUAGE_* ``encoding_type``."""
    encoding_type = ModelEncodingType.parse(encoding_type, name="encoding type")
    if encoding_type not in _ENCODINGS:
        raise ValueError(f"{encoding_type.value} is not a LANGUAGE encoding type.")
    return _ENCODINGS[encoding_type]()
