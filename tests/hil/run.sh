#!/usr/bin/env bash
# The whole HIL run, as CI calls it: prepare the host, then every @pytest.mark.hil test.
# Fails loudly (non-zero, with the reason) when a step cannot run: no root, no QEMU, no kernel.
# Extra arguments go to pytest (e.g. -k three, -x).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
started=$(date +%s)
"$HERE/setup.sh"
command -v qemu-system-x86_64 >/dev/null || { echo "hil: qemu-system-x86_64 missing after setup" >&2; exit 1; }
cd "$ROOT"
rc=0
.venv/bin/pytest -m hil tests/hil -p no:cacheprovider -s --durations=0 "$@" || rc=$?
echo "hil: total $(( $(date +%s) - started )) s (setup + tests), pytest rc=$rc" >&2
exit $rc
