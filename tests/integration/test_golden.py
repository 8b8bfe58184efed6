"""Golden runs: every training path's metrics equal the pinned ones (tests/golden/).

A change that moves a number must re-record the case (`python -m tests.golden.record NAME`)
and say in its commit which columns moved and why (docs/golden-runs.md)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from tests.golden.runner import CASES, golden_path, host_available, run_cases

NAMES = [n for n, c in CASES.items() if host_available() or not c.host]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> dict[str, pd.DataFrame]:
    return run_cases(NAMES, str(tmp_path_factory.mktemp("golden")))


def differences(want: pd.DataFrame, got: pd.DataFrame) -> list[str]:
    """Human-readable differences between two metrics frames (empty when bit-identical)."""
    out = []
    if list(want.columns) != list(got.columns):
        out.append(f"columns: pinned {list(want.columns)}, now {list(got.columns)}")
    if len(want) != len(got):
        out.append(f"rows: pinned {len(want)}, now {len(got)}")
    for c in want.columns.intersection(got.columns):
        a, b = want[c].to_numpy(), got[c].to_numpy()
        if len(a) != len(b):
            continue
        same = (a == b) | (pd.isna(a) & pd.isna(b))
        if not same.all():
            i = int(np.argmin(same))
            out.append(
                f"{c}: {int((~same).sum())} row(s) differ, first at row {i}: "
                f"pinned {a[i]!r}, now {b[i]!r}"
            )
    return out


@pytest.mark.parametrize("name", NAMES)
def test_metrics_equal_the_pinned_run(name, fresh):
    path = golden_path(name)
    assert os.path.exists(path), f"no golden for {name}: python -m tests.golden.record {name}"
    want = pd.read_csv(path)
    got = pd.read_csv(pd.io.common.StringIO(fresh[name].to_csv(index=False, float_format="%.17g")))
    diff = differences(want, got)
    assert not diff, f"{name} moved (re-record only with a reason):\n" + "\n".join(diff)


def test_differences_name_the_column_that_moved():
    a = pd.DataFrame({"x": [1.0, 2.0], "y": [0.5, np.nan]})
    b = a.copy()
    assert differences(a, b) == []
    b.loc[1, "x"] = 2.0000001
    (msg,) = differences(a, b)
    assert msg.startswith("x: 1 row(s) differ, first at row 1")
