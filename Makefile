# The two commands a newcomer types: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-deep lint typecheck bench clean soak-oracle jre

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/datalease demo

# DATALEASE_TEST_DATABASES: `sqlite` runs the whole suite; `postgresql` (added when DATALEASE_TEST_PG_URL
# is set) runs the tests marked `postgresql_homes` again with every test home's store on PostgreSQL
# (tests/home_database.py). README "Tests" says which and why.
comma := ,
DATALEASE_TEST_DATABASES ?= $(if $(DATALEASE_TEST_PG_URL),sqlite$(comma)postgresql,sqlite)

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	@case ",$(DATALEASE_TEST_DATABASES)," in *,sqlite,*) set -x; $(BIN)/pytest -n 2 --durations=15 -m "not spark";; esac
	@case ",$(DATALEASE_TEST_DATABASES)," in *,postgresql,*) set -x; DATALEASE_TEST_HOME_DATABASE=postgresql \
		$(BIN)/pytest -n 2 --durations=15 -m "postgresql_homes and not spark" tests/releases tests/revocation tests/partnerkit;; esac
	$(MAKE) --no-print-directory jre
	$(BIN)/pytest -p no:xdist --durations=5 -m spark tests/releases

# The same passes with every generated test at its deep count (tests/depth.py): several times longer.
test-deep:
	DATALEASE_TEST_DEPTH=deep $(MAKE) --no-print-directory test

# The Spark engine's tests need a Java runtime (17+): Debian's headless JRE, installed if missing.
jre:
	@command -v java >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless; \
		else echo "the Spark tests need Java: sudo apt-get install default-jre-headless" >&2; exit 1; fi; }

lint: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

# Many more generated worlds against the docs-only oracle (tests/oracle): larger ones, from seed 100000;
# a world whose every divergence a known bug explains is an xfail, anything else fails.
soak-oracle: $(STAMP)
	DATALEASE_ORACLE_SOAK=1 DATALEASE_ORACLE_WORLDS=$${DATALEASE_ORACLE_WORLDS:-2000} \
		$(BIN)/pytest -n 2 -q -m oracle tests/oracle/test_oracle_worlds.py

# Each benchmark prints its figures and a ratio against a baseline measured in the same run.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.eligibility
	$(BIN)/python -m benchmarks.consent_snapshot
	$(BIN)/python -m benchmarks.curation
	$(BIN)/python -m benchmarks.releases
	$(BIN)/python -m benchmarks.sharing
	$(BIN)/python -m benchmarks.revocation
	$(BIN)/python -m benchmarks.partnerkit

clean:
	rm -rf $(VENV) .datalease .pytest_cache .mypy_cache .ruff_cache
