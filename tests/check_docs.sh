#!/usr/bin/env bash
# check_docs.sh TRIPGEN WORKER README - the README's limits, errors and worker
# configuration tables must be exactly what the code enforces
# (`tripgen limits|errors --markdown`, `tripgen-worker --help-config --markdown`).
set -euo pipefail
tripgen=$1 worker=$2 readme=$3
status=0
for table in limits errors config; do
  if [ "$table" = config ]; then
    expected=$("$worker" --help-config --markdown)
  else
    expected=$("$tripgen" "$table" --markdown)
  fi
  if ! grep -qxF -- "$(head -1 <<<"$expected")" "$readme"; then
    echo "README: the $table table header is missing"; status=1; continue
  fi
  while IFS= read -r row; do
    grep -qxF -- "$row" "$readme" || { echo "README: $table row missing or stale: $row"; status=1; }
  done <<<"$expected"
done
[ $status = 0 ] && echo "README tables match the code"
exit $status
