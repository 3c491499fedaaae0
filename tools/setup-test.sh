#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine, and only what is
# missing, so that running it again costs a few `command -v` checks:
#
#   Debian packages (apt-get, as root or through sudo -n):
#     nginx-light       the cluster test's proxy (deploy/nginx.conf)
#     curl              the README walkthrough tests
#     docker-compose    `make check-compose` validates docker-compose.yml
#     chromium          the TypeScript SDK's browser tests (playwright-core)
#     fonts-liberation  fonts for chromium
#   npm packages, pinned by each folder's package-lock.json (npm ci):
#     sdk/ts, tools/openapi-lint, tools/clientgen (the second generator)
#
# Go 1.26 and Node 20 are assumed (README). `make test` runs this script
# first; .ci/run runs `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx-light)
command -v curl >/dev/null || need+=(curl)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v chromium >/dev/null || [ -n "${CHROMIUM:-}" ] || need+=(chromium fonts-liberation)
if [ ${#need[@]} -gt 0 ]; then
	echo "setup-test: installing ${need[*]}"
	apt=(apt-get)
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null || ! sudo -n true 2>/dev/null; then
			echo "setup-test: missing ${need[*]}; install them as root:" >&2
			echo "  sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
			exit 1
		fi
		apt=(sudo -n apt-get)
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${apt[@]}" update -qq
	"${apt[@]}" install -y -qq --no-install-recommends "${need[@]}"
fi

# npm ci only where the installed tree is older than the lock file (npm
# writes node_modules/.package-lock.json on every install).
for dir in sdk/ts tools/openapi-lint tools/clientgen; do
	lock="$dir/package-lock.json"
	stamp="$dir/node_modules/.package-lock.json"
	if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
		npm ci --prefix "$dir" --no-audit --no-fund
		touch "$stamp"
	fi
done
