"""`benchmarks/speed.py`: one process measures every row and the cost-vs-N table, and writes the report."""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from conftest import REPO, STID_TINY, python, write_config
from test_stvfm import STVFM_TINY


def test_speed_benchmark_measures_every_row_and_writes_the_report(tiny_dataset, workdir):
    stid = write_config(workdir, STID_TINY, "stid.py")
    stvfm = write_config(workdir, STVFM_TINY, "stvfm.py")
    out = workdir / "speed.md"
    proc = subprocess.run(
        [python(), str(REPO / "benchmarks" / "speed.py"), "--min-seconds", "0.2",
         "--row", f"STID|{stid}|1", "--row", f"one node|{stvfm}|1|model_config.patch_size=1",
         "--row", f"grouped|{stvfm}|1|model_config.patch_size=2",
         "--row", f"grouped bf16|{stvfm}|1|model_config.patch_size=2,model_config.precision=bf16",
         "--row", f"STID free|{stid}|auto", "--row", f"STID free, shared|{stid}|auto+busy",
         "--row", f"STID, shared|{stid}|1+busy",
         "--speedup", "grouped", "one node", "--scale-row", "grouped", "--scale-nodes", "20", "45",
         "--scale-days", "2", "--scale-batch", "8", "--out", str(out)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.split("\n## ")[0].splitlines() if line.startswith("| ") and not line.startswith("| Row")}
    assert {"STID", "one node", "grouped"} <= set(rows)  # the main table (the sections after it have their own)
    one, grouped = rows["one node"], rows["grouped"]
    assert one[6] == "26" and grouped[6] == "10"  # tokens per window: 2 branches x (12 or 4 cells + class token)
    windows = int(re.search(r"training split \(([\d,]+) for the first row\)", text).group(1).replace(",", ""))
    assert windows == len(np.load(tiny_dataset / "train_data.npy")) - 12 - 12 + 1  # every start: 12 steps in, 12 out
    for cells in (rows["STID"], one, grouped):
        train_wps = float(cells[2].replace(",", ""))
        assert train_wps > 0 and float(cells[4].replace(",", "")) > 0  # windows per second
        assert abs(float(cells[3].replace(",", "")) - windows / train_wps) <= 0.05 + 0.01 * windows / train_wps
        assert float(cells[7]) > 0  # counted GFLOP per training window
    assert re.search(r"\d+ %", grouped[10])  # frozen blocks as a share of GEMM speed
    assert re.search(r'"grouped" over "one node": \*\*[\d.]+x\*\* \(inference [\d.]+x\); training seconds per epoch '
                     rf'{re.escape(grouped[3])} against {re.escape(one[3])}\.', text)
    assert "| 20 |" in text and "| 45 |" in text  # cost against graph size
    assert "logical cores" in text and "OMP_NUM_THREADS" in text
    assert rows["grouped bf16"][6] == "10" and rows["STID free"][0].endswith(", fewer while busy")
    shared = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
              for line in text.split("## Shared machine")[1].split("##")[0].splitlines() if line.startswith("| ")
              and not line.startswith("| Row")}
    assert set(shared) == {"STID free, shared", "STID, shared"}  # each against its quiet twin
    free, fixed = shared["STID free, shared"], shared["STID, shared"]
    assert free[1] == rows["STID free"][3] and fixed[1] == rows["STID"][3]  # quiet s/epoch of the twin
    wps = {name: float(rows[name][2].replace(",", "")) for name in ("STID free", "STID free, shared")}
    ratio = wps["STID free"] / wps["STID free, shared"]  # windows per second: more digits than s/epoch
    assert float(free[3][:-1]) == pytest.approx(ratio, rel=0.01, abs=0.01)
    assert free[4] in ("yes", "NO") and fixed[4] == "— (count fixed)"


@pytest.mark.parametrize("text, message", [
    ("a|b|2+lazy", "THREADS is a number, all or auto, optionally followed by +busy"),
    ("a|b|many", "THREADS is a number, all or auto, optionally followed by +busy"),
    ("a|b", "write NAME|CONFIG|THREADS"),
])
def test_a_bad_row_is_refused_with_its_syntax(text, message):
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    from speed import Row

    with pytest.raises(SystemExit, match=re.escape(message)):
        Row.parse(text)


def test_rows_parse_threads_following_the_free_cores_and_a_busy_neighbour():
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    from speed import Row

    row = Row.parse("x|cfg.py|auto+busy|a=1,b=2")
    assert row.follow_free and row.beside_busy and row.overrides == ["a=1", "b=2"] and row.threads >= 1
    row = Row.parse("x|cfg.py|3")
    assert (row.threads, row.follow_free, row.beside_busy) == (3, False, False)
