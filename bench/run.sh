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

# The second peer: Centrifugo, pinned here and nowhere else (goat-bench
# reads the version from the binary's build information). go install
# builds it from the Go module proxy into bench/.bin (gitignored), once:
# only when it is missing or of another version, and only when the run
# includes the centrifugo scenario. The build takes minutes.
CENTRIFUGO_VERSION=v6.9.1
centrifugo_wanted=yes
prev=
for a in "$@"; do
  only=
  case "$a" in
    --only=*|-only=*) only=${a#*=} ;;
  esac
  if [ "$prev" = --only ] || [ "$prev" = -only ]; then only=$a; fi
  if [ -n "$only" ]; then
    case ",$only," in
      *,centrifugo,*) ;;
      *) centrifugo_wanted= ;;
    esac
  fi
  prev=$a
done
cbin=bench/.bin/centrifugo
if [ -n "$centrifugo_wanted" ] && ! { [ -x "$cbin" ] && go version -m "$cbin" 2>/dev/null | grep -q "^[[:space:]]*mod[[:space:]]*github.com/centrifugal/centrifugo/v6[[:space:]]*$CENTRIFUGO_VERSION[[:space:]]"; }; then
  echo "bench/run.sh: installing Centrifugo $CENTRIFUGO_VERSION into bench/.bin (go install; takes minutes)" >&2
  GOBIN="$PWD/bench/.bin" go install "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION"
fi

# Tens of thousands of SSE streams need as many descriptors in goat-bench
# and in the gateway. Raising the hard limit needs root (CAP_SYS_RESOURCE);
# without it, take the hard limit and let goat-bench say where it stopped.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

exec go run ./cmd/goat-bench "$@"
