#!/usr/bin/env bash
# Runs the benchmark suite (cmd/goat-bench): make bench and make bench-quick
# call this. Arguments go to goat-bench (--quick, --only live,clone, ...).
# Results land in bench/results/; docs/benchmarks.md explains them.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

# The peer side (pouchdb-server 4.2.0 and a PouchDB client), pinned by
# bench/pouchdb/package-lock.json.
stamp=bench/pouchdb/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ bench/pouchdb/package-lock.json -nt "$stamp" ]; then
  npm ci --prefix bench/pouchdb --no-audit --no-fund
fi

# Tens of thousands of SSE streams need as many descriptors in goat-bench
# and in the gateway. Raising the hard limit needs root (CAP_SYS_RESOURCE);
# without it, take the hard limit and let goat-bench say where it stopped.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

exec go run ./cmd/goat-bench "$@"
