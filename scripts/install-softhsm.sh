#!/usr/bin/env bash
# install-softhsm.sh installs SoftHSM2 (softhsm2-util and the PKCS#11 module
# libsofthsm2.so) from Debian packages when it is not already present. It is
# idempotent: with both parts present it only says so. Needs root (or sudo)
# for apt-get. The PKCS#11 partition tests (emulators/partition) use it.
set -euo pipefail

module_paths=(
	/usr/lib/softhsm/libsofthsm2.so
	/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so
	/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so
)
if [[ -n "${HSMLAB_SOFTHSM_MODULE:-}" ]]; then
	module_paths+=("${HSMLAB_SOFTHSM_MODULE}")
fi

find_module() {
	local p
	for p in "${module_paths[@]}"; do
		if [[ -f "$p" ]]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

if command -v softhsm2-util >/dev/null 2>&1 && module="$(find_module)"; then
	echo "softhsm2 already installed: $(command -v softhsm2-util), module ${module}"
	exit 0
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo)
	else
		echo "install-softhsm.sh: need root or sudo to apt-get install softhsm2" >&2
		exit 1
	fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-softhsm.sh: apt-get not found; install softhsm2 with your package manager" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends softhsm2

if ! command -v softhsm2-util >/dev/null 2>&1; then
	echo "install-softhsm.sh: softhsm2-util still missing after install" >&2
	exit 1
fi
if ! module="$(find_module)"; then
	echo "install-softhsm.sh: libsofthsm2.so not found in ${module_paths[*]} after install" >&2
	exit 1
fi
echo "softhsm2 installed: $(command -v softhsm2-util), module ${module}"
