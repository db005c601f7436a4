#!/usr/bin/env bash
# Sets up and runs the whole test suite: the static checks (ruff check and format, import-linter's layers
# contract, mypy), then pytest on SQLite, then again on PostgreSQL, with the real CKAN from
# ../shared/ckan for the harvester's tests.
#
# On a machine with only Python, the PostgreSQL run and the CKAN tests are skipped with a
# note. Under CI (CI=true) they are required: a missing service fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PG_URL=${PORTAL_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}
ci=${CI:-}

if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== import-linter"
.venv/bin/lint-imports
echo "== mypy"
.venv/bin/mypy

# The real CKAN for the harvester's tests (../shared/ckan/start prints CKAN_URL and CKAN_TOKEN).
if [ -z "${CKAN_URL:-}" ] && [ -f ../shared/ckan/start ]; then
  echo "== starting CKAN (../shared/ckan/start)"
  log=$(mktemp)
  if bash ../shared/ckan/start >"$log" 2>&1; then
    eval "$(grep -E '^CKAN_(URL|TOKEN)=' "$log" | sed 's/^/export /')"
    trap 'bash ../shared/ckan/stop >/dev/null 2>&1 || true' EXIT
  else
    echo "CKAN did not start:"; tail -5 "$log"
  fi
fi
if [ -z "${CKAN_URL:-}" ]; then
  if [ -n "$ci" ]; then echo "CI needs the real CKAN for the harvester's tests" >&2; exit 1; fi
  echo "(no CKAN: the CKAN harvest tests are skipped)"
else
  export PORTAL_REQUIRE_CKAN=1
fi

echo "== pytest on SQLite"
PORTAL_TEST_DATABASE_URL= .venv/bin/python -m pytest -q "$@"

if .venv/bin/python -c "import sqlalchemy as sa,sys; sa.create_engine(sys.argv[1]).connect().close()" "$PG_URL" 2>/dev/null; then
  echo "== pytest on PostgreSQL ($PG_URL)"
  PORTAL_TEST_DATABASE_URL=$PG_URL .venv/bin/python -m pytest -q "$@"
elif [ -n "$ci" ]; then
  echo "CI needs PostgreSQL at $PG_URL" >&2; exit 1
else
  echo "(no PostgreSQL at $PG_URL: the PostgreSQL run is skipped)"
fi
