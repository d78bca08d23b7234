#!/usr/bin/env bash
# install-azurite.sh installs the Azurite blob emulator (npm package azurite,
# pinned) into the project-local tools directory .tools/azurite, so that the
# storage emulator's Azurite integration tests (emulators/storage, tests named
# *Azurite*) can start it without a global install. It is idempotent: when the
# pinned version is already there it only says so. Needs node and npm (>= 18).
#
# Environment:
#   AZURITE_VERSION   npm version to install (default 3.35.0, see
#                     shared/reference/feasibility.md §3)
#   HSMLAB_TOOLS_DIR  tools directory (default <repo>/.tools)
#
# The tests find the binary at .tools/azurite/node_modules/.bin/azurite-blob
# (or $HSMLAB_AZURITE).
set -euo pipefail

version="${AZURITE_VERSION:-3.35.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="${HSMLAB_TOOLS_DIR:-${root}/.tools}"
prefix="${tools}/azurite"
bin="${prefix}/node_modules/.bin/azurite-blob"
pkg="${prefix}/node_modules/azurite/package.json"

installed_version() {
	[[ -x "$bin" && -f "$pkg" ]] || return 1
	node -e 'process.stdout.write(require(process.argv[1]).version)' "$pkg"
}

if have="$(installed_version 2>/dev/null)" && [[ "$have" == "$version" ]]; then
	echo "azurite ${version} already installed: ${bin}"
	exit 0
fi

for tool in node npm; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "install-azurite.sh: ${tool} not found; install Node.js >= 18 (Debian: apt-get install nodejs npm)" >&2
		exit 1
	fi
done

mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error "azurite@${version}"

if ! have="$(installed_version)"; then
	echo "install-azurite.sh: ${bin} missing after npm install" >&2
	exit 1
fi
if [[ "$have" != "$version" ]]; then
	echo "install-azurite.sh: installed azurite ${have}, wanted ${version}" >&2
	exit 1
fi
echo "azurite ${version} installed: ${bin}"
