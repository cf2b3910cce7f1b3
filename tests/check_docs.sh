#!/usr/bin/env bash
# check_docs.sh TRIPGEN README - the README's limits and errors tables must be
# exactly what the code enforces (`tripgen limits|errors --markdown`).
set -euo pipefail
tripgen=$1 readme=$2
status=0
for table in limits errors; do
  expected=$("$tripgen" "$table" --markdown)
  if ! grep -qxF -- "$(head -1 <<<"$expected")" "$readme"; then
    echo "README: the $table table header is missing"; status=1; continue
  fi
  while IFS= read -r row; do
    grep -qxF -- "$row" "$readme" || { echo "README: $table row missing or stale: $row"; status=1; }
  done <<<"$expected"
done
[ $status = 0 ] && echo "README tables match the code"
exit $status
