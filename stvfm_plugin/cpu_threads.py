"""CPU threads that follow the cores actually free: a run that shares its machine slows down about 2x, not 10x.

A torch CPU step is a series of parallel regions; each ends when its slowest thread ends. When another busy process
shares a core with one of the run's threads, that thread is descheduled half of the time, and every region waits for
it: with 2 threads on 2 cores beside one busy single-threaded process, an ST-VFM epoch took 3x to 10x its quiet time
(benchmarks/README "Shared machine"). One thread fewer than the cores in use by others avoids that wait entirely.

`ThreadGovernor` samples, about once a second (between training steps), how much CPU time the other processes took
on the cores this process may use (Linux `/proc/stat` per core, minus this process's own time from
`/proc/self/stat`), and sets torch's thread count to the cores left free (at least 1, at most the starting count).
A change is made only after two samples agree, so that a short burst elsewhere does not flip it. Where `/proc` is not
readable (macOS, Windows) the thread count stays fixed.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

#: a core counts as taken when the other processes used more than this share of one core over a sample
BUSY_SHARE = 0.3
#: seconds between two samples
INTERVAL_S = 1.0


def read_cpu_ticks(cpus: Sequence[int], stat_path: str = "/proc/stat") -> Optional[int]:
    """Busy clock ticks (all but idle and iowait) summed over the cores `cpus`, or None where `/proc/stat` is missing."""
    wanted = {f"cpu{c}" for c in cpus}
    try:
        with open(stat_path, encoding="ascii") as stat:
            lines = [line.split() for line in stat if line.startswith("cpu")]
    except OSError:
        return None
    busy = 0
    for fields in lines:
        if fields[0] in wanted:
            ticks = [int(v) for v in fields[1:]]
            busy += sum(ticks[:8]) - ticks[3] - ticks[4]  # user nice system idle iowait irq softirq steal
    return busy


def read_own_ticks(stat_path: str = "/proc/self/stat") -> Optional[int]:
    """User + system clock ticks of this process (all its threads), or None where `/proc` is missing."""
    try:
        with open(stat_path, encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


def omp_threads() -> Optional[int]:
    """The thread count `$OMP_NUM_THREADS` sets, or None."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def threads_follow_free_cores(requested: Optional[int]) -> bool:
    """Neither `--threads` (`requested`) nor `$OMP_NUM_THREADS` fixed the thread count: training follows the free
    cores."""
    return requested is None and omp_threads() is None


@dataclass
class Sample:
    """Clock ticks at one moment: busy on the watched cores, and this process's own."""

    when: float
    busy: int
    own: int


class ThreadGovernor:
    """Set torch's CPU threads to the cores the other processes leave free.

    Args:
        max_threads: the thread count of a quiet machine (the run's start value); never exceeded.
        cpus: the cores this process may run on.
        set_threads: applies a thread count (default `torch.set_num_threads`).
        clock: seconds, monotonic (tests pass their own).
        read_busy: busy ticks of `cpus` (tests pass their own).
        read_own: this process's ticks (tests pass their own).
        ticks_per_s: clock ticks per second (`os.sysconf("SC_CLK_TCK")`).
    """

    def __init__(self, max_threads: int, cpus: Sequence[int], set_threads: Optional[Callable[[int], None]] = None,
                 clock: Callable[[], float] = time.monotonic,
                 read_busy: Optional[Callable[[], Optional[int]]] = None,
                 read_own: Callable[[], Optional[int]] = read_own_ticks, ticks_per_s: Optional[float] = None) -> None:
        if set_threads is None:
            import torch

            set_threads = torch.set_num_threads
        self.max_threads = max_threads
        self.threads = max_threads
        self._set = set_threads
        self._clock = clock
        self._read_busy = read_busy or (lambda: read_cpu_ticks(cpus))
        self._read_own = read_own
        self._ticks_per_s = ticks_per_s or float(os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)
        self._last = self._sample()
        self._pending: Optional[int] = None
        self.others = 0.0  # cores the other processes used over the latest sample

    @property
    def active(self) -> bool:
        """False where the CPU counters cannot be read or there is only one thread to give."""
        return self._last is not None and self.max_threads > 1

    def _sample(self) -> Optional[Sample]:
        busy, own = self._read_busy(), self._read_own()
        return None if busy is None or own is None else Sample(self._clock(), busy, own)

    def target(self, others: float) -> int:
        """Threads for a machine where the other processes use `others` cores."""
        taken = max(0, math.ceil(others - BUSY_SHARE))
        return max(1, min(self.max_threads, self.max_threads - taken))

    def poll(self) -> Optional[Tuple[int, int, float]]:
        """Sample if a second has passed; returns (old threads, new threads, others' cores) when it changed them."""
        if not self.active or self._clock() - self._last.when < INTERVAL_S:
            return None
        now = self._sample()
        if now is None:
            return None
        seconds = now.when - self._last.when
        others = ((now.busy - self._last.busy) - (now.own - self._last.own)) / self._ticks_per_s / seconds
        self._last, self.others = now, max(0.0, others)
        wanted = self.target(self.others)
        if wanted == self.threads:
            self._pending = None
            return None
        if self._pending != wanted:  # the first sample that asks for a change: wait for the next one to agree
            self._pending = wanted
            return None
        old, self.threads, self._pending = self.threads, wanted, None
        self._set(wanted)
        return old, wanted, self.others
