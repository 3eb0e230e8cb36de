# Shared by start.sh and stop.sh (sourced, not run): where the cluster's files live and
# how to tell whether a daemon is one this cluster started.
#
# Everything sits under one state folder, LCP_SLURM_DIR (default: REPO/.slurm), so
# several checkouts, or a system-wide SLURM, never see each other's files.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${LCP_SLURM_DIR:-$REPO/.slurm}
case $STATE in /*) ;; *) STATE=$(pwd)/$STATE ;; esac
STATE=${STATE%/}
ETC=$STATE/etc
RUN=$STATE/run
LOG=$STATE/log
MUNGE_DIR=$STATE/munge
DB_DIR=$STATE/mysql
export SLURM_CONF=$ETC/slurm.conf

# In the order start.sh starts them; stop.sh goes backwards.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

die() { echo "slurm ${SCRIPT_NAME:-}: error: $*" >&2; exit 1; }
usage_error() { echo "slurm ${SCRIPT_NAME:-}: error: $*" >&2; exit 2; }
say() { echo "slurm ${SCRIPT_NAME:-}: $*"; }

pidfile_of() {
    case $1 in
        munged) echo "$MUNGE_DIR/munged.pid" ;;
        mariadbd) echo "$DB_DIR/mariadbd.pid" ;;
        *) echo "$RUN/$1.pid" ;;
    esac
}

logfile_of() {
    case $1 in
        munged) echo "$MUNGE_DIR/munged.log" ;;
        mariadbd) echo "$DB_DIR/mariadbd.log" ;;
        *) echo "$LOG/$1.log" ;;
    esac
}

# Prints the pid of DAEMON if it is running and was started for this state folder:
# the pid file's process must be that program and name the state folder in its command
# line (munged, mariadbd) or environment (SLURM_CONF, slurm daemons). A pid reused by an
# unrelated process, or a system-wide daemon, never matches.
owned_pid() {
    local daemon=$1 pidfile pid exe
    pidfile=$(pidfile_of "$daemon")
    [ -r "$pidfile" ] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [ -n "$pid" ] && is_alive "$pid" || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    # Debian's slurm binaries are slurmctld-wlm etc. behind alternatives links.
    case ${exe##*/} in "$daemon" | "$daemon"-wlm) ;; *) return 1 ;; esac
    cat "/proc/$pid/cmdline" "/proc/$pid/environ" 2>/dev/null | tr '\0' '\n' | grep -qF "$STATE/" || return 1
    echo "$pid"
}

# True while PID exists and is not a zombie (an unreaped zombie has exited).
is_alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

log_tail() {
    local file=$1
    if [ -s "$file" ]; then
        echo "--- last lines of $file:" >&2
        tail -n 15 "$file" >&2
    fi
}
