"""Inference with a trained flat model: class probabilities, predictions, log-likelihoods and imputation.

Shared by the engine functions of :mod:`synthgen.stages._inference` and the ``TabularSynthesizer`` methods.
Rows are encoded with the published statistics (the encoders that seeding uses), the model layer
(:mod:`synthgen.models.tabular._inference`) computes on the codes, and results are decoded back to the
column's values and dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from .._dtypes import restore_dtype
from .._seeding import derive_seed
from ..column_encodings import get_encoding
from ..domain import ModelEncodingType
from ..models.tabular import _inference as argn
from ..models.tabular._bundle import ModelBundle, column_specs
from ._codec import decode_table, encode_table
from ._derived_columns import as_column_values, canonical_values, derive, lookup
from ._generation import TabularGenerator, _seed_like

__all__ = ["TabularInference", "CLASS_ENCODINGS", "DEFAULT_N_ORDERS", "DEFAULT_N_DRAWS"]

# Targets with one sub-column whose codes are values: their classes are the published values.
CLASS_ENCODINGS = (ModelEncodingType.TABULAR_CATEGORICAL.value, ModelEncodingType.TABULAR_NUMERIC_DISCRETE.value)
DEFAULT_N_ORDERS = 8
DEFAULT_N_DRAWS = 100
# Conditional draws of one target column held in memory at once (rows x draws).
_DRAWS_PER_CHUNK = 200_000
# Encoding NULL cells of datetime / lat-long / character columns fills their value sub-columns with random
# observed values; a fixed generator keeps scores reproducible (those codes are not scored anyway).
_ENCODE_SEED = 0


class TabularInference:
    """Inference over rows of a flat table with the model of a :class:`TabularGenerator`.

    Parameters
    ----------
    generator : TabularGenerator
        The loaded model (its device is used).
    """

    def __init__(self, generator: TabularGenerator):
        bundle: ModelBundle = generator.bundle
        if bundle.is_sequential or bundle.ctx_stats is not None:
            raise ValueError("Inference (predict_proba, predict, score_samples, impute) is available for flat "
                             "models trained without a context table; this model has one.")
        self.model = generator.model
        self.device = generator.device
        self.columns: dict[str, dict[str, Any]] = bundle.stats["columns"]
        self.keys = set(bundle.stats.get("keys", {}).values())
        self.derived: dict[str, dict[str, Any]] = bundle.stats.get("derived_columns") or {}
        specs = column_specs(self.columns)
        self._index = {spec.name: j for j, spec in enumerate(specs)}
        names = [s for spec in specs for s in spec.sub_columns]
        self._sub_names = names
        position = {name: i for i, name in enumerate(names)}
        self._subs = {spec.name: [position[s] for s in spec.sub_columns] for spec in specs}

    # -- validation and encoding -------------------------------------------------------------------------
    def _frame(self, X, method: str) -> tuple[pd.DataFrame, list[str]]:
        """``X`` reset to a positional index and the model columns it holds (in model order)."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{method} expects a pandas DataFrame; got {type(X).__name__} instead.")
        unknown = [c for c in X.columns if c not in self.columns and c not in self.keys]
        if unknown:
            raise ValueError(f"{method}: X has columns the model does not know: {unknown}; "
                             f"known columns are {list(self.columns)}.")
        present = [c for c in self.columns if c in X.columns]
        return X.reset_index(drop=True), present

    def check_target(self, target, method: str) -> str:
        """``target`` if it names a model column, else a ``ValueError`` that lists the columns."""
        if not isinstance(target, str) or target not in self.columns:
            raise ValueError(f"{method}: target {target!r} is not a column of the model; "
                             f"known columns are {list(self.columns)}.")
        return target

    def _encode(self, frame: pd.DataFrame, present: list[str]) -> torch.Tensor:
        codes = torch.zeros(len(frame), len(self._sub_names), dtype=torch.long)
        if present:
            encoded = encode_table(frame, {c: self.columns[c] for c in present}, table="X",
                                   rng=np.random.default_rng(_ENCODE_SEED))
            for column in present:
                for sub in self._subs[column]:
                    codes[:, sub] = torch.from_numpy(np.asarray(encoded[self._sub_names[sub]], dtype=np.int64))
        return codes.to(self.device)

    def _excluded_codes(self, column: str, *, null: bool) -> dict[int, list[int]]:
        """Per sub-column of ``column``, its protected codes (and NULL codes when ``null``)."""
        stats = self.columns[column]
        encoding = get_encoding(stats["encoding_type"])
        subs = dict(zip(stats["cardinalities"], self._subs[column], strict=True))
        excluded: dict[int, list[int]] = {}
        # a categorical without published categories has nothing but its rare code (which decodes to NULL)
        bare = stats["encoding_type"] == ModelEncodingType.TABULAR_CATEGORICAL.value and not stats["categories"]
        for kind in ({} if bare else encoding.rare_codes(stats), encoding.null_codes(stats) if null else {}):
            for sub, code in kind.items():
                excluded.setdefault(subs[sub], []).append(int(code))
        return excluded

    # -- classes -----------------------------------------------------------------------------------------
    def _class_codes(self, target: str, method: str) -> np.ndarray:
        stats = self.columns[target]
        if stats["encoding_type"] not in CLASS_ENCODINGS:
            raise ValueError(f"{method}: target {target!r} is encoded as {stats['encoding_type']}; class "
                             f"probabilities need a column encoded as one of {list(CLASS_ENCODINGS)}. "
                             "predict gives the conditional median of numeric and datetime targets.")
        (sub,) = self._subs[target]
        excluded = set(self._excluded_codes(target, null=True).get(sub, []))
        excluded |= set(get_encoding(stats["encoding_type"]).rare_codes(stats).values())
        kept = [c for c in range(self.model.spec.cardinalities[sub]) if c not in excluded]
        if not kept:
            raise ValueError(f"{method}: target {target!r} has no published classes (value protection hid them "
                             "all, or it holds only NULLs).")
        return np.array(kept, dtype=np.int64)

    def _decode(self, target: str, codes: np.ndarray) -> pd.Series:
        stats = self.columns[target]
        named = {self._sub_names[s]: codes[:, i] for i, s in enumerate(self._subs[target])}
        return decode_table(named, {target: stats}, rng=np.random.default_rng(_ENCODE_SEED))[target]

    def classes(self, target: str, method: str = "classes") -> np.ndarray:
        """The classes of a categorical or discrete target, in the order of ``predict_proba``'s columns."""
        target = self.check_target(target, method)
        return self._decode(target, self._class_codes(target, method)[:, None]).to_numpy()

    # -- conditionals ------------------------------------------------------------------------------------
    def _given(self, frame: pd.DataFrame, present: list[str], target: str, method: str) -> tuple[list[int], torch.Tensor]:
        given = [c for c in present if c != target]
        if not given:
            raise ValueError(f"{method}: X holds none of the model's columns besides the target {target!r}; "
                             f"pass at least one of {[c for c in self.columns if c != target]}.")
        return [self._index[c] for c in given], self._encode(frame, given)

    def predict_proba(self, X, target: str, *, batch_size: int | None = None,
                      method: str = "predict_proba") -> np.ndarray:
        """``(n, n_classes)`` probabilities of the target's classes given the other columns of ``X``."""
        target = self.check_target(target, method)
        frame, present = self._frame(X, method)
        keep = torch.as_tensor(self._class_codes(target, method), device=self.device)
        given, codes = self._given(frame, present, target, method)
        (sub,) = self._subs[target]
        logits = argn.conditional_logits(self.model, codes, given, sub,
                                         batch_size=batch_size or argn.DEFAULT_INFERENCE_BATCH)
        # Protected (_RARE_) and NULL codes are left out and the published classes renormalised.
        proba = torch.softmax(logits.index_select(1, keep).double(), dim=1).cpu().numpy()
        hit, mapped = self._mapped(frame, target)
        if hit.any():
            classes = canonical_values(pd.Series(self.classes(target, method)), self.columns[target])
            position = {value: j for j, value in enumerate(classes.tolist())}
            column = np.array([position.get(value, -1) for value in mapped[hit].tolist()], dtype=np.int64)
            rows = np.flatnonzero(hit)[column >= 0]
            proba[rows] = 0.0
            proba[rows, column[column >= 0]] = 1.0
        return proba

    def _mapped(self, frame: pd.DataFrame, target: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``frame`` whose target is fixed by a derived-column map (its determinant is given and in the
        map, the map value not NULL), and that value per row (canonical form)."""
        spec = self.derived.get(target)
        if spec is None or spec["from"] not in frame.columns:
            return np.zeros(len(frame), dtype=bool), np.full(len(frame), None, dtype=object)
        return lookup(frame[spec["from"]], spec, self.columns, skip_null=True)

    def predict(self, X, target: str, *, n_draws: int = DEFAULT_N_DRAWS, rng: np.random.Generator,
                batch_size: int | None = None) -> pd.Series:
        """The most likely class of a categorical / discrete target, else the median of conditional draws."""
        target = self.check_target(target, "predict")
        if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 1:
            raise ValueError(f"n_draws must be an int in the range [1, inf); got {n_draws!r} instead.")
        stats = self.columns[target]
        if stats["encoding_type"] in CLASS_ENCODINGS:
            proba = self.predict_proba(X, target, batch_size=batch_size, method="predict")
            codes = self._class_codes(target, "predict")[proba.argmax(axis=1)]
            return self._decode(target, codes[:, None]).rename(target)
        frame, present = self._frame(X, "predict")
        given, codes = self._given(frame, present, target, "predict")
        column = self._index[target]
        excluded = self._excluded_codes(target, null=True)
        subs = self._subs[target]
        # a row's draws come from a hash of the seed and its given codes: they do not depend on other rows
        given_subs = [s for j in given for s in argn.sub_columns_of(self.model, j)]
        keys = _row_keys(codes[:, given_subs].cpu().numpy(), derive_seed(rng))
        medians = []
        chunk = max(1, _DRAWS_PER_CHUNK // int(n_draws))
        for start in range(0, len(frame), chunk):
            rows = codes[start:start + chunk].repeat_interleave(int(n_draws), dim=0)
            uniforms = torch.from_numpy(_uniforms(keys[start:start + chunk], int(n_draws), len(subs)))
            drawn = argn.sample_column(self.model, rows, given, column, suppressed=excluded,
                                       uniforms=uniforms.to(self.device),
                                       batch_size=batch_size or argn.DEFAULT_INFERENCE_BATCH)
            named = {self._sub_names[s]: drawn[:, s].cpu().numpy() for s in subs}
            values = decode_table(named, {target: stats}, rng=rng, restore_dtypes=False)[target]
            medians.append(_row_medians(values, int(n_draws)))
        if not medians:
            return restore_dtype(pd.Series([], dtype=float, name=target), stats["dtype"])
        predicted = restore_dtype(pd.concat(medians, ignore_index=True).rename(target), stats["dtype"])
        hit, mapped = self._mapped(frame, target)
        if hit.any():  # a derived target is its determinant's map value, as in generation
            values = canonical_values(predicted, stats)
            values[hit] = mapped[hit]
            predicted = as_column_values(values, stats, name=target)
        return predicted

    # -- likelihood --------------------------------------------------------------------------------------
    def log_likelihood(self, X, *, n_orders: int = DEFAULT_N_ORDERS, seed: int = 0,
                       batch_size: int | None = None, method: str = "score_samples") -> np.ndarray:
        """``log P`` (nats) of the encoded values of the columns of ``X``, the other columns marginalised."""
        if isinstance(n_orders, bool) or not isinstance(n_orders, (int, np.integer)) or n_orders < 1:
            raise ValueError(f"n_orders must be an int in the range [1, inf); got {n_orders!r} instead.")
        frame, present = self._frame(X, method)
        if not present:
            raise ValueError(f"{method}: X holds none of the model's columns {list(self.columns)}.")
        codes = self._encode(frame, present)
        counted = torch.zeros(codes.shape, dtype=torch.bool)
        for column in present:
            counted[:, self._subs[column]] = True
            flag = self._null_flag(column)
            if flag is not None:  # a NULL is its flag; the value sub-columns then hold filler codes
                null = torch.from_numpy(frame[column].isna().to_numpy())
                counted[null.nonzero().squeeze(1)[:, None], torch.tensor(self._subs[column])[None, :]] = False
                counted[null, flag] = True
        generator = torch.Generator().manual_seed(int(seed))
        ll = argn.log_likelihood(self.model, codes, [self._index[c] for c in present], counted=counted,
                                 n_orders=int(n_orders), generator=generator,
                                 batch_size=batch_size or argn.DEFAULT_INFERENCE_BATCH)
        return ll.cpu().numpy()

    def _null_flag(self, column: str) -> int | None:
        stats = self.columns[column]
        nulls = get_encoding(stats["encoding_type"]).null_codes(stats)
        if "nan" in nulls and len(self._subs[column]) > 1:
            return self._subs[column][list(stats["cardinalities"]).index("nan")]
        return None

    # -- imputation --------------------------------------------------------------------------------------
    def _derive(self, decoded: pd.DataFrame, observed: pd.DataFrame, filled: list[str]) -> None:
        """Set the imputed derived columns of ``decoded`` from their (observed or imputed) determinants, never to
        NULL (see :mod:`._derived_columns`)."""
        derived = {b: spec for b, spec in self.derived.items() if b in filled}
        if not derived:
            return
        rows = decoded.copy()
        for spec in derived.values():
            if spec["from"] not in rows.columns and spec["from"] in observed.columns:
                rows[spec["from"]] = observed[spec["from"]]
        derive(rows, derived, self.columns, never_null=filled)
        for b in derived:
            decoded[b] = rows[b]

    def impute(self, X, *, rng: np.random.Generator, batch_size: int | None = None) -> pd.DataFrame:
        """``X`` with its NULL cells (in model columns) drawn given the row's non-NULL cells; the rest verbatim."""
        frame, present = self._frame(X, "impute")
        if not present:
            raise ValueError(f"impute: X holds none of the model's columns {list(self.columns)}.")
        missing = frame[present].isna().to_numpy()
        out = X.copy()
        todo = missing.any(axis=1)
        if not todo.any():
            return out
        codes = self._encode(frame, present).cpu()
        generator = torch.Generator(device=self.device).manual_seed(derive_seed(rng))
        patterns, group = np.unique(missing[todo], axis=0, return_inverse=True)
        rows_todo = np.flatnonzero(todo)
        imputed = {c: np.empty(len(frame), dtype=object) for c in present}
        for p, pattern in enumerate(patterns):
            rows = rows_todo[group.reshape(-1) == p]
            observed = [c for c, m in zip(present, pattern, strict=True) if not m]
            filled = [c for c, m in zip(present, pattern, strict=True) if m]
            order = argn.given_order(self.model, [self._index[c] for c in observed],
                                     [self._index[c] for c in filled])
            fixed = {s: codes[rows, s].to(self.device) for c in observed for s in self._subs[c]}
            suppressed: dict[int, dict[int, float]] = {}
            for c in self.columns:
                for s, blocked in self._excluded_codes(c, null=c in filled).items():
                    suppressed[s] = dict.fromkeys(blocked, 0.0)
            drawn = self.model.sample(len(rows), fixed_codes=fixed or None, column_order=order,
                                      fixed_probs=suppressed or None, generator=generator,
                                      batch_size=batch_size or 4096).cpu().numpy()
            named = {self._sub_names[s]: drawn[:, s] for c in filled for s in self._subs[c]}
            decoded = decode_table(named, {c: self.columns[c] for c in filled}, rng=rng)
            self._derive(decoded, frame.iloc[rows].reset_index(drop=True), filled)
            for c in filled:
                imputed[c][rows] = decoded[c].astype(object).to_numpy()
        for c, m in zip(present, missing.T, strict=True):
            if m.any():
                out[c] = _filled(X[c], m, imputed[c][m], self.columns[c]["dtype"])
        return out


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, element-wise over uint64 (wrapping arithmetic): a well-spread 64-bit hash."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _row_keys(codes: np.ndarray, seed: int) -> np.ndarray:
    """A 64-bit key per row from ``seed`` and the row's codes."""
    keys = _mix(np.full(len(codes), seed, dtype=np.uint64))
    for column in codes.T:
        keys = _mix(keys ^ column.astype(np.uint64))
    return keys


def _uniforms(keys: np.ndarray, n_draws: int, width: int) -> np.ndarray:
    """``(len(keys) * n_draws, width)`` numbers in ``[0, 1)``: draw ``d`` of row ``r`` hashes ``(keys[r], d, j)``."""
    counters = np.arange(1, n_draws * width + 1, dtype=np.uint64).reshape(n_draws, width)
    bits = _mix(keys[:, None, None] ^ _mix(counters)[None, :, :])
    return ((bits >> np.uint64(11)).astype(np.float64) * 2.0**-53).reshape(-1, width)


def _row_medians(values: pd.Series, n_draws: int) -> pd.Series:
    """Per block of ``n_draws`` consecutive values, their median (datetimes stay datetimes)."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        naive = values.dt.tz_convert(None) if getattr(values.dtype, "tz", None) is not None else values
        array = naive.to_numpy()
        ints = array.view(np.int64).astype(np.float64)
        ints[np.isnat(array)] = np.nan
        median = np.nanmedian(ints.reshape(-1, n_draws), axis=1)
        result = pd.Series(np.rint(median).astype(np.int64).view(array.dtype))
        tz = getattr(values.dtype, "tz", None)
        return result.dt.tz_localize("UTC").dt.tz_convert(tz) if tz is not None else result
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.Series(np.nanmedian(numbers.reshape(-1, n_draws), axis=1))


def _filled(original: pd.Series, mask: np.ndarray, values: np.ndarray, fitted_dtype: str) -> pd.Series:
    """``original`` with ``values`` in its ``mask`` cells, in ``original``'s dtype where they fit."""
    merged = original.astype(object).to_numpy(copy=True)
    merged[mask] = values
    series = pd.Series(merged, index=original.index, name=original.name)
    if isinstance(original.dtype, pd.CategoricalDtype):
        new = pd.Index(pd.unique(series.dropna())).difference(original.cat.categories)
        return series.astype(pd.CategoricalDtype(original.cat.categories.append(new)))
    cast = _seed_like(series, original)
    if cast.dtype == object and original.dtype != object:
        return restore_dtype(series, fitted_dtype)
    return cast
