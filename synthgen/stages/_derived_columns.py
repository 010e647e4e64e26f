"""Derived columns: exact single-column functional dependencies, found at ``analyze`` and re-imposed at generation.

A column B *derives* from a column A when every training row with the same A value has the same B value (NULL
counts as a value): ``hour`` = ``sched_dep_time // 100`` on flights, ``education`` -> ``education_num`` on the
census. The model still generates B (so seeds, rebalancing, fairness, imputation and predictions of B work as
before), and after decoding B is overwritten with ``map[A]`` where the generated A value is in the map. Where it
is not (an A value never seen often enough, a protected one), B keeps the model's own draw, which is
conditioned on A: no value is invented.

Accepted only where it is meaningful, not a coincidence of a many-valued A: A has at most
:data:`MAX_DETERMINANT_VALUES` distinct values and at least :data:`MIN_ROWS_PER_VALUE` rows per distinct value on
average; B is not constant. Eligible encodings are categorical, numeric and datetime columns; keys, character
(``TABULAR_CHARACTER``: per-position strings whose values are never published), ``TABULAR_LAT_LONG`` (exact
coordinates) and ``LANGUAGE_*`` columns are never part of a dependency. Of two columns that determine each other,
the earlier in the column order is kept and the later derived; a chain A -> B -> C derives both B and C from A
(dependencies are transitive), and a derived column never derives another.

Privacy: the stored map holds only A values that at least :data:`MIN_SUBJECTS_PER_ENTRY` subjects hold (the
largest rare-category threshold) and A and B values that the published statistics let through (a published
category, a value inside the published range). A map left with a single B value is not stored. Without value
protection every entry is kept. Under
differential privacy nothing is detected (the detection reads exact data).

Values are compared in a canonical form per encoding: category strings (as categories are published), float64
numbers, and datetimes as nanoseconds since the epoch (UTC).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._dtypes import as_category_strings, restore_dtype
from ..column_encodings._datetime_absolute import published_bounds
from ..column_encodings._numeric import format_value
from ..privacy._value_protection import RARE_THRESHOLD_MIN, RARE_THRESHOLD_SPREAD

__all__ = ["MAX_DETERMINANT_VALUES", "MIN_ROWS_PER_VALUE", "MIN_SUBJECTS_PER_ENTRY", "as_column_values",
           "canonical_values", "dependency_partial", "derived_columns", "derive", "lookup"]

MAX_DETERMINANT_VALUES = 10_000
"""A determinant A with more distinct values than this is not considered (a near-key determines anything)."""
MIN_ROWS_PER_VALUE = 5
"""A determinant needs at least this many rows per distinct value on average, so the relation is not chance."""
MIN_SUBJECTS_PER_ENTRY = RARE_THRESHOLD_MIN + RARE_THRESHOLD_SPREAD - 1
"""A map entry is stored only for an A value held by this many subjects (the largest rare-category threshold)."""

_KINDS = {
    "TABULAR_CATEGORICAL": "category",
    "TABULAR_NUMERIC_AUTO": "number", "TABULAR_NUMERIC_DISCRETE": "number", "TABULAR_NUMERIC_BINNED": "number",
    "TABULAR_NUMERIC_DIGIT": "number",
    "TABULAR_DATETIME": "datetime", "TABULAR_DATETIME_RELATIVE": "datetime",
}


def eligible_columns(encoding_types: Mapping[str, str], keys: Iterable[str | None]) -> dict[str, str]:
    """The columns that may take part in a dependency, with their value kind (``category``, ``number``,
    ``datetime``)."""
    excluded = {k for k in keys if k is not None}
    return {c: _KINDS[t] for c, t in encoding_types.items() if t in _KINDS and c not in excluded}


def _canonical(values: pd.Series, kind: str) -> pd.Series:
    """``values`` in the form they are compared and stored in (object dtype, NULLs as ``None``)."""
    if kind == "category":
        return as_category_strings(values)
    if kind == "number":
        numbers = pd.to_numeric(values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values,
                                errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        out = numbers.astype(object)
        out[np.isnan(numbers)] = None
        return pd.Series(out, index=values.index, dtype=object)
    stamps = pd.to_datetime(values, errors="coerce", utc=True).dt.tz_localize(None)
    ns = stamps.astype("datetime64[ns]").to_numpy().view(np.int64).astype(object)
    ns[stamps.isna().to_numpy()] = None
    return pd.Series(ns, index=values.index, dtype=object)


def _coded(values: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes (0..k-1, NULL a value of its own) and the canonical value of each code."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    canonical = _canonical(pd.Series(uniques), kind)
    # distinct raw values may share a canonical form (1 and 1.0 in an object column): merge their codes
    merged, keys = pd.factorize(canonical.to_numpy(dtype=object), use_na_sentinel=False)
    return merged[codes], _nulls_as_none(keys)


def _nulls_as_none(values) -> np.ndarray:
    """``values`` as an object array whose NULLs (``None``, NaN) are all ``None``, the stored form."""
    out = np.asarray(values, dtype=object).copy()
    out[pd.isna(out)] = None
    return out


# -- detection -------------------------------------------------------------------------------------------

def dependency_partial(frame: pd.DataFrame, kinds: Mapping[str, str], subjects: np.ndarray) -> dict[str, dict]:
    """What one partition says about the dependencies among ``kinds``' columns.

    Per possible determinant A (at most :data:`MAX_DETERMINANT_VALUES` distinct values here): its canonical
    values, their row and subject counts, and for each other column B that is a function of A in this
    partition, B's canonical value per A value.
    """
    n = len(frame)
    if n == 0 or len(kinds) < 2:
        return {}
    coded = {c: _coded(frame[c], kind) for c, kind in kinds.items()}
    subject_codes, subject_uniques = pd.factorize(np.asarray(subjects))
    n_subjects = max(len(subject_uniques), 1)
    partial: dict[str, dict] = {}
    for a, (a_codes, a_keys) in coded.items():
        k = len(a_keys)
        if k > MAX_DETERMINANT_VALUES:
            continue
        order = np.argsort(a_codes, kind="stable")
        sorted_a = a_codes[order]
        starts = np.flatnonzero(np.r_[True, sorted_a[1:] != sorted_a[:-1]])
        rows = np.diff(np.r_[starts, n])
        pairs = pd.unique(a_codes.astype(np.int64) * n_subjects + subject_codes)
        subject_counts = np.bincount(pairs // n_subjects, minlength=k)
        same_group = sorted_a[1:] == sorted_a[:-1]
        determined = {}
        for b, (b_codes, b_keys) in coded.items():
            if b == a:
                continue
            sorted_b = b_codes[order]
            if np.any(same_group & (sorted_b[1:] != sorted_b[:-1])):
                continue
            determined[b] = b_keys[sorted_b[starts]]
        if determined:
            partial[a] = {"values": a_keys, "rows": rows, "subjects": subject_counts, "determined": determined}
    return partial


def _merged(partials: list[dict[str, dict]], a: str, n_partitions: int) -> dict | None:
    """The partials of determinant ``a`` merged over partitions (``None`` when a partition rules it out)."""
    parts = [p.get(a) for p in partials]
    if any(part is None for part in parts) and n_partitions > 1:
        return None
    parts = [part for part in parts if part is not None]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    common = set.intersection(*(set(part["determined"]) for part in parts))
    values = np.concatenate([part["values"] for part in parts])
    codes, keys = pd.factorize(values, use_na_sentinel=False)
    keys = _nulls_as_none(keys)
    rows = np.bincount(codes, weights=np.concatenate([part["rows"] for part in parts])).astype(np.int64)
    subjects = np.bincount(codes, weights=np.concatenate([part["subjects"] for part in parts])).astype(np.int64)
    determined = {}
    for b in common:
        b_codes, b_keys = pd.factorize(np.concatenate([part["determined"][b] for part in parts]),
                                       use_na_sentinel=False)
        first = np.full(len(keys), -1, dtype=np.int64)
        first[codes[::-1]] = b_codes[::-1]  # the value of each A's first occurrence
        if np.all(first[codes] == b_codes):  # partitions agree on every A value
            determined[b] = _nulls_as_none(b_keys)[first]
    if not determined:
        return None
    return {"values": keys, "rows": rows, "subjects": subjects, "determined": determined}


def _published(values: np.ndarray, stats: Mapping[str, Any]) -> np.ndarray:
    """Which canonical ``values`` the published statistics of their column let through."""
    encoding = stats["encoding_type"]
    null = np.array([v is None for v in values], dtype=bool)
    allowed = null & bool(stats.get("has_nan", True))
    present = values[~null]
    if encoding == "TABULAR_CATEGORICAL":
        ok = np.isin(present.astype(str), np.asarray(stats.get("categories", []), dtype=str))
    elif encoding == "TABULAR_NUMERIC_DISCRETE":
        ok = np.array([format_value(float(v)) in stats["codes"] for v in present], dtype=bool)
    elif encoding in ("TABULAR_DATETIME", "TABULAR_DATETIME_RELATIVE"):
        if stats.get("min") is None:
            ok = np.zeros(len(present), dtype=bool)
        else:
            low, high = published_bounds(stats)  # microseconds
            micros = present.astype(np.int64) // 1000
            ok = (micros >= low) & (micros <= high)
    else:  # BINNED publishes its edges, DIGIT its range
        low, high = (stats["bins"][0], stats["bins"][-1]) if stats.get("bins") else (stats.get("min"),
                                                                                    stats.get("max"))
        if low is None:
            ok = np.zeros(len(present), dtype=bool)
        else:
            numbers = present.astype(np.float64)
            ok = (numbers >= low) & (numbers <= high)
    allowed[~null] = ok
    return allowed


def _resolve(edges: dict[str, set[str]], order: list[str]) -> dict[str, str]:
    """``{derived: determinant}`` from the dependencies ``edges`` (A -> {B, ...}).

    Columns that determine each other form a class kept by its earliest column; the roots are the kept columns
    of classes that no other class determines. Every other column with a root among its determinants derives
    from the earliest such root.
    """
    position = {c: i for i, c in enumerate(order)}

    def determines(a: str, b: str) -> bool:
        return b in edges.get(a, ())

    columns = sorted({c for a, bs in edges.items() for c in (a, *bs)}, key=position.__getitem__)
    representative = {c: min((d for d in columns if d == c or (determines(c, d) and determines(d, c))),
                             key=position.__getitem__) for c in columns}
    roots = [c for c in columns if representative[c] == c
             and not any(determines(a, c) and representative[a] != c for a in columns if a != c)]
    derived = {}
    for c in columns:
        if c in roots:
            continue
        sources = [r for r in roots if determines(r, c)]
        if sources:
            derived[c] = sources[0]
    return derived


def derived_columns(partials: list[dict[str, dict]], columns: Mapping[str, Mapping[str, Any]],
                    order: list[str], *, n_rows: int, value_protection: bool) -> dict[str, dict[str, Any]]:
    """The derived columns of a table from its partials and published ``columns`` stats.

    Returns ``{B: {"from": A, "map": [[a, b], ...]}}`` with canonical values (JSON-ready), entries sorted.
    """
    n_partitions = len(partials)
    merged = {}
    for a in {a for partial in partials for a in partial}:
        table = _merged(partials, a, n_partitions)
        if table is None or len(table["values"]) > MAX_DETERMINANT_VALUES:
            continue
        if n_rows < MIN_ROWS_PER_VALUE * len(table["values"]):
            continue
        table["determined"] = {b: v for b, v in table["determined"].items()
                               if len(pd.unique(pd.Series(v, dtype=object))) > 1}  # a constant B is cheap already
        if table["determined"]:
            merged[a] = table
    edges = {a: set(table["determined"]) for a, table in merged.items()}
    result: dict[str, dict[str, Any]] = {}
    for b, a in _resolve(edges, [c for c in order if c in columns]).items():
        table = merged[a]
        keys, values = table["values"], table["determined"][b]
        keep = _published(keys, columns[a]) & _published(values, columns[b])
        if value_protection:
            keep &= table["subjects"] >= MIN_SUBJECTS_PER_ENTRY
        entries = sorted(([_json(k), _json(v)] for k, v in zip(keys[keep], values[keep], strict=True)),
                         key=lambda e: (e[0] is None, "" if e[0] is None else e[0]))
        # A map that protection leaves with one B value is not stored: B's other values belong to protected A
        # values, which are never generated, so the model spreads them over the kept A values to match B's
        # marginal, and forcing the one value shifts that marginal (planes, model -> type: -0.05 overall).
        if len({repr(v) for _, v in entries}) > 1:
            result[b] = {"from": a, "map": entries}
    return dict(sorted(result.items(), key=lambda item: order.index(item[0])))


def _json(value):
    if value is None:
        return None
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return str(value)


# -- generation ------------------------------------------------------------------------------------------

def _kind_of(stats: Mapping[str, Any]) -> str:
    return _KINDS[stats["encoding_type"]]


def _decoded_form(canonical: np.ndarray, kind: str) -> pd.Series:
    """Canonical values as the decoders return them (strings, float64, naive UTC datetimes)."""
    if kind == "category":
        return pd.Series(canonical, dtype=object)
    if kind == "number":
        return pd.Series(np.array([np.nan if v is None else v for v in canonical], dtype=np.float64))
    ns = np.array([np.iinfo(np.int64).min if v is None else v for v in canonical], dtype=np.int64)
    return pd.Series(ns.view("datetime64[ns]"))


def derive(frame: pd.DataFrame, derived: Mapping[str, Mapping[str, Any]], columns: Mapping[str, Mapping[str, Any]],
           *, keep: Iterable[str] = (), never_null: Iterable[str] = ()) -> pd.DataFrame:
    """``frame`` with every derived column set to ``map[A]`` where its determinant's value is in the map.

    Columns in ``keep`` (fixed by the caller: seeded, rebalanced) are left as they are; in ``never_null``
    columns (imputed) a NULL map value is not written. Rows whose A value the map lacks keep their B.
    """
    keep, never_null = set(keep), set(never_null)
    for b, spec in derived.items():
        a = spec["from"]
        if b in keep or b not in frame.columns or a not in frame.columns or len(frame) == 0:
            continue
        hit, mapped = lookup(frame[a], spec, columns, skip_null=b in never_null)
        if not hit.any():
            continue
        values = _canonical(frame[b], _kind_of(columns[b])).to_numpy(dtype=object, copy=True)
        values[hit] = mapped[hit]
        frame[b] = as_column_values(values, columns[b], name=b).set_axis(frame.index)
    return frame


def lookup(determinant: pd.Series, spec: Mapping[str, Any], columns: Mapping[str, Mapping[str, Any]], *,
           skip_null: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose ``determinant`` value is in the map ``spec`` of a derived column, and the canonical map value of
    each row (``None`` where a row is not hit). ``skip_null`` treats map entries whose value is NULL as absent."""
    a_codes, a_keys = _coded(determinant, _kind_of(columns[spec["from"]]))
    table = {k: v for k, v in spec["map"]}
    if skip_null:
        table = {k: v for k, v in table.items() if v is not None}
    keys = a_keys.tolist()
    hit = np.array([k in table for k in keys], dtype=bool)[a_codes]
    mapped = np.array([table.get(k) for k in keys], dtype=object)[a_codes]
    return hit, mapped


def as_column_values(canonical: np.ndarray, stats: Mapping[str, Any], *, name: str) -> pd.Series:
    """Canonical values of column ``name`` in its training dtype (as the decoders return them)."""
    return restore_dtype(_decoded_form(canonical, _kind_of(stats)).rename(name), stats["dtype"])


def canonical_values(values: pd.Series, stats: Mapping[str, Any]) -> np.ndarray:
    """``values`` of a column in the canonical form the maps store (an object array, NULLs as ``None``)."""
    return _canonical(values, _kind_of(stats)).to_numpy(dtype=object, copy=True)
