import json
import shutil
from pathlib import Path

import pytest

REFERENCE = Path(__file__).parent / "reference" / "metafor_reference.json"


@pytest.fixture(scope="session")
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


def load_reference() -> dict:
    return json.loads(REFERENCE.read_text())


SYNTHETIC = Path(__file__).parent / "fixtures" / "synthetic_clean"


@pytest.fixture
def synthetic_evidence(tmp_path) -> Path:
    """A writable copy of the SYNTHETIC evidence fixture (invented numbers, not trials)."""
    d = tmp_path / "synthetic_evidence"
    shutil.copytree(SYNTHETIC, d)
    return d


ROBUST_REFERENCE = Path(__file__).parent / "reference" / "robust_reference.json"


def load_robust_reference() -> dict:
    """metafor's values for PET-PEESE, cumul, baujat, selmodel, gosh and permutest (make_robust_reference.R)."""
    return json.loads(ROBUST_REFERENCE.read_text())


def as_array(x):
    """A JSON value as a float array (jsonlite writes length-1 vectors as scalars)."""
    import numpy as np

    return np.atleast_1d(np.asarray(x, dtype=float))
