#!/usr/bin/env bash
# Build the offline wheelhouse the image installs from (no PyPI inside `docker build`, and a
# Raspberry Pi cluster may have no internet at all):
#   scripts/wheels.sh [PLATFORM] [OUT]      PLATFORM = linux/amd64 (default) | linux/arm64
# Puts binary wheels of the project's runtime dependencies for CPython 3.11 on PLATFORM into
# OUT (default: wheelhouse/) with OUT/requirements.txt naming them, and this project's own
# wheel into OUT/project/ (apart, so the image's dependency layer is reused across code
# changes). Wheels of both platforms can share one folder: pip picks the matching ones at
# install time, which is what a buildx multi-arch build needs.
set -Eeuo pipefail

PLATFORM=${1:-linux/amd64}
OUT=${2:-wheelhouse}
PYTHON=${PYTHON:-.venv/bin/python}
PY_VERSION=${HGC_WHEEL_PYTHON:-3.11}

case "$PLATFORM" in
    linux/amd64) arch=x86_64 ;;
    linux/arm64 | linux/arm64/v8) arch=aarch64 ;;
    *) echo "wheels.sh: PLATFORM must be linux/amd64 or linux/arm64, got '$PLATFORM'" >&2; exit 2 ;;
esac
[ -x "$PYTHON" ] || PYTHON=python3

cd "$(dirname "$0")/.."
mkdir -p "$OUT/project"
rm -f "$OUT"/hgc_edge-*.whl "$OUT"/project/hgc_edge-*.whl

# The project itself: pure Python, one wheel for every platform.
# (setuptools is chatty on stderr: keep its log, show it only if the build fails.)
log="$OUT/.pip-wheel.log"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$OUT/project" . >"$log" 2>&1 \
    || { cat "$log" >&2; echo "wheels.sh: building the project wheel failed" >&2; exit 1; }
project_wheel=$(find "$OUT/project" -maxdepth 1 -name 'hgc_edge-*.whl' | head -n1)
[ -n "$project_wheel" ] || { echo "wheels.sh: no project wheel built in $OUT/project" >&2; exit 1; }

# The runtime requirements, from the wheel's own metadata (extras left out): what the image's
# dependency layer installs.
"$PYTHON" - "$project_wheel" >"$OUT/requirements.txt" <<'PY'
import sys, zipfile
from email.parser import Parser
with zipfile.ZipFile(sys.argv[1]) as whl:
    meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    fields = Parser().parsestr(whl.read(meta).decode())
for req in fields.get_all("Requires-Dist") or []:
    if "extra ==" not in req:
        print(req)
PY

# Its runtime dependencies, resolved from the wheel's own metadata (one source of truth:
# pyproject.toml). Binary wheels only, for the target platform; Debian bookworm has glibc 2.36,
# so any manylinux tag up to 2_36 runs there and on Raspberry Pi OS (bookworm).
platforms=()
for tag in manylinux_2_36 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 \
    manylinux_2_26 manylinux_2_17 manylinux2014; do
    platforms+=(--platform "${tag}_${arch}")
done
"$PYTHON" -m pip download --quiet --only-binary=:all: "${platforms[@]}" \
    --implementation cp --python-version "$PY_VERSION" --abi "cp${PY_VERSION/./}" --abi abi3 \
    --abi none --dest "$OUT" -r "$OUT/requirements.txt" \
    2> >(grep -v "is neither a file nor a directory" >&2)

echo "wheelhouse $OUT for $PLATFORM (cp$PY_VERSION):"
find "$OUT" "$OUT/project" -maxdepth 1 -name '*.whl' -printf '  %f\n' | sort
