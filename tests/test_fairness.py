"""Fair generation (statistical parity): the minimum-KL tilt, generation with it, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from synthgen import FairnessConfig, TabularSynthesizer
from synthgen.models.tabular import ColumnSpec, FlatARGN
from synthgen.models.tabular._fairness import FairnessTilt, GroupIndex, fit_tilt
from synthgen.models.tabular._sampling import sample_categorical

SEX = {"target_column": "income", "sensitive_columns": ["sex"]}
SEX_RACE = {"target_column": "income", "sensitive_columns": ["sex", "race"]}


def group_rates(frame: pd.DataFrame, sensitive, target="income", positive=">50K") -> pd.DataFrame:
    hits = frame[target].astype(str).eq(positive)
    return hits.groupby([frame[c].astype(str) for c in sensitive]).agg(["mean", "size"])


def assert_parity(frame, sensitive, *, min_size=200, z=4.5, slack=0.01, target="income", positive=">50K"):
    """Every group of ``min_size`` rows has the overall share of the positive class, up to sampling noise."""
    overall = frame[target].astype(str).eq(positive).mean()
    rates = group_rates(frame, sensitive, target, positive)
    rates = rates[rates["size"] >= min_size]
    assert len(rates) >= 2
    noise = z * np.sqrt(overall * (1 - overall) / rates["size"])
    gaps = (rates["mean"] - overall).abs()
    assert (gaps <= noise + slack).all(), pd.DataFrame({"gap": gaps, "allowed": noise + slack})


def pair_tvd(a: pd.DataFrame, b: pd.DataFrame, x: str, y: str) -> float:
    pa = a.groupby([a[x].astype(str), a[y].astype(str)]).size() / len(a)
    pb = b.groupby([b[x].astype(str), b[y].astype(str)]).size() / len(b)
    pa, pb = pa.align(pb, fill_value=0.0)
    return 0.5 * float((pa - pb).abs().sum())


# --- the tilt (pure tensors) -------------------------------------------------------------------------------


def random_probs(n, k, seed):
    return torch.softmax(torch.randn(n, k, generator=torch.Generator().manual_seed(seed)) * 1.5, dim=1)


def tilted(probs, table, keys):
    weights = probs * table.bias[table.rows(keys)].exp()
    return weights / weights.sum(1, keepdim=True)


def test_fit_tilt_gives_every_group_the_marginal_and_keeps_odds_within_groups():
    probs = random_probs(3000, 4, seed=0)
    keys = torch.randint(0, 3, (3000,), generator=torch.Generator().manual_seed(1)) * 10
    # make the groups unfair: group 20 prefers class 0
    probs[keys == 20] = torch.softmax(probs[keys == 20].log() + torch.tensor([2.0, 0, 0, 0]), dim=1)
    table = fit_tilt(probs, keys)
    assert table.keys.tolist() == [0, 10, 20]
    fair = tilted(probs, table, keys)
    marginal = probs.mean(0)
    for key in (0, 10, 20):
        torch.testing.assert_close(fair[keys == key].mean(0), marginal, atol=1e-5, rtol=0)
    assert table.residual < 1e-5
    # minimum-KL: within a group every row is multiplied by the same per-class factor
    group = keys == 20
    factors = fair[group] / probs[group]
    factors = factors / factors[:, :1]
    torch.testing.assert_close(factors, factors[:1].expand_as(factors), atol=1e-4, rtol=1e-4)


def test_small_and_unseen_groups_share_the_pooled_bias():
    probs = random_probs(500, 3, seed=2)
    keys = torch.cat([torch.zeros(480, dtype=torch.long), torch.full((12,), 7), torch.full((8,), 9)])
    table = fit_tilt(probs, keys, min_group_rows=20)
    assert table.keys.tolist() == [0]
    pooled = len(table.keys)
    assert table.rows(torch.tensor([0, 7, 9, 123])).tolist() == [0, pooled, pooled, pooled]
    # the pool (keys 7 and 9 together) reaches the marginal
    fair = tilted(probs, table, keys)
    torch.testing.assert_close(fair[keys > 0].mean(0), probs.mean(0), atol=1e-5, rtol=0)


def test_classes_no_row_can_draw_stay_impossible():
    probs = random_probs(400, 3, seed=3)
    probs[:, 2] = 0.0
    probs = probs / probs.sum(1, keepdim=True)
    keys = torch.arange(400) % 2
    table = fit_tilt(probs, keys)
    assert torch.isinf(table.bias[:, 2]).all()
    assert (tilted(probs, table, keys)[:, 2] == 0).all()


def test_group_keys_combine_context_and_drawn_codes():
    groups = GroupIndex(context_subs=[1], context_cards=[3], subs=[0, 2], cards=[2, 4])
    context = torch.tensor([[5, 0], [5, 2], [5, 2]])
    codes = torch.tensor([[1, 0, 1], [9, 9, 9], [3, 3, 0]])  # (n_sub, n)
    keys = groups.keys(groups.context_keys(context, 3, torch.device("cpu")), codes)
    assert keys.tolist() == [(0 * 2 + 1) * 4 + 3, (2 * 2 + 0) * 4 + 3, (2 * 2 + 1) * 4 + 0]
    with pytest.raises(ValueError, match="too many combinations"):
        GroupIndex(subs=[0, 1, 2], cards=[2**21, 2**21, 2**21])


def test_tilt_is_applied_after_temperature_and_nucleus():
    logits = torch.randn(2000, 3, generator=torch.Generator().manual_seed(4))
    keys = (torch.arange(2000) % 2).long()
    logits[keys == 1, 0] += 2.0
    tilt = FairnessTilt(0, GroupIndex(context_subs=[0], context_cards=[2]))
    bound = tilt.bind(keys)
    codes = torch.zeros(1, 2000, dtype=torch.long)
    sample_categorical(logits, temperature=0.7, reweight=lambda w: bound(w, codes))
    fitted = tilt.fitted().bind(keys)
    draws = torch.stack([
        sample_categorical(logits, temperature=0.7, reweight=lambda w: fitted(w, codes),
                           generator=torch.Generator().manual_seed(s))
        for s in range(20)
    ])
    share = [(draws[:, keys == g] == 0).float().mean() for g in (0, 1)]
    assert abs(share[0] - share[1]) < 0.015


def test_a_deferred_tilt_fits_on_the_recorded_rows_and_draws_them():
    n = 40_000
    keys = (torch.arange(n) % 2).long()
    probs = torch.where(keys[:, None] == 0, torch.tensor([0.8, 0.2]), torch.tensor([0.3, 0.7]))
    tilt = FairnessTilt(0, GroupIndex(context_subs=[0], context_cards=[2]), mode="defer")
    codes = torch.zeros(1, n // 2, dtype=torch.long)
    for half in (slice(0, n // 2), slice(n // 2, n)):  # two sub-batches, drawn together at the end
        assert torch.equal(tilt.bind(keys[half])(probs[half], codes), probs[half])
    drawn = tilt.draw(torch.Generator().manual_seed(0))
    assert drawn.shape == (n,) and tilt.residual < 1e-5 and tilt.unfair_gap == pytest.approx(0.5)
    share = [(drawn[keys == g] == 0).float().mean() for g in (0, 1)]
    assert abs(share[0] - 0.55) < 0.015 and abs(share[1] - 0.55) < 0.015
    with pytest.raises(ValueError, match="mode 'defer'"):
        tilt.fitted().draw()


def test_flat_network_refuses_an_order_with_the_target_first():
    model = FlatARGN.from_preset([ColumnSpec("s", ("cat",), (2,)), ColumnSpec("t", ("cat",), (2,))], size="small")
    tilt = FairnessTilt(1, GroupIndex(subs=[0], cards=[2]))
    with pytest.raises(ValueError, match="before its target"):
        model.sample(10, column_order=[1, 0], tilt=tilt)


# --- generation on adult ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adult_synth():
    from conftest import load_dataset

    frame = load_dataset("adult").sample(n=3000, random_state=11).reset_index(drop=True)
    synth = TabularSynthesizer(model="small", max_epochs=4, random_state=0)
    return synth.fit(frame), frame


@pytest.fixture(scope="module")
def unfair_sample(adult_synth):
    synth, _ = adult_synth
    return synth.sample(12_000, random_state=1)


@pytest.mark.parametrize("fairness", [SEX, SEX_RACE], ids=["sex", "sex-race"])
def test_parity_is_reached_and_other_relations_kept(adult_synth, unfair_sample, fairness):
    synth, _ = adult_synth
    fair = synth.sample(12_000, fairness=fairness, random_state=2)
    sensitive = fairness["sensitive_columns"]
    # the model learned the real dependence, and fairness removes it
    unfair_rates = group_rates(unfair_sample, ["sex"])["mean"]
    assert unfair_rates["Male"] - unfair_rates["Female"] > 0.1
    assert_parity(fair, sensitive)
    assert_parity(fair, ["sex"], min_size=1000, z=4.0, slack=0.005)
    # pairs without the target keep their joint distribution (up to the noise between two unfair samples)
    again = synth.sample(12_000, random_state=3)
    for x, y in [("education", "occupation"), ("marital_status", "relationship"), ("sex", "race"),
                 ("workclass", "occupation"), ("sex", "relationship")]:
        noise = pair_tvd(unfair_sample, again, x, y)
        assert pair_tvd(fair, unfair_sample, x, y) <= noise + 0.05, (x, y)


def test_small_batches_share_the_biases_of_one_calibration_batch(adult_synth):
    synth, _ = adult_synth
    # batches below 5,000 rows cannot fit their own biases well: one calibration batch serves them all
    fair = synth.sample(12_000, batch_size=2_000, fairness=SEX, random_state=8)
    assert_parity(fair, ["sex"], min_size=1000)


def test_fairness_config_and_dict_give_the_same_rows(adult_synth):
    synth, _ = adult_synth
    first = synth.sample(500, fairness=FairnessConfig(**SEX), random_state=4)
    second = synth.sample(500, fairness={"targetColumn": "income", "sensitiveColumns": "sex"}, random_state=4)
    pd.testing.assert_frame_equal(first, second)


def test_fairness_with_seed_data_rebalancing_and_temperature(adult_synth):
    synth, frame = adult_synth
    seeds = frame[["age", "sex"]].sample(n=8000, replace=True, random_state=5).reset_index(drop=True)
    fair = synth.sample(seed_data=seeds, fairness=SEX, sampling_temperature=0.8,
                        rebalancing={"column": "race", "probabilities": {"Black": 0.3}}, random_state=6)
    pd.testing.assert_series_equal(fair["age"], seeds["age"], check_dtype=False)
    assert (fair["sex"] == seeds["sex"]).all()
    assert abs((fair["race"] == "Black").mean() - 0.3) < 0.03
    assert_parity(fair, ["sex"], min_size=1000)


def test_generate_stage_writes_fair_data(adult_synth, tmp_path):
    import synthgen as sg

    synth, _ = adult_synth
    sg.generate(workspace_dir=synth.workspace_, sample_size=6000, fairness=SEX, random_state=7)
    fair = sg.read_synthetic_data(synth.workspace_)
    assert len(fair) == 6000
    assert_parity(fair, ["sex"], min_size=1000)


@pytest.mark.parametrize(
    ("fairness", "message"),
    [
        ({"target_column": "salary", "sensitive_columns": ["sex"]}, r"'salary' is not a column of the model"),
        ({"target_column": "income", "sensitive_columns": ["gender"]}, r"does not know: \['gender'\]"),
        ({"target_column": "income", "sensitive_columns": ["age"]}, r"sensitive column 'age' must be a categorical"),
        ({"target_column": "age", "sensitive_columns": ["sex"]}, r"target_column 'age' must be a categorical"),
        ({"target_column": "income", "sensitive_columns": ["income"]}, "must not be one of the sensitive_columns"),
        ({"target_column": "income"}, "sensitive_columns"),
        ({"target": "income", "sensitive_columns": ["sex"]}, "has no field 'target'"),
    ],
)
def test_bad_fairness_gets_a_clear_error(adult_synth, fairness, message):
    synth, _ = adult_synth
    with pytest.raises(ValueError, match=message):
        synth.sample(10, fairness=fairness)


def test_a_seeded_target_is_refused(adult_synth):
    synth, frame = adult_synth
    with pytest.raises(ValueError, match="'income' is given in seed_data"):
        synth.sample(seed_data=frame[["income"]].head(5), fairness=SEX)


def test_a_fixed_order_model_needs_the_sensitive_columns_before_the_target():
    frame = pd.DataFrame({"target": ["a", "b"] * 100, "sex": ["F", "M", "M", "F"] * 50})
    synth = TabularSynthesizer(model="small", max_epochs=1, enable_flexible_generation=False, random_state=0)
    synth.fit(frame)
    with pytest.raises(ValueError, match=r"sensitive columns \['sex'\] come after the fairness target"):
        synth.sample(10, fairness={"target_column": "target", "sensitive_columns": ["sex"]})
    # in training order the sensitive column comes first: fine
    synth.fit(frame[["sex", "target"]])
    assert len(synth.sample(10, fairness={"target_column": "target", "sensitive_columns": ["sex"]})) == 10


# --- two-table models ------------------------------------------------------------------------------------


def _unfair_two_table(n_subjects: int, *, sequential: bool, seed: int = 0):
    """Subjects of group A say "yes" 75 % of the time, subjects of group B 25 %."""
    rng = np.random.default_rng(seed)
    ctx = pd.DataFrame({"id": np.arange(n_subjects), "group": rng.choice(["A", "B"], n_subjects, p=[0.6, 0.4])})
    rows = []
    for subject, group in zip(ctx["id"], ctx["group"], strict=True):
        for _ in range(int(rng.integers(2, 7)) if sequential else 1):
            yes = rng.random() < (0.75 if group == "A" else 0.25)
            rows.append((subject, "yes" if yes else "no", str(rng.choice(["x", "y", "z"]))))
    return ctx, pd.DataFrame(rows, columns=["id", "label", "kind"])


@pytest.mark.parametrize("sequential", [False, True], ids=["flat-context", "sequential"])
def test_two_table_parity_with_a_context_sensitive_column(sequential):
    ctx, tgt = _unfair_two_table(300 if sequential else 1000, sequential=sequential)
    synth = TabularSynthesizer(model="small", max_epochs=8 if sequential else 6, tgt_context_key="id",
                               ctx_primary_key="id", random_state=0).fit(tgt, context=ctx)
    assert synth.stats_["is_sequential"] is sequential
    many = pd.DataFrame({"id": np.arange(6000), "group": np.repeat(["A", "B"], 3000)})
    fairness = {"target_column": "label", "sensitive_columns": ["group"]}
    unfair = synth.sample(context=many, random_state=1).merge(many, on="id")
    fair = synth.sample(context=many, fairness=fairness, random_state=1).merge(many, on="id")
    rates = group_rates(unfair, ["group"], "label", "yes")["mean"]
    assert rates["A"] - rates["B"] > 0.2
    assert_parity(fair, ["group"], target="label", positive="yes", min_size=1000)
    # fewer subjects than a batch that fits its own biases: a calibration batch fits them
    few = many.iloc[::4]
    calibrated = synth.sample(context=few, fairness=fairness, random_state=3).merge(few, on="id")
    assert_parity(calibrated, ["group"], target="label", positive="yes", min_size=500)
    if sequential:  # a step column as a second sensitive column works too
        both = synth.sample(context=many, fairness={**fairness, "sensitive_columns": ["group", "kind"]},
                            random_state=2).merge(many, on="id")
        assert_parity(both, ["group", "kind"], target="label", positive="yes", min_size=1000)


def test_a_context_column_cannot_be_the_target():
    ctx, tgt = _unfair_two_table(200, sequential=False)
    synth = TabularSynthesizer(model="small", max_epochs=1, tgt_context_key="id", ctx_primary_key="id",
                               random_state=0).fit(tgt, context=ctx)
    with pytest.raises(ValueError, match="'group' is a column of the context table"):
        synth.sample(fairness={"target_column": "group", "sensitive_columns": ["label"]})
