#!/usr/bin/env bash
# The test suite on every CPython 3.9-3.13 this machine has, one venv each.
#
# Usage: tests/matrix/pythons.sh [3.9 3.10 ...]   (default: 3.9 to 3.13)
# Env:   PYENV_ROOT          where pyenv keeps versions (default /root/.pyenv, else
#                            ~/.pyenv); a pythonX.Y on PATH is used when pyenv has none
#        POORIO_MATRIX_DIR   where the venvs and logs live (default /tmp/poorio-matrix);
#                            venvs are kept, so a second run only re-checks the installs
#        POORIO_BACKEND      passed through to the tests
# Prints one PASS/FAIL/SKIP line per version and its total time; exits non-zero
# if any version failed.  A missing version is a loud SKIP, not a failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYENV_ROOT=${PYENV_ROOT:-/root/.pyenv}
[ -d "$PYENV_ROOT/versions" ] || PYENV_ROOT=$HOME/.pyenv
WORK=${POORIO_MATRIX_DIR:-/tmp/poorio-matrix}
# shellcheck source=tests/matrix/verdict.sh
. "$ROOT/tests/matrix/verdict.sh"

# The newest X.Y.Z pyenv has for X.Y (3.9.10 sorts after 3.9.9), else
# pythonX.Y on PATH (how CI runners provide them), else nothing.
find_python() {
    local re=${1//./\\.} found
    found=$(printf '%s\n' "$PYENV_ROOT"/versions/"$1".*/bin/python | grep -E "/$re\.[0-9]+/bin/python$" | sort -V |
        while read -r candidate; do [ -x "$candidate" ] && echo "$candidate"; done | tail -n 1)
    [ -n "$found" ] || found=$(command -v "python$1" || true)
    echo "$found"
}

# One version: build or reuse its venv, run the suite, print its verdict.
run_version() {
    local v=$1 python venv log version t0=$SECONDS
    python=$(find_python "$v")
    if [ -z "$python" ]; then
        echo "SKIP python$v: not installed (no $PYENV_ROOT/versions/$v.*, no python$v on PATH)"
        echo "!!!! python$v was NOT tested on this machine !!!!"
        return 2
    fi
    venv=$WORK/venv-$v
    log=$WORK/python$v.log
    if ! {
        { [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"; } &&
            "$venv/bin/python" -m pip install -q --disable-pip-version-check pytest pytest-xdist hypothesis
    } >"$log" 2>&1; then
        echo "FAIL python$v: could not build its venv -- the end of $log:"
        tail -n 20 "$log"
        return 1
    fi
    version=$("$venv/bin/python" -c 'import platform; print(platform.python_version())')
    if (cd "$ROOT" && PYTHONPATH=$ROOT "$venv/bin/python" -m pytest -q -n 2 -p no:cacheprovider) >>"$log" 2>&1; then
        echo "PASS python$v ($version, $((SECONDS - t0)) s): $(pytest_summary "$log")"
        return 0
    fi
    echo "FAIL python$v ($version, $((SECONDS - t0)) s): $(pytest_summary "$log") -- see $log"
    pytest_failures "$log"
    return 1
}

main() {
    local versions=("$@") v start=$SECONDS passed=0 failed=0 skipped=0
    [ ${#versions[@]} -gt 0 ] || versions=(3.9 3.10 3.11 3.12 3.13)
    mkdir -p "$WORK"
    for v in "${versions[@]}"; do
        run_version "$v"
        case $? in
            0) passed=$((passed + 1)) ;;
            2) skipped=$((skipped + 1)) ;;
            *) failed=$((failed + 1)) ;;
        esac
    done
    echo "pythons matrix: $passed versions PASS, $failed FAIL, $skipped SKIP in $((SECONDS - start)) s"
    [ "$failed" -eq 0 ]
}

# Parsed whole before it runs, so editing this file mid-run cannot derail it.
main "$@"
exit
