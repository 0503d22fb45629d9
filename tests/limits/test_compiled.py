"""The limits' hot path runs compiled by mypyc (setup.py), and from its current sources: a test run never
measures or checks a stale build."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

from openfoundry.limits import limiter, redis, store


@pytest.mark.parametrize("module", [store, limiter, redis], ids=lambda module: module.__name__)
def test_the_hot_path_runs_compiled_from_its_current_source(module: ModuleType) -> None:
    assert module.__file__ is not None
    loaded = Path(module.__file__)
    if os.environ.get("OPENFOUNDRY_PURE_PYTHON"):
        assert loaded.suffix == ".py"
        return
    assert loaded.suffix == ".so", f"{module.__name__} runs as Python: reinstall (make) to compile it"
    source = loaded.with_name(module.__name__.rpartition(".")[2] + ".py")
    assert loaded.stat().st_mtime >= source.stat().st_mtime, f"{source} changed since it was built: reinstall (make)"
