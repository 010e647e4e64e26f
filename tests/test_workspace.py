"""The workspace: its lock, the temporaries of killed runs, and the layout it owns."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import synthgen as sg
from synthgen import TabularSynthesizer, Workspace, WorkspaceError


def _busy(ws: Workspace, pid: int, purpose: str, since: str) -> str:
    return (f"The workspace {str(ws.root)!r} is in use by process {pid} on host {socket.gethostname()!r} "
            f"({purpose} since {since}). Wait for it to finish or use another workspace_dir; if that process is "
            f"gone, delete {str(ws.root / 'workspace.lock')!r}.")


def test_a_second_process_gets_an_error_naming_the_holder_and_a_dead_holder_is_taken_over(adult, workspace):
    ws = Workspace(workspace)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from synthgen import Workspace
            with Workspace({str(workspace)!r}).lock("fit"):
                print("locked", flush=True)
                time.sleep(120)
        """)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout.readline().strip() == "locked"
        since = sg._workspace.read_json(ws.lock_path)["since"]
        with pytest.raises(WorkspaceError) as error:
            sg.split(adult.head(100), workspace_dir=workspace)
        assert str(error.value) == _busy(ws, holder.pid, "fit", since)
        assert not ws.data_dir("tgt").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert ws.lock_path.exists()  # a killed holder leaves its lock behind ...
    sg.split(adult.head(100), workspace_dir=workspace)  # ... which the next writer takes over
    assert ws.data_dir("tgt").exists() and not ws.lock_path.exists()


def test_a_fit_into_a_workspace_another_thread_writes_fails(adult, workspace):
    ws = Workspace(workspace)
    locked, release = threading.Event(), threading.Event()

    def hold():
        with ws.lock("train"):
            locked.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        locked.wait(30)
        since = sg._workspace.read_json(ws.lock_path)["since"]
        with pytest.raises(WorkspaceError) as error:
            TabularSynthesizer(model="small", max_epochs=1, workspace_dir=workspace).fit(adult.head(100))
        assert str(error.value) == _busy(ws, os.getpid(), "train", since)
    finally:
        release.set()
        thread.join()
    assert not ws.lock_path.exists()


def test_the_lock_is_reentrant_and_released_on_errors(workspace):
    ws = Workspace(workspace)
    with pytest.raises(KeyError):
        with ws.lock("fit"):
            with ws.lock("split"):
                assert ws.lock_path.exists()
            assert ws.lock_path.exists()
            raise KeyError("boom")
    assert not ws.lock_path.exists()


def test_temporaries_of_a_killed_stage_are_removed_by_the_next_run(adult, workspace):
    ws = Workspace(workspace)
    sg.split(adult.head(200), workspace_dir=workspace, random_state=0)
    # a stage killed while writing: its staged folder (raw rows) and a half-written file stay behind
    killed = ws.staged_dir(ws.encoded_data)
    staged = killed.__enter__()
    (staged / "part.000000-trn.parquet").write_bytes(b"raw rows")
    half_written = ws.stats_path("tgt").parent / f".stats.json.{'0' * 32}.tmp"
    half_written.parent.mkdir(parents=True)
    half_written.write_text("{")
    sg.analyze(workspace_dir=workspace, random_state=0)
    assert not staged.exists() and not half_written.exists()
    assert ws.stats_path("tgt").exists()
    leftovers = [p for p in workspace.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
