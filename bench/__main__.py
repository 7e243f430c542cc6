"""``python -m bench``: the benchmark suite (:mod:`vtgcore.apps.perf.suite`; ``--help`` for options)."""

import sys

from vtgcore.apps.perf.suite import main

sys.exit(main())
