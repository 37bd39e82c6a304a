# One-command workflows for axiom. `make test` works on a fresh clone (it creates .venv).
# See docs/developer/build.md.

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BUILT  := $(VENV)/.built
# sources of the compiled parts: editing any of them makes `make test` rebuild (incrementally)
NATIVE_SRC := setup.py $(wildcard csrc/*.c csrc/*.h axiom/_core/*.pyx axiom/_core/*.pxd \
              rust/Cargo.toml rust/Cargo.lock rust/src/*.rs zig/*.zig)

.PHONY: venv build test test-gpu demo bench lint format wheel sdist clean distclean smt-runner

venv: $(STAMP)

# re-run only when the project metadata changes (or the venv is missing)
$(STAMP): pyproject.toml setup.py
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q --upgrade setuptools wheel 'Cython>=3' numpy setuptools-rust ziglang==0.17.1
	$(VPY) -m pip install --no-build-isolation -e '.[dev]'
	touch $(BUILT) $@

# incremental rebuild of the C/Cython, Zig and Rust parts, in place
build: $(STAMP)
	$(VPY) setup.py -q build_ext --inplace
	touch $(BUILT)

$(BUILT): $(NATIVE_SRC) | $(STAMP)
	$(VPY) setup.py -q build_ext --inplace
	touch $@

# the std-only SMT solver runner (AXIOM_SMT_RUNNER=rust, see docs/proof-export.md); built by
# `make test` where cargo is installed (the tests build their own copy from the same sources)
SMT_RUNNER := rust/target/release/axiom-smt-runner
SMT_RUNNER_SRC := rust/smt-runner/Cargo.toml $(wildcard rust/smt-runner/src/*.rs)
SMT_RUNNER_IF_CARGO := $(if $(shell command -v cargo 2>/dev/null),$(SMT_RUNNER))

smt-runner: $(SMT_RUNNER)

$(SMT_RUNNER): $(SMT_RUNNER_SRC)
	cargo build --release --offline --manifest-path rust/smt-runner/Cargo.toml --target-dir rust/target

test: $(STAMP) $(BUILT) $(SMT_RUNNER_IF_CARGO)
	AXIOM_REQUIRE_NATIVE=1 $(VPY) -m pytest

# On a machine with an NVIDIA GPU: PyCUDA (the gpu extra), the GPU tests with CUDA required (a missing
# driver or device fails instead of skipping), then the device-resident kernel benchmark
# (bench/results/gpu-cuda-<device>-<timestamp>.json, compared with torch on the GPU when it has CUDA).
GPU_TESTS := $(wildcard tests/backends/test_gpu_*.py) tests/compiler/test_device_plan.py tests/bench/test_bench_gpu.py
test-gpu: $(STAMP) $(BUILT)
	$(VPY) -m pip install --no-build-isolation -e '.[dev,gpu]'
	AXIOM_REQUIRE_CUDA=1 AXIOM_REQUIRE_NATIVE=1 $(VPY) -m pytest $(GPU_TESTS)
	AXIOM_REQUIRE_CUDA=1 AXIOM_REQUIRE_NATIVE=1 $(VPY) -m pytest tests/backends/test_op_table.py -k 'cuda or opencl'
	$(VPY) -m axiom.bench kernels --backend cuda

demo: $(STAMP) $(BUILT)
	$(VPY) -m axiom.demo

# kernels and models vs NumPy, PyTorch and onnxruntime at 1 and 2 threads (docs/benchmarks.md);
# writes bench/results/, bench/plots/latest.png and the tables in README.md and bench/README.md
bench: $(STAMP) $(BUILT)
	$(VPY) -m axiom.bench all --threads 1,2 --update-readme
	$(VPY) -m axiom.bench train

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

wheel: $(STAMP)
	$(VPY) -m pip wheel . --no-deps --no-build-isolation -w dist

sdist: $(STAMP)
	$(VPY) -m build --sdist --no-isolation --outdir dist .

clean:
	rm -rf build dist *.egg-info rust/target axiom/_core/_kernels.c axiom/_core/*.so $(BUILT)

distclean: clean
	rm -rf $(VENV)
