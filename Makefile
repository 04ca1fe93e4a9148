# ascend-deploy: `make test` and `make demo` install what they need themselves.
PYTHON ?= python3
VENV   ?= .venv
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: test unit system-deps venv clean help

help:
	@echo "make test    - all tests (unit + real sshd integration); installs openssh-server and the venv"
	@echo "make unit    - unit tests only (no root needed)"
	@echo "make clean   - remove the venv and caches"

# Debian packages the tests need: OpenSSH server (one sshd per fake host) and iproute2.
system-deps:
	@if [ ! -x /usr/sbin/sshd ] || ! command -v ip >/dev/null || ! command -v ssh-keygen >/dev/null; then \
		echo "installing openssh-server, openssh-client, iproute2"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends openssh-server openssh-client iproute2 procps >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

venv: $(VENV)/.installed

test: system-deps venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

unit: venv
	$(VENV)/bin/python -m pytest tests/unit tests/facts $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
