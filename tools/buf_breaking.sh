#!/usr/bin/env bash
# buf breaking: protos/ of the working tree against protos/ of the previous commit (HEAD~1). On a shallow
# or single-commit clone there is no HEAD~1; compare against HEAD (catches uncommitted breaks only) and say so.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=node_modules/.bin/buf
if git rev-parse --verify --quiet 'HEAD~1^{commit}' >/dev/null; then
  ref=HEAD~1
else
  ref=HEAD
  echo "buf breaking: no previous commit in this clone (shallow or single commit); comparing against HEAD" >&2
fi
echo "==> buf breaking against $ref"
"$BUF" breaking --against ".git#ref=${ref},subdir=protos"
