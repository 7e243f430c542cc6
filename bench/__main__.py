"""``python -m bench``: the benchmark suite (:mod:`vtgcore.perf.suite`; ``--help`` for options)."""

import sys

from vtgcore.perf.suite import main

sys.exit(main())
