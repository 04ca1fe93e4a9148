# ascend-deploy: `make test` and `make demo` install what they need themselves.
PYTHON ?= python3
VENV   ?= .venv
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: test unit lint demo demo-down system-deps venv host-env bench bench-sim bench-checknet bench-lifecycle bench-dp bench-containers bench-weights bench-upgrade clean help

help:
	@echo "make demo    - as root: a 2-host simulated cluster, check-net, up (Ray + vLLM, TP=2 across hosts), a chat request, status"
	@echo "make demo-down - tear the demo down (vLLM, Ray, then the simulated hosts)"
	@echo "make test    - all tests (unit + real sshd integration); installs openssh-server and the venv"
	@echo "make unit    - every test that needs no root (unit, facts, steps tiers)"
	@echo "make lint    - ruff (lint + format check) and mypy, as CI runs them"
	@echo "make host-env - the simulated hosts' venv (Ray + vLLM CPU build) and the tiny model, under the sim root"
	@echo "               (.sim/ here; a per-checkout folder under /var/lib/ascend-deploy/sim/ when this folder is under /tmp or has a space)"
	@echo "make bench   - benchmarks on simulated clusters of up to 64 hosts, against OpenSSH and Ansible (root; writes docs/*benchmarks.md)"
	@echo "make bench-dp - launcher dp: up to ready against a plain OpenSSH script, status (docs/dp-benchmarks.md)"
	@echo "make bench-weights - weights sync of a 1 GiB checkpoint to 2/4/8 hosts on 500 Mbit/s links against an scp star and an rsync loop (docs/weights-benchmarks.md)"
	@echo "make bench-upgrade - upgrade's downtime (a client every 0.5 s) against up from stopped, and a rollback's report (docs/upgrade-benchmarks.md)"
	@echo "make bench-containers - image load (1 GiB, 8 hosts) against scp + load, up in containers against the same commands by hand (docs/container-benchmarks.md)"
	@echo "make clean   - remove the venv and caches"

# Debian packages: OpenSSH server (one sshd per simulated host), iproute2 and util-linux
# (namespaces), bash-builtins (the simulated hccn_tool sleeps and unlocks without forking),
# podman + runc (the simulated hosts' container engine: `sim up --container`).
DEBS := openssh-server openssh-client iproute2 util-linux procps bash-builtins curl podman runc rsync iptables
system-deps:
	@if [ ! -x /usr/sbin/sshd ] || [ ! -e /usr/lib/bash/sleep ] || ! command -v ip >/dev/null || ! command -v nsenter >/dev/null || ! command -v curl >/dev/null || ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v rsync >/dev/null || ! command -v iptables >/dev/null; then \
		echo "installing $(DEBS)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(DEBS) >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test,lint]'
	touch $@

venv: $(VENV)/.installed

# The simulated hosts' Python: Ray + vLLM (CPU build) + the tiny local model, and the container
# image made of them (a few minutes once; the image needs root and podman: skipped without them).
host-env: venv
	$(VENV)/bin/python -m toolkit.sim.hostenv

# Byte-compiled first: the tests start the CLI hundreds of times, and an environment with
# PYTHONDONTWRITEBYTECODE would otherwise compile the toolkit at every start.
# Two workers, a test file each at a time (`--dist loadfile`: a module's cluster stays in one
# worker): the end-to-end cases mostly wait on processes starting, so two overlap well on 2 cores.
TEST_WORKERS ?= 2
test: system-deps venv host-env
	$(VENV)/bin/python -m compileall -q toolkit plugins
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# The README's first command: everything a new user needs to see the tool work, on one box.
AD := $(VENV)/bin/ascend-deploy
DEMO_INV := inventories/demo.yaml
demo: system-deps venv host-env
	$(AD) sim up --name demo --hosts 2 --devices 0 --tensor-parallel 2 --inventory $(DEMO_INV)
	$(AD) check-net $(DEMO_INV)
	$(AD) up $(DEMO_INV)
	$(VENV)/bin/python docs/examples/openai_chat.py $(DEMO_INV) "Hello from the demo!"
	$(AD) status $(DEMO_INV)
	@echo
	@echo "The demo cluster keeps running. Try:"
	@echo "  $(AD) plan $(DEMO_INV)            # every command and variable, and why"
	@echo "  $(AD) ask --chat --stream \"Hi\"      # one request (the last up's cluster)"
	@echo "  $(AD) logs --tail 20"
	@echo "  $(AD) up $(DEMO_INV)              # again: changes nothing"
	@echo "Tear it down: make demo-down   (= $(AD) down $(DEMO_INV) && $(AD) sim down --name demo)"

demo-down: venv
	-[ -f $(DEMO_INV) ] && $(AD) down $(DEMO_INV)
	$(AD) sim down --name demo

unit: venv
	$(VENV)/bin/python -m pytest -m "unit or facts or steps" $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Benchmarks (root): results go to docs/*.md
bench-sim: system-deps venv
	$(VENV)/bin/python bench/sim_bench.py --hosts 64 --runs 3

# Benchmark tools live in their own venv: the toolkit never depends on Ansible or matplotlib.
BENCH_VENV := .bench-venv
$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --disable-pip-version-check 'ansible-core==2.19.14' 'matplotlib>=3.8'
	touch $@

# Both byte-compile the toolkit first, as `pip install` does (an environment with
# PYTHONDONTWRITEBYTECODE would otherwise recompile it at every CLI start).
bench-checknet: system-deps venv host-env $(BENCH_VENV)/.installed
	$(VENV)/bin/python -m compileall -q toolkit plugins
	$(VENV)/bin/python bench/checknet_bench.py --sizes 8,32,64 --runs 3
	$(BENCH_VENV)/bin/python bench/plot.py docs/benchmarks.json

bench-lifecycle: system-deps venv host-env
	$(VENV)/bin/python -m compileall -q toolkit plugins
	$(VENV)/bin/python bench/lifecycle_bench.py --hosts 2 --ray-hosts 8 --runs 3

bench-dp: system-deps venv host-env
	$(VENV)/bin/python bench/dp_bench.py --runs 2

bench-containers: system-deps venv host-env
	$(VENV)/bin/python bench/container_bench.py --runs 2

bench-weights: system-deps venv
	$(VENV)/bin/python bench/weights_bench.py --sizes 2,4,8 --runs 2

bench-upgrade: system-deps venv host-env
	$(VENV)/bin/python bench/upgrade_bench.py --runs 2

bench: bench-sim bench-checknet bench-lifecycle bench-dp bench-containers bench-weights bench-upgrade

clean:
	-[ -x $(VENV)/bin/ascend-deploy ] && $(VENV)/bin/ascend-deploy sim down
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
