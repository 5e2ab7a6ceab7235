# bpfkit: set up, build, run, test, benchmark. Targets install what they need when it is missing
# (Debian packages via apt, Python packages into .venv), so a fresh machine needs only `make`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

VENV ?= .venv
PY := $(VENV)/bin/python
# The venv is made from the distribution's interpreter (the one `apt install python3-venv` and
# BCC's python3-bpfcc use), not whatever `python3` is first on PATH: that keeps the comparison with
# BCC on one interpreter, and Debian's build (PGO) starts a tool 10-25% sooner than a plain one.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
# Build: clang compiles BPF at run time; libbpf-sys's vendored build needs the autotools and friends.
APT_BUILD := clang llvm gcc g++ make pkg-config autoconf autopoint automake libtool gettext flex bison gawk \
             libc6-dev python3-venv iproute2
# Tests compare bpfkit's histogram output with BCC's own printing functions, run BCC's own
# examples as Debian's bpfcc-tools installs them, build a USDT target with <sys/sdt.h>, and
# look at a notebook rendered to HTML with headless Chromium, and have a Prometheus server
# scrape `bpfkit exporter`.
APT_TEST := python3-bpfcc bpfcc-tools systemtap-sdt-dev chromium-headless-shell prometheus
# The notebook tests: the `jupyter` extra of pyproject.toml, and nbclient/nbconvert to run the
# examples/ notebooks headless on an ipykernel of this venv's interpreter; the exporter's tests:
# the `exporter` extra; auditwheel for the wheel's test.
PY_TEST := "ipython>=7.23" "ipykernel>=6" "matplotlib>=3.5" "nbclient>=0.6" "nbformat>=5" "nbconvert>=6" \
           "prometheus_client>=0.12" "PyYAML>=5.4" "auditwheel>=6"
# Benchmarks compare with these (BCC's Python, libbpf-tools, bpftrace) and time with hyperfine.
APT_BENCH := python3-bpfcc bpfcc-tools libbpf-tools bpftrace linux-headers-amd64

STAMP := $(VENV)/.bpfkit-installed
# The wheel that `make build` installs and the tests run: abi3 (one wheel for Python 3.9+),
# tagged manylinux2014 (glibc 2.17 and later) because zig links it against glibc 2.17's symbols
# (the venv's ziglang), with libbpf, libelf and zlib inside. Its own target directory keeps the
# zig-linked objects apart from a plain `cargo build`'s.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
WHEEL_FLAGS := --release --zig --compatibility manylinux2014
WHEEL := dist/bpfkit-$(VERSION)-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
ARM_WHEEL := dist/bpfkit-$(VERSION)-cp39-abi3-manylinux2014_aarch64.manylinux_2_17_aarch64.whl
MATURIN := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" CARGO_TARGET_DIR=target/zig $(VENV)/bin/maturin
SOURCES := $(shell find rust python tools -type f \( -name '*.rs' -o -name '*.py' -o -name '*.c' -o -name '*.h' \)) \
           Cargo.toml pyproject.toml

.PHONY: all deps bench-deps build wheels run test test-deps test-rust test-python test-kernels lint bench clean

all: build

define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "need root to apt-get install $$missing" >&2; exit 1; fi; \
		(apt-get install -y -q $$missing || (apt-get update -q && apt-get install -y -q $$missing)) >/dev/null; \
	fi
endef

deps:
	$(call apt_install,$(APT_BUILD))
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }

bench-deps: deps
	$(call apt_install,$(APT_BENCH))

$(PY): | deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "maturin>=1.7,<2" "numpy>=1.21" "pytest>=7" "ziglang==0.17.1" pandas

$(WHEEL): $(PY) $(SOURCES)
	$(MATURIN) build $(WHEEL_FLAGS) --out dist

# What users install is the wheel: the tests run the very file a release would ship.
$(STAMP): $(WHEEL)
	$(PY) -m pip install -q --force-reinstall --no-deps $(WHEEL)
	@touch $@

# The release set: the x86_64 wheel, the aarch64 one (cross-built by zig), the sdist, each
# checked: auditwheel finds nothing but glibc 2.17's symbols in the wheels, and the sdist
# builds and installs into a fresh venv with `pip install` (needs Rust), whose bpfkit then runs.
wheels: $(WHEEL)
	rustup target add aarch64-unknown-linux-gnu
	$(MATURIN) build $(WHEEL_FLAGS) --target aarch64-unknown-linux-gnu --out dist
	$(MATURIN) sdist --out dist
	$(PY) -m pip install -q "auditwheel>=6"
	$(VENV)/bin/auditwheel show $(WHEEL) | grep -q '"manylinux_2_17_x86_64"'
	$(VENV)/bin/auditwheel show $(ARM_WHEEL) | grep -q '"manylinux_2_17_aarch64"'
	rm -rf target/sdist-venv && $(PYTHON) -m venv target/sdist-venv
	target/sdist-venv/bin/pip install -q dist/bpfkit-$(VERSION).tar.gz
	target/sdist-venv/bin/bpfkit list | grep -q opensnoop
	@ls -l dist

build: deps $(STAMP)

# The quick start: trace every open() on the machine for 10 seconds with a bundled tool.
run: build
	$(VENV)/bin/bpfkit opensnoop -d $${DURATION:-10}

test-rust: deps
	cargo test --release --quiet

test-deps: build
	$(call apt_install,$(APT_TEST))
	$(PY) -m pip install -q $(PY_TEST)

test-python: test-deps
	$(PY) -m pytest -q -rs tests

# The tests marked `kernels` again, inside Debian's 6.1 and 6.12 kernels booted under qemu, where
# kprobes, multi-kprobes and fentry exist and must attach (tests/kernels/README.md). The two
# kernels boot at once, one emulated CPU each on this machine's two: 12 minutes, not 20.
test-kernels: test-deps
	BPFKIT_KERNELS_JOBS=$${BPFKIT_KERNELS_JOBS:-2} tests/kernels/run

test: test-rust test-python test-kernels

# Linters, pinned so that a new release cannot turn CI red on its own: ruff over the Python,
# mypy's stubtest of the hand-kept _native.pyi against the built module, clippy over the Rust.
LINT_PY := "ruff==0.17.6" "mypy==2.4.1"
lint: build
	$(PY) -m pip install -q $(LINT_PY)
	$(VENV)/bin/ruff check python tools tests bench examples
	$(PY) -m mypy.stubtest bpfkit._native --allowlist python/stubtest-allowlist.txt
	cargo clippy --release --all-targets --features python -- -D warnings

bench: bench-deps build
	$(PY) bench/run.py
	$(PY) bench/events.py
	$(PY) bench/attach.py
	$(PY) bench/startup.py
	$(PY) bench/tools.py
	$(PY) bench/generic.py
	$(PY) bench/clear.py
	$(PY) bench/exporter.py

clean:
	rm -rf $(VENV) target dist
