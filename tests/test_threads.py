"""The torch thread count of fit and sample: chosen for the work, set for the call, restored afterwards."""

import pytest
import torch

import synthgen as sg
from synthgen import TabularSynthesizer
from synthgen._threads import AUTO_MIN_WORK, resolve_n_threads, torch_threads

CPU = torch.device("cpu")


@pytest.fixture
def three_threads():
    """torch at 3 threads, a count no choice of synthgen's makes on these tests' models."""
    previous = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(previous)


def test_torch_threads_sets_the_count_for_the_block_and_restores_it(three_threads):
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 3
    with pytest.raises(KeyError), torch_threads(2):
        assert torch.get_num_threads() == 2
        raise KeyError
    assert torch.get_num_threads() == 3


def test_automatic_choice(monkeypatch):
    monkeypatch.setattr("synthgen._threads.available_cores", lambda: 6.5)
    assert resolve_n_threads(None, device=CPU, work=AUTO_MIN_WORK / 2) == 1  # small model: one thread
    assert resolve_n_threads(None, device=CPU, work=AUTO_MIN_WORK) == 4  # large, idle cores: at most 4
    assert resolve_n_threads(None, device=torch.device("cuda"), work=AUTO_MIN_WORK) == 1
    monkeypatch.setattr("synthgen._threads.available_cores", lambda: 1.7)
    assert resolve_n_threads(None, device=CPU, work=AUTO_MIN_WORK) == 1  # busy machine: one thread
    assert resolve_n_threads(3, device=CPU, work=1) == 3  # an explicit count is used as given


def _recorded_thread_counts(monkeypatch) -> list[int]:
    calls = []
    original = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), original(n)))
    return calls


@pytest.mark.parametrize("n_threads, during", [(None, 1), (2, 2)])
def test_fit_and_sample_set_the_threads_and_restore_them(adult, three_threads, monkeypatch, n_threads, during):
    calls = _recorded_thread_counts(monkeypatch)
    synth = TabularSynthesizer(model="small", max_epochs=1, n_threads=n_threads, random_state=0)
    synth.fit(adult.head(300))
    assert calls == [during, 3] and torch.get_num_threads() == 3
    synth.sample(50)
    assert calls == [during, 3, during, 3] and torch.get_num_threads() == 3


def test_inference_methods_run_on_n_threads(adult, three_threads, monkeypatch):
    synth = TabularSynthesizer(model="small", max_epochs=1, n_threads=2, random_state=0).fit(adult.head(300))
    calls = _recorded_thread_counts(monkeypatch)
    rows = adult.iloc[300:320]
    synth.predict_proba(rows.drop(columns="income"), target="income")
    synth.score_samples(rows)
    synth.impute(rows.assign(age=None))
    assert calls == [2, 3] * 3 and torch.get_num_threads() == 3


def test_engine_train_and_generate_run_on_n_threads(adult, workspace, three_threads):
    sg.split(adult.head(300), workspace_dir=workspace, random_state=0)
    sg.analyze(workspace_dir=workspace, random_state=0)
    sg.encode(workspace_dir=workspace, random_state=0)
    seen = []
    sg.train(model="small", max_epochs=1, n_threads=2, workspace_dir=workspace, random_state=0,
             update_progress=lambda **kw: seen.append(torch.get_num_threads()))
    assert set(seen[1:]) == {2} and torch.get_num_threads() == 3  # seen[0]: the call before training
    seen.clear()
    sg.generate(sample_size=20, n_threads=2, workspace_dir=workspace, random_state=0,
                update_progress=lambda **kw: seen.append(torch.get_num_threads()))
    assert seen[-1] == 2 and torch.get_num_threads() == 3


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_invalid_n_threads(adult, value):
    message = (r"The 'n_threads' parameter of TabularSynthesizer must be an int in the range \[1, inf\) or None\. "
               rf"Got {value!r} instead\.")
    with pytest.raises(ValueError, match=message):
        TabularSynthesizer(n_threads=value).fit(adult.head(50))
