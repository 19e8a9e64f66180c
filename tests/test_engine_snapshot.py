"""The engine returns what it returned before the speed work (issue 15), to 1e-12 relative.

tests/reference/engine_snapshot.json holds every pool_many field from the engine at commit e9e9139 on the
metafor reference data sets (9 estimators x 4 tests x 4 prediction-interval types) and on 80 SYNTHETIC random
meta-analyses (see make_engine_snapshot.py). metafor agreement itself is tested in test_reference_metafor.py;
this test pins the numbers far tighter, so a faster algorithm cannot move them.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import mt_evidence as me

HERE = Path(__file__).parent / "reference"
sys.path.insert(0, str(HERE))
import make_engine_snapshot as snap  # noqa: E402

SNAP = json.loads((HERE / "engine_snapshot.json").read_text())
RTOL = 1e-12
# absolute floor: quantities that are zero in theory (a tau^2 bound on the boundary, a p-value near 1 - 1)
ATOL = 1e-14

_BATCHES = {}


def batch(name):
    if name not in _BATCHES:
        if name == "reference":
            _BATCHES[name] = snap.reference_batch()[1:]
        else:
            _BATCHES[name] = snap.synthetic_batch(SNAP["meta"]["synthetic_m"], SNAP["meta"]["synthetic_seed"])
    return _BATCHES[name]


def test_snapshot_batches_are_the_recorded_ones():
    ids, Y, V = snap.reference_batch()
    assert ids == SNAP["meta"]["reference_ids"]
    assert len(SNAP["cases"]) == 9 * 4 * 4 + 9 * 2


@pytest.mark.parametrize(
    "case", SNAP["cases"], ids=[f"{c['batch']}/{c['method']}/{c['test']}/{c['pi_type']}" for c in SNAP["cases"]]
)
def test_engine_matches_its_snapshot(case):
    Y, V = batch(case["batch"])
    test, adhoc = snap.TESTS[case["test"]]
    res = me.pool_many(Y, V, method=case["method"], test=test, adhoc=adhoc, pi_type=case["pi_type"])
    got = snap.fields_of(res, list(case["fields"]))
    for field, expected in case["fields"].items():
        if field == "weights":
            for i, (a, e) in enumerate(zip(got[field], expected)):
                np.testing.assert_allclose(a, e, rtol=RTOL, atol=ATOL, err_msg=f"weights row {i}")
            continue
        a = np.array([np.nan if x is None else x for x in got[field]], dtype=float)
        e = np.array([np.nan if x is None else x for x in expected], dtype=float)
        np.testing.assert_allclose(a, e, rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=field)
