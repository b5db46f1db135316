"""The thread count that follows the free cores (`stvfm_plugin.cpu_threads`), with fake clocks and counters, and in a
real run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from stvfm_plugin import cpu_threads
from stvfm_plugin.cpu_threads import ThreadGovernor, read_cpu_ticks, read_own_ticks, threads_follow_free_cores
from stvfm_plugin.run import available_cores, main

from conftest import STID_TINY, write_config


class Machine:
    """A fake clock and tick counters: `others` cores busy elsewhere, `own` cores used by this process."""

    def __init__(self, others: float = 0.0, own: float = 2.0) -> None:
        self.now, self.busy, self.own_ticks = 0.0, 0, 0
        self.others, self.own = others, own
        self.set_to: list[int] = []

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.busy += round(100 * seconds * (self.others + self.own))
        self.own_ticks += round(100 * seconds * self.own)

    def governor(self, max_threads: int = 2) -> ThreadGovernor:
        return ThreadGovernor(max_threads, [0, 1], set_threads=self.set_to.append, clock=lambda: self.now,
                              read_busy=lambda: self.busy, read_own=lambda: self.own_ticks, ticks_per_s=100)


@pytest.mark.parametrize("max_threads, others, expected", [
    (2, 0.0, 2), (2, 0.2, 2), (2, 0.5, 1), (2, 1.0, 1), (2, 1.9, 1), (2, 5.0, 1),
    (4, 0.0, 4), (4, 1.0, 3), (4, 2.0, 2), (4, 2.5, 1), (8, 3.2, 5), (1, 0.0, 1)])
def test_threads_are_the_cores_the_others_leave_free(max_threads, others, expected):
    assert Machine().governor(max_threads).target(others) == expected


def test_a_busy_neighbour_takes_a_thread_after_two_agreeing_samples_and_gives_it_back():
    machine = Machine()
    governor = machine.governor()
    machine.advance(0.5)
    assert governor.poll() is None  # less than a second since the last sample: not sampled
    machine.advance(0.75)  # times exact in binary: a second apart is never 0.999...
    assert governor.poll() is None and governor.threads == 2  # quiet
    machine.others = 1.0
    machine.advance(1.0)
    assert governor.poll() is None and governor.threads == 2 and machine.set_to == []  # one sample is not enough
    machine.advance(1.0)
    old, new, others = governor.poll()
    assert (old, new, machine.set_to, governor.threads) == (2, 1, [1], 1) and others == pytest.approx(1.0)
    machine.advance(1.0)
    assert governor.poll() is None  # still busy: unchanged
    machine.others = 0.0
    machine.advance(1.0)
    assert governor.poll() is None  # the neighbour left: confirmed at the next sample
    machine.advance(1.0)
    assert governor.poll()[:2] == (1, 2) and machine.set_to == [1, 2]


def test_a_short_burst_elsewhere_changes_nothing():
    machine = Machine()
    governor = machine.governor()
    for others in (1.0, 0.0, 1.0, 0.0, 0.1):
        machine.others = others
        machine.advance(1.0)
        assert governor.poll() is None
    assert machine.set_to == [] and governor.threads == 2


def test_own_threads_are_not_counted_as_a_neighbour():
    machine = Machine(others=0.0, own=2.0)  # this process keeps both cores busy itself
    governor = machine.governor()
    for _ in range(3):
        machine.advance(1.0)
        assert governor.poll() is None
    assert governor.others == pytest.approx(0.0)


@pytest.mark.parametrize("case", ["no counters", "one thread"])
def test_the_governor_stays_out_where_it_cannot_read_the_cores_or_has_nothing_to_give(case):
    machine = Machine(others=2.0)
    if case == "no counters":
        governor = ThreadGovernor(2, [0, 1], set_threads=machine.set_to.append, clock=lambda: machine.now,
                                  read_busy=lambda: None, read_own=lambda: 0)
    else:
        governor = machine.governor(max_threads=1)
    assert not governor.active
    for _ in range(3):
        machine.advance(1.0)
        assert governor.poll() is None
    assert machine.set_to == []


def test_counters_are_read_from_proc_files(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  90 0 30 500 10 0 0 0 0 0\n"
                    "cpu0 40 0 10 250 5 1 2 3 0 0\n"
                    "cpu1 50 0 20 250 5 0 0 0 0 0\n"
                    "intr 12345\n")
    assert read_cpu_ticks([0], str(stat)) == 40 + 10 + 1 + 2 + 3  # idle and iowait are not busy
    assert read_cpu_ticks([0, 1], str(stat)) == 56 + 70
    assert read_cpu_ticks([0], str(tmp_path / "missing")) is None
    own = tmp_path / "self-stat"
    own.write_text("4242 (a (strange) name) R 1 2 3 4 5 6 7 8 9 10 17 23 0 0 20 0 4 0\n")
    assert read_own_ticks(str(own)) == 17 + 23  # utime + stime, after a command name with spaces and parentheses
    assert read_own_ticks(str(tmp_path / "missing")) is None


def test_only_an_unfixed_thread_count_follows_the_free_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads_follow_free_cores(None)
    assert not threads_follow_free_cores(2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert not threads_follow_free_cores(None)
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert threads_follow_free_cores(None)


@pytest.mark.skipif(available_cores() < 2, reason="needs 2 cores: with one there is no thread to give")
def test_a_real_run_gives_a_thread_to_a_busy_neighbour_and_logs_it(tiny_dataset, workdir, monkeypatch, capsys):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cpu_threads, "INTERVAL_S", 0.0)  # sample before every step
    busy = iter(range(0, 10 ** 12, 10 ** 6))  # the other processes take far more than every core
    monkeypatch.setattr(cpu_threads, "read_cpu_ticks", lambda cpus, stat_path="/proc/stat": next(busy))
    before = torch.get_num_threads()
    try:
        assert main(["-c", str(write_config(workdir, STID_TINY)), "--run-dir", "run", "--set", "num_epochs=1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    err = capsys.readouterr().err
    assert "fewer while other processes keep cores busy" in err
    assert f"CPU threads: {available_cores()} -> 1 (other processes keep" in err
    assert json.loads(Path("run/run_info.json").read_text())["cpu_threads"] == sorted({1, available_cores()})


def test_a_fixed_thread_count_is_never_changed(tiny_dataset, workdir, monkeypatch, capsys):
    monkeypatch.setattr(cpu_threads, "INTERVAL_S", 0.0)
    busy = iter(range(0, 10 ** 12, 10 ** 6))
    monkeypatch.setattr(cpu_threads, "read_cpu_ticks", lambda cpus, stat_path="/proc/stat": next(busy))
    before = torch.get_num_threads()
    try:
        assert main(["-c", str(write_config(workdir, STID_TINY)), "--run-dir", "run", "--threads", "2",
                     "--set", "num_epochs=1"]) == 0
    finally:
        torch.set_num_threads(before)
    assert "->" not in "".join(line for line in capsys.readouterr().err.splitlines() if "CPU threads" in line)
    assert json.loads(Path("run/run_info.json").read_text())["cpu_threads"] == [2]
