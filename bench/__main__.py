"""`make bench` (or `python -m bench [NAME...]`): runs every bench_*.py module's `main()`.

Benchmarks run on PostgreSQL (LIFELINE_BENCH_DATABASE_URL, default the test server) and print
their figures next to a baseline measured in the same run. They are not tests.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    wanted = set(sys.argv[1:])
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    for name in names:
        if wanted and name.removeprefix("bench_") not in wanted and name not in wanted:
            continue
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main()
