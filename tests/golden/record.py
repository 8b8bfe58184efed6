"""Record golden metrics: `python -m tests.golden.record [NAME ...]` (default: every case).

Overwrites tests/golden/data/<name>.csv; commit them with a message that says which numbers
moved and why (docs/golden-runs.md)."""

from __future__ import annotations

import os
import sys
import tempfile
import time

from tests.golden.runner import CASES, golden_path, run_cases


def main(argv: list[str]) -> int:
    names = argv or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown golden case(s) {unknown}; accepted: {', '.join(CASES)}", file=sys.stderr)
        return 2
    t0 = time.time()

    def save(name: str, df) -> None:
        os.makedirs(os.path.dirname(golden_path(name)), exist_ok=True)
        df.to_csv(golden_path(name), index=False, float_format="%.17g")
        print(
            f"recorded {golden_path(name)} ({len(df)} rows, {len(df.columns)} columns, "
            f"{time.time() - t0:.0f}s)",
            flush=True,
        )

    with tempfile.TemporaryDirectory() as root:
        run_cases(names, root, each=save)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("PJRT_NPROC", "1")  # as the test suite runs (tests/conftest.py)
    sys.exit(main(sys.argv[1:]))
