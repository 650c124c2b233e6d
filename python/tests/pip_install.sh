#!/bin/sh
# pip_install.sh PYTHON SOURCE_DIR -- `pip install` of the Python package,
# offline and without build isolation, from a copy of python/ (pip builds in
# the tree it is given; the source tree stays clean), into a temporary
# --target directory; then the lease tests run against that install.
set -eu
py=$1
src=$2
tmp=$(mktemp -d /tmp/arenad-pip-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/python"
cp -r "$src/python/arenad" "$src/python/src" "$src/python/tests" "$src/python/setup.py" \
    "$src/python/pyproject.toml" "$src/python/README.md" "$tmp/python/"
ARENAD_SOURCE_DIR=$src "$py" -m pip install --quiet --no-build-isolation --no-index --no-deps \
    --no-cache-dir --target "$tmp/site" "$tmp/python"
ls "$tmp/site/arenad"
cd "$tmp" # not the build tree's module by way of the current directory
PYTHONPATH=$tmp/site "$py" -c "import arenad, sys; assert arenad.__file__.startswith('$tmp/site'), arenad.__file__; print('imported', arenad.__file__)"
PYTHONPATH=$tmp/site "$py" -m pytest -q -p no:cacheprovider "$tmp/python/tests/test_lease.py"
