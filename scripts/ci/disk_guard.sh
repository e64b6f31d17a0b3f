#!/usr/bin/env bash
# Keeps the build cache from filling the disk: every change of a dependency leaves
# stale test binaries behind in the target folder, and a full disk fails the build
# halfway. The cache is only ever an accelerator, so when it grows past its budget or
# the disk runs low, it is deleted and the build starts clean.
#   usage: disk_guard.sh TARGET_DIR
set -euo pipefail
target="$1"
budget_gib="${VEDETTE_TARGET_BUDGET_GIB:-40}"
min_free_gib="${VEDETTE_MIN_FREE_GIB:-25}"

[ -d "$target" ] || exit 0
used_gib=$(( $(du -sk "$target" | cut -f1) / 1024 / 1024 ))
free_gib=$(( $(df -Pk "$target" | awk 'NR==2 {print $4}') / 1024 / 1024 ))
if [ "$used_gib" -ge "$budget_gib" ] || [ "$free_gib" -lt "$min_free_gib" ]; then
  echo "disk_guard.sh: build cache $target holds ${used_gib} GiB, ${free_gib} GiB free: deleting it"
  rm -rf "$target"
  free_gib=$(( $(df -Pk "$(dirname "$target")" | awk 'NR==2 {print $4}') / 1024 / 1024 ))
fi
if [ "$free_gib" -lt 15 ]; then
  echo "disk_guard.sh: only ${free_gib} GiB free on the disk; a full build and test run needs about 15 GiB" >&2
  exit 1
fi
echo "disk_guard.sh: build cache ${used_gib} GiB, ${free_gib} GiB free"
