"""One batched sampling loop for both model kinds, carrying the model state from token to token.

The loop feeds each batch's prompts once, then produces the record's fields in order, each from the state
left by the previous one (the LSTM's (h, c) or the transformer's KV cache), never re-running a prefix:

- a seeded field feeds the seed's tokens and keeps the seed value verbatim;
- a categorical field is sampled over its category set exactly: the log-probability of every category's
  whole token sequence (``<sep>`` included) is computed in batched forward passes from the field's start
  state, and a category is drawn from the renormalized sequence probabilities. Masking token by token
  would instead favour categories that share a prefix with others;
- a numeric, datetime or text field is sampled token by token under the masks of :mod:`._constraints`,
  which only allow tokens that keep the value completable into a valid one (so no rejection is needed).

Temperature and top-p apply to each token distribution and, for categories, to the category
distribution (``p_c ** (1 / T)``, then the nucleus); ``temperature=0`` takes the most probable choice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ._constraints import make_constraint, utf8_token_table
from ._lstm import LSTMLanguageModel
from ._records import FieldSpec, field_tokens, format_value, parse_value
from ._tokenizer import LanguageTokenizer

__all__ = ["category_log_probs", "sample_from_logits", "sample_records"]

# Logit elements per category-scoring forward pass (rows x categories x tokens x vocabulary).
_SCORING_ELEMENTS = 2**24


def sample_from_logits(
    logits: torch.Tensor,
    allowed: torch.Tensor | None,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one index per row of ``logits`` ``(n, V)`` among the ``allowed`` ones, with temperature and top-p.

    Top-p keeps the smallest set of most probable choices whose mass reaches ``top_p`` (at least one).
    """
    logits = logits.float()
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs >= top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    # Inverse-CDF draw: several times faster than torch.multinomial on CPU for many rows, and a token of
    # probability zero can never be hit (its CDF step is empty).
    cdf = probs.cumsum(-1)
    u = torch.rand(len(cdf), 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp(max=cdf.shape[1] - 1)


def _pad(sequences: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``(n, max_len)`` tokens and their mask of real tokens."""
    width = max(1, max(len(s) for s in sequences))
    tokens = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.bool)
    for i, s in enumerate(sequences):
        tokens[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, : len(s)] = True
    return tokens.to(device), mask.to(device)


def _feed(model, sequences, state, pad_id: int, device):
    """Feed one token sequence per row (each non-empty); return the new state and each row's last logits."""
    tokens, mask = _pad(sequences, pad_id, device)
    logits, state = model.step(tokens, state, None if bool(mask.all()) else mask)
    last = mask.sum(1) - 1
    return state, logits[torch.arange(len(sequences), device=device), last]


def category_log_probs(
    model,
    state,
    next_logits: torch.Tensor,
    categories: Sequence[Sequence[int]],
    pad_id: int,
    *,
    max_elements: int = _SCORING_ELEMENTS,
) -> torch.Tensor:
    """``(B, C)``: the log-probability of each category's token sequence after each row's ``state``.

    Parameters
    ----------
    model
        A model with ``step`` and ``repeat_state``.
    state
        The rows' state (left untouched: each pass works on a repeated copy).
    next_logits : torch.Tensor
        ``(B, V)``: the logits of the next token after ``state`` (they score each sequence's first token).
    categories : sequence of sequence of int
        Each category's tokens, non-empty.
    """
    if isinstance(model, LSTMLanguageModel):
        return _category_log_probs_lstm(model, state, next_logits, categories, max_elements=max_elements)
    batch = next_logits.shape[0]
    device = next_logits.device
    first = torch.tensor([c[0] for c in categories], device=device)
    scores = torch.log_softmax(next_logits.float(), -1)[:, first]
    longer = sorted((j for j, c in enumerate(categories) if len(c) > 1), key=lambda j: len(categories[j]))
    start = 0
    while start < len(longer):
        # Grow the chunk while its padded logits stay within the element budget (at least one category).
        stop = start + 1
        while (
            stop < len(longer)
            and batch * (stop + 1 - start) * (len(categories[longer[stop]]) - 1) * next_logits.shape[1]
            <= max_elements
        ):
            stop += 1
        chunk = longer[start:stop]
        inputs, mask = _pad([categories[j][:-1] for j in chunk], pad_id, device)
        targets, _ = _pad([categories[j][1:] for j in chunk], pad_id, device)
        k = len(chunk)
        logits, _ = model.step(inputs.repeat(batch, 1), model.repeat_state(state, k), mask.repeat(batch, 1))
        token_lp = (
            torch.log_softmax(logits.float(), -1)
            .gather(-1, targets.repeat(batch, 1).unsqueeze(-1))
            .squeeze(-1)
        )
        sums = (token_lp * mask.repeat(batch, 1)).sum(-1).view(batch, k)
        scores[:, torch.tensor(chunk, device=device)] += sums
        start = stop
    return scores


def _category_log_probs_lstm(
    model: LSTMLanguageModel,
    state,
    next_logits: torch.Tensor,
    categories: Sequence[Sequence[int]],
    *,
    max_elements: int,
) -> torch.Tensor:
    """:func:`category_log_probs` for the LSTM, over the trie of the categories' token prefixes.

    Categories share prefixes ("Twitter for iPhone", "Twitter for Android"): each distinct prefix is fed once
    per row, one token deep from its parent prefix's state, and its next-token log-probabilities serve every
    category through it. The generic version feeds every category's whole sequence from the field's start.
    """
    batch, vocab = next_logits.shape
    device = next_logits.device
    first = torch.tensor([c[0] for c in categories], device=device)
    scores = torch.log_softmax(next_logits.float(), -1)[:, first]
    parents: dict[tuple, int] = {(): 0}  # the prefixes of the previous depth, by their index in its states
    h, c = state[0].unsqueeze(2), state[1].unsqueeze(2)  # (layers, batch, prefixes, hidden)
    depth = 1
    while any(len(cat) > depth for cat in categories):
        through = [j for j, cat in enumerate(categories) if len(cat) > depth]
        prefixes = list(dict.fromkeys(tuple(categories[j][:depth]) for j in through))
        index = {p: i for i, p in enumerate(prefixes)}
        parent = torch.tensor([parents[p[:-1]] for p in prefixes], device=device)
        last = torch.tensor([p[-1] for p in prefixes], device=device)
        k = len(prefixes)
        layers, hidden = h.shape[0], h.shape[-1]
        out, (h_new, c_new) = model.lstm(
            model.embedding(last.repeat(batch)).unsqueeze(1),
            (h[:, :, parent].reshape(layers, batch * k, hidden), c[:, :, parent].reshape(layers, batch * k, hidden)),
        )
        out = out[:, 0].view(batch, k, hidden)
        at = torch.tensor([index[tuple(categories[j][:depth])] for j in through], device=device)
        token = torch.tensor([categories[j][depth] for j in through], device=device)
        # rows per pass so that the (rows x prefixes x vocabulary) log-probabilities stay within the budget
        rows_per_pass = max(1, max_elements // (k * vocab))
        for rows in torch.arange(batch, device=device).split(rows_per_pass):
            log_probs = torch.log_softmax(model.head(out[rows]).float(), -1)  # (rows, k, V)
            scores[rows[:, None], torch.tensor(through, device=device)[None, :]] += log_probs[:, at, token]
        h, c = h_new.view(layers, batch, k, hidden), c_new.view(layers, batch, k, hidden)
        parents = index
        depth += 1
    return scores


def _sample_categories(scores: torch.Tensor, temperature: float, top_p: float, generator) -> torch.Tensor:
    # Scores are sequence log-probabilities at temperature 1; the temperature then reshapes the category
    # distribution itself (p ** (1 / T)), which token-level temperature would not do consistently.
    return sample_from_logits(scores, None, temperature=temperature, top_p=top_p, generator=generator)


def sample_records(
    model,
    tokenizer: LanguageTokenizer,
    fields: Sequence[FieldSpec],
    prompts: Sequence[Sequence[int]],
    *,
    seeds: Mapping[str, Sequence] | None = None,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 128,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, list]:
    """Generate one record per prompt; every value is valid for its field.

    Parameters
    ----------
    model
        An :class:`~._lstm.LSTMLanguageModel` or :class:`~._hf.HFLanguageModel` on ``device``.
    tokenizer : LanguageTokenizer
    fields : sequence of FieldSpec
        The target fields, in record order.
    prompts : sequence of sequence of int
        One prompt per record (see :func:`~._records.encode_prompts`).
    seeds : mapping of str to sequence, optional
        Fixed values of some fields, one per prompt (None/NaN for missing): fed to the model as the field's
        tokens and returned verbatim.
    temperature : float, default=1.0
        0 takes the most probable choice at each step.
    top_p : float, default=1.0
        Nucleus sampling threshold in (0, 1].
    batch_size : int, default=128
    generator : torch.Generator, optional
        The source of randomness (on ``device``).
    device : str or torch.device, default="cpu"

    Returns
    -------
    dict of str to list
        Per field, the values: category strings, floats, ``pd.Timestamp``, strings, or None.
    """
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"temperature must be >= 0 and top_p in (0, 1]; got {temperature} and {top_p}.")
    seeds = dict(seeds or {})
    unknown = set(seeds) - {f.name for f in fields}
    if unknown:
        raise ValueError(f"Seeds were given for unknown fields {sorted(unknown)}.")
    n = len(prompts)
    short = {name: len(values) for name, values in seeds.items() if len(values) != n}
    if short:
        raise ValueError(f"Each seeded field needs one value per prompt ({n}); got {short}.")
    seed_tokens = {
        name: field_tokens(field, tokenizer, [format_value(field, v) for v in seeds[name]])
        for field in fields
        if (name := field.name) in seeds
    }
    category_tokens = {
        f.name: field_tokens(f, tokenizer, [*f.categories, *([None] if f.nullable else [])])
        for f in fields
        if f.kind == "categorical" and f.name not in seeds
    }
    utf8_table = utf8_token_table(tokenizer) if any(f.kind == "text" for f in fields) else None
    out: dict[str, list] = {f.name: [] for f in fields}
    pad = tokenizer.pad_id
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                rows = range(start, min(start + batch_size, n))
                state, next_logits = _feed(model, [prompts[i] for i in rows], None, pad, device)
                for field in fields:
                    if field.name in seeds:
                        state, next_logits = _feed(
                            model, [seed_tokens[field.name][i] for i in rows], state, pad, device
                        )
                        out[field.name].extend(seeds[field.name][i] for i in rows)
                    elif field.kind == "categorical":
                        options = category_tokens[field.name]
                        scores = category_log_probs(model, state, next_logits, options, pad)
                        chosen = _sample_categories(scores, temperature, top_p, generator).tolist()
                        state, next_logits = _feed(model, [options[c] for c in chosen], state, pad, device)
                        values = [*field.categories, None]
                        out[field.name].extend(values[c] for c in chosen)
                    else:
                        state, next_logits, values = _sample_field(
                            model,
                            tokenizer,
                            field,
                            state,
                            next_logits,
                            len(rows),
                            temperature=temperature,
                            top_p=top_p,
                            generator=generator,
                            utf8_table=utf8_table,
                        )
                        out[field.name].extend(values)
    finally:
        model.train(was_training)
    return out


def _sample_field(
    model, tokenizer, field, state, next_logits, batch, *, temperature, top_p, generator, utf8_table
):
    """Sample one numeric, datetime or text field token by token under its constraint machine."""
    if isinstance(model, LSTMLanguageModel):
        return _sample_field_lstm(
            model, tokenizer, field, state, next_logits, batch,
            temperature=temperature, top_p=top_p, generator=generator, utf8_table=utf8_table,
        )
    device = next_logits.device
    machine = make_constraint(field, tokenizer, batch, utf8_table)
    generated: list[list[int]] = [[] for _ in range(batch)]
    active = np.ones(batch, dtype=bool)
    while active.any():
        rows = np.flatnonzero(active)
        allowed = torch.from_numpy(machine.allowed()[rows]).to(device)
        tokens = (
            sample_from_logits(
                next_logits[torch.from_numpy(rows).to(device)],
                allowed,
                temperature=temperature,
                top_p=top_p,
                generator=generator,
            )
            .cpu()
            .numpy()
        )
        machine.advance(tokens, rows)
        for r, t in zip(rows, tokens, strict=True):
            generated[r].append(int(t))
        step_tokens = torch.full((batch, 1), tokenizer.pad_id, dtype=torch.long)
        step_tokens[rows, 0] = torch.from_numpy(tokens)
        mask = None if len(rows) == batch else torch.from_numpy(active).unsqueeze(1).to(device)
        logits, state = model.step(step_tokens.to(device), state, mask)
        live = torch.from_numpy(rows).to(device)
        next_logits[live] = logits[live, 0]
        active[rows[tokens == tokenizer.sep_id]] = False
    values = []
    for ids in generated:
        body = ids[:-1]  # drop <sep>
        text = None if body[:1] == [tokenizer.null_id] else tokenizer.decode(body)
        values.append(parse_value(field, text))
    return state, next_logits, values


def _sample_field_lstm(
    model, tokenizer, field, state, next_logits, batch, *, temperature, top_p, generator, utf8_table
):
    """:func:`_sample_field` for the LSTM, doing only the work that decides a token (same distribution).

    - Only the rows still inside the field are fed: a finished row's state is final, so a batch whose texts
      end early does not keep paying for its longest one.
    - Within a numeric or datetime field only the machine's few candidate tokens (digits, sign, point,
      literals, ``<sep>``, ``<null>``) can follow, so the output layer computes their logits alone; the full
      vocabulary's logits are computed only after ``<sep>``, for whatever comes next. Softmax, temperature
      and top-p over the candidates are those over the masked vocabulary.
    """
    device = next_logits.device
    machine = make_constraint(field, tokenizer, batch, utf8_table)
    # in vocabulary order: the inverse-CDF draw over the candidates then picks what it picks over the masked
    # vocabulary from the same random number
    candidates = torch.from_numpy(np.sort(machine.candidates)).to(device)
    restricted = len(candidates) * 4 < tokenizer.vocab_size
    weight, bias = model.head.weight, model.head.bias
    candidate_weight, candidate_bias = weight[candidates], bias[candidates]
    if state is None:  # cannot happen after a prompt, which always holds <bos>
        raise ValueError("A field needs the state after its record's prompt.")
    h, c = state[0].clone(), state[1].clone()
    generated: list[list[int]] = [[] for _ in range(batch)]
    rows = np.arange(batch)
    logits = next_logits  # per live row: full-vocabulary logits on the first step, candidates' afterwards
    on_candidates = False
    while len(rows):
        allowed = torch.from_numpy(machine.allowed()[rows]).to(device)
        if on_candidates:
            allowed = allowed[:, candidates]
        choice = sample_from_logits(logits, allowed, temperature=temperature, top_p=top_p, generator=generator)
        tokens = candidates[choice] if on_candidates else choice
        tokens_np = tokens.cpu().numpy()
        machine.advance(tokens_np, rows)
        for r, t in zip(rows.tolist(), tokens_np.tolist(), strict=True):
            generated[r].append(t)
        live = torch.from_numpy(rows).to(device)
        out, (h_live, c_live) = model.lstm(model.embedding(tokens).unsqueeze(1), (h[:, live], c[:, live]))
        h[:, live], c[:, live] = h_live, c_live
        out = out[:, 0]
        ended = tokens_np == tokenizer.sep_id
        if ended.any():
            # the next field starts from here: full-vocabulary logits
            next_logits[torch.from_numpy(rows[ended]).to(device)] = model.head(out[torch.from_numpy(ended)])
        going = torch.from_numpy(~ended).to(device)
        rows = rows[~ended]
        if restricted:
            logits = nn.functional.linear(out[going], candidate_weight, candidate_bias)
            on_candidates = True
        else:
            logits = model.head(out[going])
    values = []
    for ids in generated:
        body = ids[:-1]  # drop <sep>
        text = None if body[:1] == [tokenizer.null_id] else tokenizer.decode(body)
        values.append(parse_value(field, text))
    return (h, c), next_logits, values
