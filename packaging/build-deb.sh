#!/usr/bin/env bash
# Build dockd_<version>_<arch>.deb from this tree (what `./dev deb` runs).
#
#   packaging/build-deb.sh [--out DIR]     default DIR: the repository root
#
# 1. pip, run by Debian's own python3.11 (the pip of ./dev's .venv, else of a tools venv in
#    build/deb/tools), fetches and builds every wheel dockd needs into build/deb/wheelhouse:
#    the only step that uses the network (PyPI; pip's cache makes a second build offline);
# 2. the tree's files (tracked and new, not ignored) are copied to build/deb/src/dockd-<version>
#    with packaging/debian as debian/ and a changelog made from pyproject's version;
# 3. dpkg-buildpackage builds the binary package offline from that wheelhouse
#    (packaging/debian/rules).
# Needs: debhelper, dpkg-dev, python3.11-venv, groff-base (./dev deb installs them).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$REPO"
while (($#)); do
    case "$1" in
        --out) OUT="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
        *) echo "usage: packaging/build-deb.sh [--out DIR]" >&2; exit 2 ;;
    esac
done
PYTHON=/usr/bin/python3.11
WORK="$REPO/build/deb"
log() { printf 'build-deb: %s\n' "$*" >&2; }

[ -x "$PYTHON" ] || { log "ERROR: $PYTHON (Debian's python3.11) is missing"; exit 1; }
VERSION="$("$PYTHON" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$REPO/pyproject.toml")"
SRC="$WORK/src/dockd-$VERSION"
# Reproducible dates: the last commit's time.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)}"

# 1. wheels, by a pip that Debian's python3.11 runs (pip --python): the repository's .venv's
#    when ./dev has made one (a tools venv costs a quarter of a minute of ensurepip and pip),
#    else a tools venv of its own
TOOLS_PIP="$WORK/tools/bin/pip"
WHEEL_PIP=("$TOOLS_PIP")
if [ -x "$REPO/.venv/bin/pip" ] && "$REPO/.venv/bin/pip" --python "$PYTHON" --version >/dev/null 2>&1; then
    TOOLS_PIP="$REPO/.venv/bin/pip"
    WHEEL_PIP=("$TOOLS_PIP" --python "$PYTHON")
elif [ ! -x "$TOOLS_PIP" ]; then
    log "tools venv on $PYTHON"
    "$PYTHON" -m venv "$WORK/tools"
    "$TOOLS_PIP" install -q --upgrade pip
fi
rm -rf "$WORK/wheelhouse/dockd-"*.whl
log "wheels for dockd $VERSION and its dependencies"
"${WHEEL_PIP[@]}" wheel -q --prefer-binary --wheel-dir "$WORK/wheelhouse" "$REPO"

# 2. source tree
rm -rf "$WORK/src"
mkdir -p "$SRC"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard -- . ':!:packaging/debian' \
    | while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf -) | tar -C "$SRC" -xf -
cp -r "$REPO/packaging/debian" "$SRC/debian"
# dh_installsysusers takes only debian/<package>.sysusers; the repo keeps one copy.
cp "$REPO/systemd/sysusers.d/dockd.conf" "$SRC/debian/dockd.sysusers"
cat > "$SRC/debian/changelog" <<EOF
dockd ($VERSION) bookworm; urgency=medium

  * Built from $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo "a tree without git").

 -- dockd developers <dockd@invalid>  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
EOF

# 3. the package
log "dpkg-buildpackage in $SRC"
(cd "$SRC" && WHEELHOUSE="$WORK/wheelhouse" TOOLS_PIP="$TOOLS_PIP" \
    dpkg-buildpackage -b -us -uc >"$WORK/build.log" 2>&1) || {
    tail -40 "$WORK/build.log" >&2
    log "ERROR: dpkg-buildpackage failed (whole log: $WORK/build.log)"
    exit 1
}
ARCH="$(dpkg-architecture -qDEB_HOST_ARCH)"
DEB="dockd_${VERSION}_${ARCH}.deb"
mv -f "$WORK/src/$DEB" "$OUT/$DEB"
rm -f "$WORK/src/"dockd_"${VERSION}"_*.{buildinfo,changes}
log "built $OUT/$DEB"
echo "$OUT/$DEB"
