#!/usr/bin/env bash
# Stops the cluster that scripts/slurm/start.sh started in LCP_SLURM_DIR (default
# REPO/.slurm): cancels its jobs, then stops slurmd, slurmctld, slurmdbd, MariaDB and
# munged, each only if its pid file names a process started for this state folder
# (never a system-wide SLURM, munge or MariaDB), and waits for each to exit.
# The state (accounting database, job history) stays for the next start.
set -euo pipefail
SCRIPT_NAME=stop
source "$(dirname "$0")/common.sh"

case ${1:-} in
    "") ;;
    -h | --help) echo "usage: $0   (state folder: \$LCP_SLURM_DIR, now $STATE)"; exit 0 ;;
    *) usage_error "unknown argument '$1' (usage: $0)" ;;
esac

# Jobs' processes belong to slurmstepd, which outlives slurmd: cancel them first.
if owned_pid slurmctld >/dev/null && owned_pid slurmd >/dev/null; then
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
    if [ -n "$jobs" ]; then
        say "cancelling jobs: $(echo $jobs)"
        timeout 10 scancel $jobs || true
        deadline=$((SECONDS + 20))
        while [ -n "$(timeout 10 squeue -h -t running,completing -o %i 2>/dev/null)" ] && [ $SECONDS -lt $deadline ]; do
            sleep 0.5
        done
    fi
fi

stopped=0
for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    daemon=${DAEMONS[i]}
    pid=$(owned_pid "$daemon") || continue
    kill -TERM "$pid"
    deadline=$((SECONDS + 30))
    while is_alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if is_alive "$pid"; then
        say "$daemon (pid $pid) ignored SIGTERM for 30s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while is_alive "$pid"; do sleep 0.1; done
    fi
    rm -f "$(pidfile_of "$daemon")"
    say "stopped $daemon (pid $pid)"
    stopped=$((stopped + 1))
done
[ $stopped -gt 0 ] || say "nothing running in $STATE"
