#!/usr/bin/env bash
# Installs the Debian packages for a one-machine SLURM cluster with accounting
# (scripts/slurm/start.sh runs it). Skips what is installed, so a second run takes
# well under a second. Needs root and apt-get; daemons are not started here.
set -euo pipefail

PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)

die() { echo "slurm install: error: $*" >&2; exit 1; }

is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script needs a Debian/Ubuntu system with apt-get"

missing=()
for package in "${PACKAGES[@]}"; do
    is_installed "$package" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "slurm install: all packages installed (${PACKAGES[*]})"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install these packages yourself: ${missing[*]}"
[ "$(id -u)" -eq 0 ] || die "installing ${missing[*]} needs root; run 'sudo $0' or install them yourself"

echo "slurm install: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "apt-get failed (its last lines are above)"
fi
for package in "${missing[@]}"; do
    is_installed "$package" || die "apt-get finished but $package is not installed"
done
echo "slurm install: done"
