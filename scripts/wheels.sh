#!/usr/bin/env bash
# Build the offline wheelhouse the image installs from (no PyPI inside `docker build`, and a
# Raspberry Pi cluster may have no internet at all):
#   scripts/wheels.sh [PLATFORM] [OUT]      PLATFORM = linux/amd64 (default) | linux/arm64
# Puts a wheel of this project plus binary wheels of its runtime dependencies for CPython 3.11
# on PLATFORM into OUT (default: wheelhouse/). Wheels of both platforms can share one folder:
# pip picks the matching ones at install time, which is what a buildx multi-arch build needs.
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
mkdir -p "$OUT"
rm -f "$OUT"/hgc_edge-*.whl

# The project itself: pure Python, one wheel for every platform.
# (setuptools is chatty on stderr: keep its log, show it only if the build fails.)
log="$OUT/.pip-wheel.log"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$OUT" . >"$log" 2>&1 \
    || { cat "$log" >&2; echo "wheels.sh: building the project wheel failed" >&2; exit 1; }
project_wheel=$(find "$OUT" -maxdepth 1 -name 'hgc_edge-*.whl' | head -n1)
[ -n "$project_wheel" ] || { echo "wheels.sh: no project wheel built in $OUT" >&2; exit 1; }

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
    --abi none --dest "$OUT" "$project_wheel" 2> >(grep -v "is neither a file nor a directory" >&2)

echo "wheelhouse $OUT for $PLATFORM (cp$PY_VERSION):"
find "$OUT" -maxdepth 1 -name '*.whl' -printf '  %f\n' | sort
