"""The language model core: tokenizer, LSTM and HF models, record format, training and constrained decoding."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from synthgen.models.language import (
    SPECIAL_TOKENS,
    EncodedRecords,
    FieldSpec,
    HFLanguageModel,
    LanguageTokenizer,
    LSTMConfig,
    LSTMLanguageModel,
    category_log_probs,
    encode_prompts,
    encode_records,
    is_valid,
    make_batch,
    record_nll,
    sample_records,
    train_language_model,
    train_tokenizer,
)
from synthgen.models.language._train import _pad_records


@pytest.fixture(scope="module")
def tweets(tweets_full) -> pd.DataFrame:
    return tweets_full.sample(n=240, random_state=7).reset_index(drop=True)


@pytest.fixture(scope="module")
def tokenizer(tweets) -> LanguageTokenizer:
    return train_tokenizer([*tweets["text"], *tweets["source"]], vocab_size=700, min_frequency=3)


def _tweet_fields(tweets: pd.DataFrame, max_tokens: int = 48) -> list[FieldSpec]:
    return [
        FieldSpec("source", "categorical", categories=sorted(tweets["source"].unique())),
        FieldSpec("retweet_count", "numeric", min_value=0, max_value=int(tweets["retweet_count"].max())),
        FieldSpec(
            "created_at",
            "datetime",
            min_value=tweets["created_at"].min(),
            max_value=tweets["created_at"].max(),
        ),
        FieldSpec("text", "text", max_tokens=max_tokens),
    ]


def _tweet_records(tweets, tokenizer, fields) -> EncodedRecords:
    target = {f.name: tweets[f.name].tolist() for f in fields}
    return encode_records(fields, tokenizer, target, {"is_retweet": tweets["is_retweet"].tolist()})


def _tiny_llama(folder, vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)  # weight init of the throw-away model only
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


class _Noise(torch.nn.Module):
    """The most adversarial "model": fresh random logits at every position."""

    def __init__(self, vocab_size: int, scale: float = 4.0):
        super().__init__()
        self.vocab_size, self.scale = vocab_size, scale
        self.generator = torch.Generator().manual_seed(11)

    def step(self, tokens, state, mask=None):
        return torch.randn(*tokens.shape, self.vocab_size, generator=self.generator) * self.scale, None

    @staticmethod
    def repeat_state(state, n):
        return None


class _Bigram(torch.nn.Module):
    """Logits that depend on the last real token only: exact sequence probabilities are easy to compute."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table

    def step(self, tokens, state, mask=None):
        mask = torch.ones_like(tokens, dtype=torch.bool) if mask is None else mask
        last = tokens.gather(1, (mask.sum(1, keepdim=True) - 1).clamp(min=0)).squeeze(1)
        new_state = torch.where(mask.any(1), last, state) if state is not None else last
        return self.table[tokens], new_state

    @staticmethod
    def repeat_state(state, n):
        return state.repeat_interleave(n)


# --- tokenizer ---------------------------------------------------------------------------------------------


def test_tokenizer_round_trip_with_unicode(tweets, tokenizer, tmp_path):
    texts = [*tweets["text"].head(50), "emoji 😀🇺🇸 and ünïcödé — “quotes”", "", "a <sep> b <null>"]
    ids = tokenizer.encode_batch(texts)
    assert [tokenizer.decode(i) for i in ids] == texts
    # Special tokens are never read from raw text.
    assert tokenizer.sep_id not in ids[-1] and tokenizer.null_id not in ids[-1]
    assert 261 < tokenizer.vocab_size <= 700
    for restored in (
        LanguageTokenizer.from_bytes(tokenizer.to_bytes()),
        LanguageTokenizer.load(tokenizer.save(tmp_path).parent),
    ):
        assert restored.encode_batch(texts) == ids
        assert restored.vocab_size == tokenizer.vocab_size
    with pytest.raises(FileNotFoundError, match="No tokenizer"):
        LanguageTokenizer.load(tmp_path / "missing")


def test_tokenizer_bytes_only_learns_nothing(tweets):
    tokenizer = train_tokenizer(tweets["text"], bytes_only=True)
    assert tokenizer.vocab_size == 5 + 256
    text = tweets["text"].iloc[0] + " 😀"
    ids = tokenizer.encode_batch([text])[0]
    assert len(ids) == len(text.encode("utf-8"))  # one token per byte: no merge was learned
    assert tokenizer.decode(ids) == text


def test_decode_drops_an_unfinished_character(tokenizer):
    ids = tokenizer.encode_chars("ok 😀")
    assert tokenizer.decode(ids[:-1]) == "ok "


# --- models ------------------------------------------------------------------------------------------------


def _check_step_matches_forward(model, vocab_size):
    model.eval()
    tokens = torch.randint(5, vocab_size, (3, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(tokens)
        logits, state = model.step(tokens[:, :4], None)
        torch.testing.assert_close(logits, full[:, :4], atol=1e-5, rtol=1e-4)
        # Row 0 feeds two real tokens and padding, row 1 only padding: both must continue unharmed.
        mask = torch.ones(3, 3, dtype=torch.bool)
        mask[0, 2:] = False
        mask[1] = False
        logits, state = model.step(tokens[:, 4:7], state, mask)
        torch.testing.assert_close(logits[2], full[2, 4:7], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(logits[0, :2], full[0, 4:6], atol=1e-5, rtol=1e-4)
        # A branch made with repeat_state continues each row twice, exactly like the row itself.
        branch = model.repeat_state(state, 2)
        next_tokens = torch.stack([tokens[0, 6], tokens[1, 4], tokens[2, 7]]).unsqueeze(1)
        logits, _ = model.step(next_tokens, state)
        torch.testing.assert_close(logits[0, 0], full[0, 6], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(logits[1, 0], full[1, 4], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(logits[2, 0], full[2, 7], atol=1e-5, rtol=1e-4)
        branched, _ = model.step(next_tokens.repeat_interleave(2, 0), branch)
        torch.testing.assert_close(branched[0::2], logits, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(branched[1::2], logits, atol=1e-5, rtol=1e-4)


def test_lstm_step_matches_forward():
    torch.manual_seed(0)
    model = LSTMLanguageModel(LSTMConfig(vocab_size=300, embedding_size=16, hidden_size=24))
    _check_step_matches_forward(model, 300)


def test_lstm_default_size_is_about_3m_parameters():
    model = LSTMLanguageModel(LSTMConfig(vocab_size=5000))
    assert 3.0e6 < sum(p.numel() for p in model.parameters()) < 3.2e6


def test_hf_step_with_kv_cache_matches_forward(tmp_path):
    model = HFLanguageModel.from_pretrained(_tiny_llama(tmp_path / "llama", 300), lora=False)
    _check_step_matches_forward(model, 300)


def test_hf_missing_model_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        HFLanguageModel.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="broken"):
        HFLanguageModel.from_pretrained(tmp_path / "broken")


def test_lora_adapter_save_load_round_trip(tmp_path):
    base = _tiny_llama(tmp_path / "llama", 300)
    model = HFLanguageModel.from_pretrained(base)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert model.model.peft_config["default"].r == 16
    with torch.no_grad():  # LoRA B starts at zero; make the adapter matter
        for name, p in trainable.items():
            if "lora_B" in name:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(3))
    model.eval()
    tokens = torch.randint(5, 300, (2, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(tokens)
        plain = HFLanguageModel.from_pretrained(base, lora=False).eval()(tokens)
    assert not torch.allclose(expected, plain, atol=1e-3)
    model.save_adapter(tmp_path / "adapter")
    for merge in (True, False):
        restored = HFLanguageModel.from_adapter(base, tmp_path / "adapter", merge=merge).eval()
        with torch.no_grad():
            torch.testing.assert_close(restored(tokens), expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(FileNotFoundError, match="adapter"):
        HFLanguageModel.from_adapter(base, tmp_path / "none")


def _pretrained_folder(folder, tweets):
    """A stand-in for a downloaded model: a byte-level tokenizer.json of its own and a Llama of its size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(tweets["text"], trainer=trainer)
    _tiny_llama(folder, tokenizer.get_vocab_size())
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder


def test_pretrained_model_learns_the_added_record_tokens(tmp_path, tweets):
    folder = _pretrained_folder(tmp_path / "pretrained", tweets)
    tokenizer = LanguageTokenizer.from_pretrained(folder)
    base_vocab = tokenizer.vocab_size - len(tokenizer.added_ids)
    assert len(tokenizer.added_ids) == 5 and min(tokenizer.added_ids) == base_vocab
    assert tokenizer.decode(tokenizer.encode_batch(["x <|endoftext|> <sep>"])[0]) == "x <|endoftext|> <sep>"
    model = HFLanguageModel.from_pretrained(folder, vocab_size=tokenizer.vocab_size)
    assert model.vocab_size == tokenizer.vocab_size
    fields = [FieldSpec("source", "categorical", categories=sorted(tweets["source"].unique()))]
    records = encode_records(fields, tokenizer, {"source": tweets["source"].head(16).tolist()})
    train_language_model(
        model,
        records,
        None,
        pad_id=tokenizer.pad_id,
        max_epochs=1,
        learn_rate=0.05,
        generator=torch.Generator(),
    )
    model.save_adapter(tmp_path / "adapter")
    restored = HFLanguageModel.from_adapter(
        folder, tmp_path / "adapter", vocab_size=tokenizer.vocab_size
    ).eval()
    tokens = torch.tensor([records.sequences[0]])
    with torch.no_grad():
        torch.testing.assert_close(restored(tokens), model.eval()(tokens), atol=1e-4, rtol=1e-4)
        # The record tokens' rows moved away from their common starting point (the mean of the old rows).
        rows = restored.model.get_input_embeddings().weight[tokenizer.added_ids]
    assert float(rows.std(0).mean()) > 0
    from safetensors import safe_open

    with safe_open(str(tmp_path / "adapter" / "adapter_model.safetensors"), "pt") as saved:
        shapes = {key: saved.get_slice(key).get_shape() for key in saved.keys()}  # noqa: SIM118
    assert not [
        k for k, shape in shapes.items() if tokenizer.vocab_size in shape
    ]  # no whole embedding matrix
    out = sample_records(restored, tokenizer, fields, encode_prompts(tokenizer, None, 8))
    assert set(out["source"]) <= set(fields[0].categories)
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        LanguageTokenizer.from_pretrained(tmp_path)


def test_tokenizer_must_be_byte_level():
    from tokenizers import Tokenizer, models

    with pytest.raises(ValueError, match="byte-level"):
        LanguageTokenizer(
            Tokenizer(
                models.WordLevel(
                    {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", "<sep>", "<null>", "a"])},
                    unk_token="a",
                )
            )
        )


def _byte_level_without(missing: set[int]) -> LanguageTokenizer:
    """A byte-level BPE tokenizer (no merges) whose vocabulary lacks the symbols of the bytes ``missing``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    from synthgen.models.language._tokenizer import _BYTE_TO_CHAR

    symbols = [*SPECIAL_TOKENS, *(c for b, c in _BYTE_TO_CHAR.items() if b not in missing)]
    tokenizer = Tokenizer(models.BPE({t: i for i, t in enumerate(symbols)}, []))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    return LanguageTokenizer(tokenizer)


def test_pretrained_vocabulary_may_lack_control_bytes_but_refuses_them():
    # SmolLM2's vocabulary lacks bytes that never occur in UTF-8 and a few control characters: usable, but a
    # text holding such a character is refused rather than silently losing it.
    tokenizer = _byte_level_without({0x04, 0x1D, 0xC0, 0xF1, 0xFF})
    assert tokenizer.decode(tokenizer.encode_batch(["héllo 😀"])[0]) == "héllo 😀"
    with pytest.raises(ValueError, match=r"character '\\x04'"):
        tokenizer.encode_batch(["ok", "bad \x04 text"])
    with pytest.raises(ValueError, match="cannot encode"):
        tokenizer.encode_batch(["plane 4: \U00040001"])
    with pytest.raises(ValueError, match="not byte-level: 1 of the 256"):
        _byte_level_without({ord("a")})


# --- records and training ----------------------------------------------------------------------------------


def test_records_layout(tweets, tokenizer):
    fields = _tweet_fields(tweets)
    records = _tweet_records(tweets.head(5), tokenizer, fields)
    sep = tokenizer.sep_id
    for sequence, prompt_length in zip(records.sequences, records.prompt_lengths, strict=True):
        assert sequence[0] == tokenizer.bos_id and sequence[-1] == tokenizer.eos_id
        assert sequence[prompt_length - 1] == sep
        assert sequence[prompt_length:].count(sep) == len(fields)
    # Numbers and datetimes are laid out one character per token.
    row = tweets.iloc[0]
    start = records.prompt_lengths[0]
    body = records.sequences[0][start:]
    fields_tokens, current = [], []
    for t in body[:-1]:
        if t == sep:
            fields_tokens.append(current)
            current = []
        else:
            current.append(t)
    assert tokenizer.decode(fields_tokens[1]) == str(row["retweet_count"])
    assert len(fields_tokens[1]) == len(str(row["retweet_count"]))
    assert tokenizer.decode(fields_tokens[2]) == row["created_at"].strftime("%Y-%m-%dT%H:%M:%S")


def test_loss_ignores_prompt_tokens(tweets, tokenizer):
    fields = _tweet_fields(tweets)
    records = _tweet_records(tweets.head(6), tokenizer, fields)
    tokens, lengths, prompts = _pad_records(records, tokenizer.pad_id)
    inputs, labels, mask = make_batch(tokens, lengths, prompts)
    for i in range(len(records)):
        target_positions = (labels[i] != -100).nonzero().flatten()
        assert target_positions.min() == prompts[i] - 1  # the last prompt position predicts the first target
        assert target_positions.max() == lengths[i] - 2
        assert len(target_positions) == lengths[i] - prompts[i]
    torch.manual_seed(0)
    model = LSTMLanguageModel(LSTMConfig(tokenizer.vocab_size, 16, 16)).eval()

    class Scrambled(torch.nn.Module):
        """The same model, but with arbitrary predictions at every position that predicts a prompt token."""

        def forward(self, x, attention_mask=None):
            logits = model(x)
            predicts_prompt = torch.arange(1, x.shape[1] + 1)[None, :] < prompts[:, None]
            noise = torch.randn(logits.shape, generator=torch.Generator().manual_seed(0)) * 10
            return torch.where(predicts_prompt.unsqueeze(-1), noise, logits)

    with torch.no_grad():
        nll = record_nll(model, inputs, labels, mask)
        torch.testing.assert_close(record_nll(Scrambled(), inputs, labels, mask), nll)
        # The same loss by hand: the target tokens' log-probabilities only.
        logp = torch.log_softmax(model(inputs), -1)
        for i in range(len(records)):
            seq = records.sequences[i]
            by_hand = -sum(float(logp[i, t - 1, seq[t]]) for t in range(prompts[i], lengths[i]))
            assert math.isclose(float(nll[i]), by_hand, rel_tol=1e-4)


def test_training_lowers_validation_loss_and_resumes(tweets, tokenizer):
    fields = _tweet_fields(tweets, max_tokens=32)
    records = _tweet_records(tweets, tokenizer, fields)
    trn = EncodedRecords(records.sequences[:200], records.prompt_lengths[:200])
    val = EncodedRecords(records.sequences[200:], records.prompt_lengths[200:])
    torch.manual_seed(0)
    model = LSTMLanguageModel(LSTMConfig(tokenizer.vocab_size, 32, 48))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        untrained = float(record_nll(model.eval(), *make_batch(*_pad_records(val, tokenizer.pad_id))).mean())
    result = train_language_model(
        model, trn, val, pad_id=tokenizer.pad_id, max_epochs=2, learn_rate=5e-3, generator=generator
    )
    losses = [h["val_loss"] for h in result.history]
    assert losses[-1] < 0.9 * untrained
    assert result.stop_reason == "max_epochs"
    more = train_language_model(
        model, trn, val, pad_id=tokenizer.pad_id, max_epochs=3, generator=generator, resume_state=result.state
    )
    assert len(more.history) == 3 and more.history[:2] == result.history


# --- decoding ----------------------------------------------------------------------------------------------


def _adversarial_fields() -> list[FieldSpec]:
    return [
        FieldSpec("kind", "categorical", categories=("a", "ab", "abc", "b", "x y z"), nullable=True),
        FieldSpec("signed", "numeric", min_value=-3.25, max_value=1207.5, scale=2),
        FieldSpec("positive", "numeric", min_value=17, max_value=20),
        FieldSpec("negative", "numeric", min_value=-1e6, max_value=-0.5, scale=1, nullable=True),
        FieldSpec("stamp", "datetime", min_value="2019-12-30 23:59:58", max_value="2020-03-01 00:00:03"),
        FieldSpec(
            "day",
            "datetime",
            min_value="1999-02-27",
            max_value="2000-02-29",
            resolution="date",
            nullable=True,
        ),
        FieldSpec("text", "text", max_tokens=12, nullable=True),
    ]


@pytest.mark.parametrize("kind", ["noise", "lstm"])
def test_decoding_is_always_valid(tokenizer, kind):
    torch.manual_seed(0)
    if kind == "noise":
        model = _Noise(tokenizer.vocab_size)
    else:
        model = LSTMLanguageModel(LSTMConfig(tokenizer.vocab_size, 16, 16))
    fields = _adversarial_fields()
    n = 400
    prompts = encode_prompts(tokenizer, {"ctx": np.arange(n) % 3}, n)
    out = sample_records(
        model, tokenizer, fields, prompts, batch_size=200, generator=torch.Generator().manual_seed(1)
    )
    for field in fields:
        values = out[field.name]
        assert len(values) == n
        invalid = [v for v in values if not is_valid(field, v)]
        assert not invalid, (field.name, invalid[:5])
    if kind == "noise":  # random logits reach the corners of every constraint
        signed = pd.Series(out["signed"])
        assert signed.min() < 0 and (signed.round(0) != signed).any()
        assert pd.Series(out["stamp"]).dt.year.nunique() == 2
        assert pd.Series(out["day"]).isna().any() and pd.Series(out["day"]).notna().any()
        assert any(isinstance(t, str) and t for t in out["text"])


class _Wrapped(torch.nn.Module):
    """An LSTM behind the generic model interface (``step``, ``repeat_state``): decoded the generic way."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def step(self, tokens, state, mask=None):
        return self.model.step(tokens, state, mask)

    def repeat_state(self, state, n):
        return self.model.repeat_state(state, n)


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.7, 0.9)])
def test_lstm_fast_decoding_matches_the_generic_loop(tokenizer, temperature, top_p):
    # The LSTM's own field loop (live rows only, candidate logits within numbers and datetimes) draws from
    # the same distributions with the same random numbers as the generic loop: the same records come out.
    torch.manual_seed(3)
    model = LSTMLanguageModel(LSTMConfig(tokenizer.vocab_size, 16, 16)).eval()
    fields = _adversarial_fields()
    n = 60
    prompts = encode_prompts(tokenizer, {"ctx": np.arange(n) % 7}, n)
    out = [
        sample_records(m, tokenizer, fields, prompts, temperature=temperature, top_p=top_p, batch_size=25,
                       generator=torch.Generator().manual_seed(5))
        for m in (model, _Wrapped(model))
    ]
    for field in fields:
        pd.testing.assert_series_equal(pd.Series(out[0][field.name]), pd.Series(out[1][field.name]))
    assert len(set(out[0]["text"])) > 30  # rows end at different steps: the live-row bookkeeping matters


def test_seeded_fields_are_kept_verbatim(tokenizer):
    fields = _adversarial_fields()
    seeds = {
        "kind": ["not a category", None, "ab"],
        "positive": [99.5, 18, None],
        "text": ["hi 😀", "", None],
    }
    prompts = encode_prompts(tokenizer, None, 3)
    out = sample_records(_Noise(tokenizer.vocab_size), tokenizer, fields, prompts, seeds=seeds)
    for name, values in seeds.items():
        assert out[name] == values
    assert all(is_valid(f, v) for f in fields if f.name not in seeds for v in out[f.name])


def test_hf_model_decodes_valid_records(tmp_path, tokenizer):
    model = HFLanguageModel.from_pretrained(_tiny_llama(tmp_path / "llama", tokenizer.vocab_size))
    fields = _adversarial_fields()
    prompts = encode_prompts(tokenizer, {"ctx": ["a", "much longer context value", None, "b"] * 10}, 40)
    out = sample_records(
        model, tokenizer, fields, prompts, batch_size=20, generator=torch.Generator().manual_seed(0)
    )
    assert all(is_valid(f, v) for f in fields for v in out[f.name])


def _bigram_case():
    tokenizer = train_tokenizer([], bytes_only=True)
    table = (
        torch.randn(tokenizer.vocab_size, tokenizer.vocab_size, generator=torch.Generator().manual_seed(4))
        * 2
    )
    # Make the shared-prefix structure matter: after "a" the end token is unlikely, "b" likely.
    a, b = tokenizer.byte_ids[ord("a")], tokenizer.byte_ids[ord("b")]
    table[a, tokenizer.sep_id] = -1.0
    table[a, b] = 3.0
    return tokenizer, _Bigram(table), table


def test_category_scores_are_exact_sequence_log_probs():
    tokenizer, model, table = _bigram_case()
    categories = ["a", "ab", "abc", "b"]
    options = [[*tokenizer.encode_chars(c), tokenizer.sep_id] for c in categories]
    prompt = torch.tensor([[tokenizer.bos_id]])
    next_logits, state = model.step(prompt, None)
    scores = category_log_probs(model, state, next_logits[:, -1], options, tokenizer.pad_id, max_elements=1)
    logp = torch.log_softmax(table, -1)
    for j, option in enumerate(options):
        by_hand = sum(
            float(logp[prev, tok]) for prev, tok in zip([tokenizer.bos_id, *option[:-1]], option, strict=True)
        )
        assert math.isclose(float(scores[0, j]), by_hand, rel_tol=1e-5)


@pytest.mark.parametrize("max_elements", [1, 2**24])
def test_lstm_category_trie_scores_match_the_generic_ones(tokenizer, max_elements):
    torch.manual_seed(2)
    model = LSTMLanguageModel(LSTMConfig(tokenizer.vocab_size, 16, 16)).eval()
    categories = ["Twitter for iPhone", "Twitter for Android", "Twitter", "T", "Instagram", "Twitter Web Client"]
    options = [[*ids, tokenizer.sep_id] for ids in tokenizer.encode_batch(categories)]
    assert len({tuple(o[:1]) for o in options}) < len(options)  # shared prefixes: the trie matters
    prompts = torch.tensor([[tokenizer.bos_id, int(tokenizer.byte_ids[ord(ch)])] for ch in "abc"])
    with torch.no_grad():
        logits, state = model.step(prompts, None)
        scores = category_log_probs(model, state, logits[:, -1], options, tokenizer.pad_id,
                                    max_elements=max_elements)
        generic = category_log_probs(_Wrapped(model), state, logits[:, -1], options, tokenizer.pad_id)
    torch.testing.assert_close(scores, generic, rtol=1e-5, atol=1e-5)


def test_category_sampling_matches_sequence_probabilities():
    tokenizer, model, table = _bigram_case()
    categories = ("a", "ab", "abc", "b")
    field = FieldSpec("c", "categorical", categories=categories)
    options = [[*tokenizer.encode_chars(c), tokenizer.sep_id] for c in categories]
    logp = torch.log_softmax(table, -1)
    exact = np.array(
        [
            math.exp(sum(float(logp[p, t]) for p, t in zip([tokenizer.bos_id, *o[:-1]], o, strict=True)))
            for o in options
        ]
    )
    exact /= exact.sum()
    n = 4000
    prompts = [[tokenizer.bos_id]] * n
    out = sample_records(
        model, tokenizer, [field], prompts, batch_size=n, generator=torch.Generator().manual_seed(0)
    )
    observed = pd.Series(out["c"]).value_counts(normalize=True).reindex(categories, fill_value=0).to_numpy()
    assert np.abs(observed - exact).max() < 4 * math.sqrt(0.25 / n)

    # Masking token by token (allowing only continuations of some category) would sample from a different
    # distribution in this case: check that the case tells the two apart.
    def masked(prev: int, allowed: list[int], token: int) -> float:
        return float(torch.softmax(table[prev, allowed], -1)[allowed.index(token)])

    bos, sep = tokenizer.bos_id, tokenizer.sep_id
    a, b, c = (int(tokenizer.byte_ids[ord(ch)]) for ch in "abc")
    p_a = masked(bos, [a, b], a)
    token_level = np.array(
        [
            p_a * masked(a, [sep, b], sep),
            p_a * masked(a, [sep, b], b) * masked(b, [sep, c], sep),
            p_a * masked(a, [sep, b], b) * masked(b, [sep, c], c),
            masked(bos, [a, b], b),
        ]
    )
    assert math.isclose(token_level.sum(), 1.0, rel_tol=1e-6)
    assert np.abs(token_level - exact).max() > 0.05


def _entropy(values) -> float:
    p = pd.Series(values).value_counts(normalize=True).to_numpy()
    return float(-(p * np.log(p)).sum())


def test_temperature_and_top_p_move_diversity(tokenizer):
    torch.manual_seed(0)
    model = LSTMLanguageModel(LSTMConfig(tokenizer.vocab_size, 16, 16))
    with torch.no_grad():
        model.head.weight.mul_(20)  # a peaked (but random) distribution, so the settings matter
    fields = [
        FieldSpec("cat", "categorical", categories=tuple(f"c{i}" for i in range(12))),
        FieldSpec("text", "text", max_tokens=6),
    ]
    prompts = [[tokenizer.bos_id]] * 400

    def sample(**kwargs):
        return sample_records(
            model, tokenizer, fields, prompts, generator=torch.Generator().manual_seed(0), **kwargs
        )

    cold, base, hot = sample(temperature=0.5), sample(), sample(temperature=2.0)
    assert sample() == base  # same generator seed, same records
    nucleus = sample(top_p=0.3)
    greedy = sample(temperature=0)

    def diversity(out, name):
        # Texts: the entropy of their pooled characters (whole texts are nearly all distinct).
        return _entropy(out[name] if name == "cat" else list("".join(out[name])))

    for name in ("cat", "text"):
        assert diversity(cold, name) < diversity(base, name) < diversity(hot, name)
        assert diversity(nucleus, name) < diversity(base, name)
        assert len(set(greedy[name])) == 1


def test_sampling_arguments_are_checked(tokenizer):
    with pytest.raises(ValueError, match="top_p"):
        sample_records(_Noise(tokenizer.vocab_size), tokenizer, [], [[1]], top_p=0)
    with pytest.raises(ValueError, match="unknown fields"):
        sample_records(_Noise(tokenizer.vocab_size), tokenizer, [], [[1]], seeds={"x": [1]})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "categorical", "categories": ()}, "categories"),
        ({"kind": "numeric", "min_value": 3, "max_value": 1}, "bounds"),
        ({"kind": "numeric", "min_value": 0.2, "max_value": 0.3, "scale": 0}, "No value"),
        ({"kind": "numeric", "min_value": 0, "max_value": 1e15, "scale": 6}, "digits"),
        ({"kind": "datetime", "min_value": "2020-01-02", "max_value": "2020-01-01"}, "bounds"),
        ({"kind": "texts"}, "kind"),
    ],
)
def test_field_spec_errors_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match) as err:
        FieldSpec("col_x", **kwargs)
    assert "col_x" in str(err.value)
