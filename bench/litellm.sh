#!/usr/bin/env bash
# Make bench/.litellm-venv: LiteLLM's proxy for `bench/gateway.py --litellm`, apart from the main venv.
# Needs PyPI (or the configured pip index); nothing else. Safe to re-run: an existing venv is kept.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
if [ ! -x .litellm-venv/bin/litellm ]; then
    "$PYTHON" -m venv .litellm-venv
    .litellm-venv/bin/python -m pip install -q --disable-pip-version-check 'litellm[proxy]'
fi
.litellm-venv/bin/python -c 'import importlib.metadata as m; print("litellm", m.version("litellm"))'
