#!/usr/bin/env bash
# What pcapsleuth says about every capture here, at one git revision (default HEAD): the code of that
# revision is taken with `git archive` into a temporary directory (uncommitted edits in the work tree
# are not used) and run with the repository's .venv. Writes today-<rev>.txt next to this script.
#   bash samples/realworld/today.sh [REV]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
REV=${1:-HEAD}
SHA=$(git -C "$REPO" rev-parse --short=10 "$REV")
TMP=$(mktemp -d /tmp/psr-today.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
git -C "$REPO" archive "$SHA" pcapsleuth reports | tar -x -C "$TMP"   # the package and its report templates
OUTF="$HERE/today-$SHA.txt"
{
    echo "# pcapsleuth analyze FILE --no-html (and the first line of --markdown -), code of commit $SHA ($(git -C "$REPO" log -1 --format=%cs "$SHA"))"
    for p in "$HERE"/*.pcap; do
        echo
        echo "## $(basename "$p")"
        (cd "$TMP" && PYTHONDONTWRITEBYTECODE=1 "$REPO/.venv/bin/python" -m pcapsleuth analyze "$p" --no-html 2>&1 \
            | sed "s#$HERE/##") || echo "(exit $?)"
        # the verdict line of the Markdown summary
        (cd "$TMP" && PYTHONDONTWRITEBYTECODE=1 "$REPO/.venv/bin/python" -m pcapsleuth analyze "$p" --no-html --quiet \
            --markdown - 2>&1 | head -1 | sed 's/^/  markdown: /') || true
    done
} >"$OUTF"
echo "$OUTF"
