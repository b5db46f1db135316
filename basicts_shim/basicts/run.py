"""`python -m basicts.run -c CONFIG.py`: installed by stvfm-plugin; see `stvfm_plugin.run`.

BasicTS loads torch before this module runs, too late for OpenMP to read the wait policy `stvfm_plugin` sets; the
command then starts over as `python -m stvfm_plugin.run` (the same command; about a second and a half of imports)."""
import os
import sys

import stvfm_plugin

if __name__ == "__main__" and stvfm_plugin.WAIT_POLICY_TOO_LATE:
    os.execv(sys.executable, [sys.executable, "-m", "stvfm_plugin.run", *sys.argv[1:]])

from stvfm_plugin.run import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
