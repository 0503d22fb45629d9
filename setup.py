"""Builds the limits' hot path as C extensions with mypyc: admission, settlement and the rate-limit headers
run on every limited call, and compiled, what auth + limits add to a call costs ~40% fewer instructions
(bench/README).

The modules stay plain, type-checked Python; OPENFOUNDRY_PURE_PYTHON=1 installs them as such (to step
through them, or to profile them by function with bench/opcodes.py). Everything else is in pyproject.toml.
"""

import os

from setuptools import setup

COMPILED = [
    "src/openfoundry/limits/store.py",
    "src/openfoundry/limits/limiter.py",
    "src/openfoundry/limits/redis.py",
]

if os.environ.get("OPENFOUNDRY_PURE_PYTHON"):
    setup()
else:
    from mypyc.build import mypycify

    # The build environment holds mypy and setuptools only: the package's own dependencies are Any here,
    # and pyproject's mypy settings (which load the pydantic plugin) are not read.
    options = ["--config-file=", "--ignore-missing-imports", "--follow-imports=silent", "--python-version=3.11"]
    setup(ext_modules=mypycify([*options, *COMPILED], opt_level="3", group_name="openfoundry_limits"))
