"""``sample_to_parquet``: partitions of blocks written as parquet parts, locally (joblib) and on Dask."""

from __future__ import annotations

import re

import joblib
import numpy as np
import pandas as pd
import pytest

from synthgen import LanguageSynthesizer, TabularSynthesizer

FLAT_COLUMNS = ["age", "workclass", "education", "sex", "hours_per_week", "income"]


@pytest.fixture(scope="module")
def flat(adult_full):
    data = adult_full[FLAT_COLUMNS].sample(n=400, random_state=0).reset_index(drop=True)
    data.insert(0, "id", np.arange(1000, 1400))
    synth = TabularSynthesizer(model="small", tgt_primary_key="id", max_epochs=1, random_state=0, verbose=False)
    return data, synth.fit(data)


def _shops_and_sales() -> tuple[pd.DataFrame, pd.DataFrame]:
    """40 shops (string keys) with 1..4 sales each (integer keys)."""
    rng = np.random.default_rng(5)
    shops = pd.DataFrame({"shop": [f"S{i:03d}" for i in range(40)], "region": rng.choice(["n", "s", "e"], 40)})
    counts = rng.integers(1, 5, 40)
    sales = pd.DataFrame({
        "sale_id": np.arange(int(counts.sum())),
        "shop": np.repeat(shops["shop"].to_numpy(), counts),
        "channel": pd.Categorical(rng.choice(["web", "store"], int(counts.sum()))),
        "amount": rng.gamma(2.0, 10.0, int(counts.sum())).round(1),
    })
    return shops, sales


@pytest.fixture(scope="module")
def two_table():
    shops, sales = _shops_and_sales()
    synth = TabularSynthesizer(model="small", tgt_primary_key="sale_id", tgt_context_key="shop",
                               ctx_primary_key="shop", max_epochs=1, random_state=0, verbose=False)
    return shops, sales, synth.fit(sales, context=shops)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


def _read_two(folder):
    return pd.read_parquet(folder / "context"), pd.read_parquet(folder / "target")


def _same_rows_everywhere(synth, tmp_path, client, n_rows, *, batch_size):
    """The rows of 1, 2 and 4 partitions, locally and on Dask (``random_state=7``), checked equal."""
    runs = [pd.read_parquet(synth.sample_to_parquet(tmp_path / f"{k}-{backend}", n_rows, n_partitions=k,
                                                    batch_size=batch_size, random_state=7,
                                                    client=client if backend == "dask" else None))
            for k in (1, 2, 4) for backend in ("local", "dask")]
    for frame in runs[1:]:
        pd.testing.assert_frame_equal(frame, runs[0])
    return runs[0]


def _same_two_table_parts_everywhere(synth, tmp_path, client, n_entities, *, batch_size, entity):
    """``(context, target)`` of 1, 2 and 4 partitions, locally and on Dask, checked equal and entity-whole."""
    runs = []
    for k in (1, 2, 4):
        for backend in ("local", "dask"):
            folder = synth.sample_to_parquet(tmp_path / f"{k}-{backend}", n_entities, n_partitions=k,
                                             batch_size=batch_size, random_state=3,
                                             client=client if backend == "dask" else None)
            runs.append(_read_two(folder))
            for part in sorted((folder / "target").glob("part.*.parquet")):
                entities = pd.read_parquet(folder / "context" / part.name)[entity]
                assert set(pd.read_parquet(part)[entity]) <= set(entities)  # whole, in the part of its entity
    context, target = runs[0]
    for other_context, other_target in runs[1:]:
        pd.testing.assert_frame_equal(other_context, context)
        pd.testing.assert_frame_equal(other_target, target)
    return context, target


def test_flat_rows_do_not_depend_on_partitions_or_backend(flat, tmp_path, dask_client):
    data, synth = flat
    first = _same_rows_everywhere(synth, tmp_path, dask_client, 600, batch_size=150)
    assert len(first) == 600
    assert first.dtypes.to_dict() == data.dtypes.to_dict()  # the training dtypes, read back by pandas
    assert list(first["id"]) == list(range(600))  # keys count up over the partitions: unique
    other_seed = pd.read_parquet(synth.sample_to_parquet(tmp_path / "seed8", 600, batch_size=150, random_state=8))
    assert not other_seed.drop(columns="id").equals(first.drop(columns="id"))


def test_parts_on_local_processes(flat, tmp_path):
    _, synth = flat
    # joblib's default (loky) starts fresh interpreters, tens of seconds on a busy machine; forked workers run
    # the same code path (benchmarks/bench_scale.py runs loky)
    with joblib.parallel_config(backend="multiprocessing"):
        folder = synth.sample_to_parquet(tmp_path / "procs", 300, n_partitions=2, batch_size=150, random_state=7,
                                         n_jobs=2)
    alone = synth.sample_to_parquet(tmp_path / "one", 300, n_partitions=1, batch_size=150, random_state=7)
    assert sorted(p.name for p in folder.iterdir()) == ["part.000000.parquet", "part.000001.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(folder), pd.read_parquet(alone))


def test_default_partitions_are_one_per_block_and_seed_data_is_sliced(flat, tmp_path):
    data, synth = flat
    seeds = data[["sex"]].head(250)
    folder = synth.sample_to_parquet(tmp_path / "seeded", seed_data=seeds, batch_size=100, random_state=1)
    assert len(list(folder.glob("part.*.parquet"))) == 3
    synthetic = pd.read_parquet(folder)
    assert synthetic["sex"].tolist() == seeds["sex"].tolist()


def test_two_table_parts_keep_entities_whole_with_unique_keys(two_table, tmp_path, dask_client):
    shops, sales, synth = two_table
    context, target = _same_two_table_parts_everywhere(synth, tmp_path, dask_client, 24, batch_size=6,
                                                       entity="shop")
    assert len(context) == 24 and context["shop"].is_unique and target["sale_id"].is_unique
    assert set(target["shop"]) <= set(context["shop"])
    assert context.dtypes.to_dict() == shops.dtypes.to_dict()
    assert target.dtypes.to_dict() == sales.dtypes.to_dict()


def test_given_context_is_sliced_into_the_parts(two_table, tmp_path):
    shops, _, synth = two_table
    folder = synth.sample_to_parquet(tmp_path / "given", 30, context=shops, n_partitions=3, batch_size=10,
                                     random_state=0)
    parts = [pd.read_parquet(p) for p in sorted((folder / "context").glob("part.*.parquet"))]
    assert [list(p["shop"]) for p in parts] == [list(shops["shop"].iloc[i:i + 10]) for i in (0, 10, 20)]
    target = pd.read_parquet(folder / "target")
    assert set(target["shop"]) <= set(shops["shop"].head(30)) and target["sale_id"].is_unique


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"n_samples": 100, "n_partitions": 3, "batch_size": 50}, ValueError,
     r"The 'n_partitions' parameter of TabularSynthesizer.sample_to_parquet \(3\) exceeds the 2 block\(s\) of 50 "
     r"that 100 rows \(entities\) make: a partition holds whole blocks of batch_size. Pass batch_size=33 or less"),
    ({"n_partitions": 0}, ValueError, "The 'n_partitions' parameter of TabularSynthesizer.sample_to_parquet must "
                                      "be an int in the range"),
    ({"n_jobs": 0}, ValueError, "The 'n_jobs' parameter of TabularSynthesizer.sample_to_parquet must be an int "
                                "other than 0 or None. Got 0 instead."),
    ({"client": "tcp://scheduler:8786"}, ValueError, "The 'client' parameter of TabularSynthesizer.sample_to_parquet "
                                                     "must be a dask.distributed.Client or None"),
    ({"return_context": True}, TypeError, r"got unexpected keyword argument\(s\) \['return_context'\]"),
    ({"sampling_top_p": 2.0}, ValueError, "The 'sampling_top_p' parameter of TabularSynthesizer.sample_to_parquet"),
    ({"context": pd.DataFrame({"a": [1]})}, ValueError, "context is given, but this model was trained without"),
])
def test_bad_arguments(flat, tmp_path, kwargs, error, message):
    _, synth = flat
    with pytest.raises(error, match=message):
        synth.sample_to_parquet(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_a_folder_with_files_is_refused(flat, tmp_path):
    _, synth = flat
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "part.000000.parquet").write_bytes(b"")
    with pytest.raises(ValueError, match="must name a new or empty folder"):
        synth.sample_to_parquet(tmp_path / "out", 10)


def test_two_table_arguments_are_checked_before_any_part(two_table, tmp_path):
    shops, sales, synth = two_table
    with pytest.raises(ValueError, match="seed_data is not supported by TabularSynthesizer.sample_to_parquet"):
        synth.sample_to_parquet(tmp_path / "a", context=shops, seed_data=sales.head(2))
    with pytest.raises(ValueError, match=r"n_samples \(41\) exceeds the 40 context rows"):
        synth.sample_to_parquet(tmp_path / "b", 41, context=shops)
    with pytest.raises(ValueError, match="context's primary key 'shop' is not unique"):
        synth.sample_to_parquet(tmp_path / "c", context=pd.concat([shops, shops]))
    assert not any(tmp_path.iterdir())


def _bad_context_tables(shops: pd.DataFrame) -> list[tuple[pd.DataFrame, str]]:
    """Context tables that generation refuses, and the message (with ``{p}`` for the parameter's name).

    The NULL and duplicate keys sit after the first 5 rows, so refusing them with ``n_samples=5`` shows that the
    whole table is checked before it is cut to the rows asked for."""
    null_key = shops.assign(shop=shops["shop"].where(shops.index != 30))
    duplicate_key = pd.concat([shops, shops.iloc[[7]]], ignore_index=True)
    return [
        (shops.drop(columns="shop"), r"{p} lacks the context columns ['shop']; it needs the context key 'shop' and "
                                     r"the columns ['region']."),
        (null_key, "{p}'s primary key 'shop' has 1 NULL values; keys must not be NULL."),
        (duplicate_key, "{p}'s primary key 'shop' is not unique: 1 duplicate values, e.g. 'S007'."),
    ]


@pytest.mark.parametrize("case", range(3))
@pytest.mark.parametrize("n_samples", [None, 5])
def test_bad_context_tables_are_refused_alike(two_table, tmp_path, case, n_samples):
    shops, _, synth = two_table
    context, message = _bad_context_tables(shops)[case]
    with pytest.raises(ValueError, match="^" + re.escape(message.format(p="context")) + "$"):
        synth.sample_to_parquet(tmp_path / "out", n_samples, context=context)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="^" + re.escape(message.format(p="context")) + "$"):
        synth.sample(n_samples, context=context)  # sample names its own keyword, as sample_to_parquet


def test_sample_names_its_own_keywords_in_context_errors(flat, two_table):
    shops, _, synth = two_table
    with pytest.raises(ValueError, match=r"^n_samples \(41\) exceeds the 40 context rows; generation makes the "
                                         r"target of each context row once\.$"):
        synth.sample(41, context=shops)
    with pytest.raises(ValueError, match=r"^context is given, but this model was trained without a context "
                                         r"table\.$"):
        flat[1].sample(5, context=shops)


# -- LanguageSynthesizer: the same partitions, generated by the language model ------------------------------

LANGUAGE_COLUMNS = ["source", "text", "retweet_count"]


@pytest.fixture(scope="module")
def language_flat(tweets_full):
    data = tweets_full[LANGUAGE_COLUMNS].sample(n=120, random_state=3).reset_index(drop=True)
    data.insert(0, "tweet", np.arange(500, 620))
    synth = LanguageSynthesizer(tgt_encoding_types={"text": "LANGUAGE_TEXT"}, tgt_primary_key="tweet",
                                max_epochs=1, random_state=0, verbose=False)
    return data, synth.fit(data)


@pytest.fixture(scope="module")
def language_two_table(tweets_full):
    tweets = tweets_full[["source", "text", "is_retweet"]].sample(n=80, random_state=4).reset_index(drop=True)
    posts = tweets[["source", "text"]].assign(post=np.arange(80), author=[f"A{i:02d}" for i in range(80)])
    authors = pd.DataFrame({"author": posts["author"], "retweeter": tweets["is_retweet"]})
    synth = LanguageSynthesizer(tgt_encoding_types={"text": "LANGUAGE_TEXT"}, tgt_primary_key="post",
                                tgt_context_key="author", ctx_primary_key="author", max_epochs=1, random_state=0,
                                verbose=False)
    return authors, posts, synth.fit(posts, context=authors)


def test_language_rows_do_not_depend_on_partitions_or_backend(language_flat, tmp_path, dask_client):
    data, synth = language_flat
    first = _same_rows_everywhere(synth, tmp_path, dask_client, 40, batch_size=10)
    assert len(first) == 40 and list(first["tweet"]) == list(range(40))  # keys count up over the partitions
    assert first.dtypes.to_dict() == data.dtypes.to_dict()
    assert first["source"].isin(list(synth.stats_["columns"]["source"]["categories"])).all()
    # a block is what sample() makes from that block's seed: the first block equals sample() with it
    block_seed = np.random.default_rng(np.random.SeedSequence(_root_entropy(7), spawn_key=(0,)))
    alone = next(synth._generator_for(None).generate(sample_size=10, batch_size=10, rng=block_seed))
    pd.testing.assert_frame_equal(first.head(10).drop(columns="tweet"), alone.drop(columns="tweet"),
                                  check_dtype=False)


def _root_entropy(random_state: int) -> int:
    from synthgen._seeding import as_generator, derive_seed

    return derive_seed(as_generator(random_state))


def test_language_seed_data_is_sliced_into_the_parts(language_flat, tmp_path):
    data, synth = language_flat
    seeds = data[["source"]].head(25)
    folder = synth.sample_to_parquet(tmp_path / "seeded", seed_data=seeds, batch_size=10, random_state=1)
    assert len(list(folder.glob("part.*.parquet"))) == 3
    assert pd.read_parquet(folder)["source"].tolist() == seeds["source"].tolist()


def test_language_two_table_parts_keep_entities_whole(language_two_table, tmp_path, dask_client):
    authors, posts, synth = language_two_table
    context, target = _same_two_table_parts_everywhere(synth, tmp_path, dask_client, 16, batch_size=4,
                                                       entity="author")
    assert target["author"].tolist() == context["author"].tolist()  # one record per entity, in context order
    assert len(context) == 16 and context["author"].is_unique and list(target["post"]) == list(range(16))
    assert context.dtypes.to_dict() == authors.dtypes.to_dict()
    assert target.dtypes.to_dict() == posts.dtypes.to_dict()
    given = synth.sample_to_parquet(tmp_path / "given", 12, context=authors, n_partitions=3, batch_size=4,
                                    random_state=0)
    parts = [pd.read_parquet(p) for p in sorted((given / "target").glob("part.*.parquet"))]
    assert [p["author"].tolist() for p in parts] == [authors["author"].iloc[i:i + 4].tolist() for i in (0, 4, 8)]


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"rebalancing": {"column": "source", "probabilities": {"web": 1.0}}}, TypeError,
     r"LanguageSynthesizer.sample_to_parquet\(\) got unexpected keyword argument\(s\) \['rebalancing'\]"),
    ({"n_partitions": 5, "n_samples": 40, "batch_size": 10}, ValueError,
     r"The 'n_partitions' parameter of LanguageSynthesizer.sample_to_parquet \(5\) exceeds the 4 block\(s\)"),
    ({"sampling_temperature": -1.0}, ValueError,
     "The 'sampling_temperature' parameter of LanguageSynthesizer.sample_to_parquet"),
    ({"context": pd.DataFrame({"a": [1]})}, ValueError, "context is given, but this model was trained without"),
])
def test_language_bad_arguments(language_flat, tmp_path, kwargs, error, message):
    _, synth = language_flat
    with pytest.raises(error, match=message):
        synth.sample_to_parquet(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()
