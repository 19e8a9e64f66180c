import json
from pathlib import Path

import pytest

REFERENCE = Path(__file__).parent / "reference" / "metafor_reference.json"


@pytest.fixture(scope="session")
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


def load_reference() -> dict:
    return json.loads(REFERENCE.read_text())
