VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUILT := src/*.so src/openfoundry/limits/*.so

.PHONY: serve test lint bench pure clean

# llama-cpp-python compiles llama.cpp at install. Not for this CPU (-march=native): it takes every
# instruction set the CPU lists, and a VM may list AMX without allowing it (SIGILL at the first matmul).
# x86-64 gets AVX2/FMA/F16C, which every server of the last decade runs. Set CMAKE_ARGS to choose.
CMAKE_ARGS ?= -DGGML_NATIVE=OFF $(if $(filter x86_64,$(shell uname -m)),-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON)
export CMAKE_ARGS

# setup.py compiles the limits' hot path with mypyc at install: a change to its sources reinstalls.
$(STAMP): pyproject.toml setup.py $(wildcard src/openfoundry/limits/*.py)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/foundry serve $(ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/gateway.py $(ARGS)

# The limits' hot path as plain Python, to step through it or profile it by function (bench/opcodes.py);
# the next `make test` or `make serve` compiles it again.
pure:
	rm -f $(BUILT) $(STAMP)
	OPENFOUNDRY_PURE_PYTHON=1 $(PY) -m pip install -q --no-deps -e .

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info $(BUILT)
