#!/usr/bin/env bash
# Starts a one-node SLURM cluster with accounting on this machine, for tests and demos:
# munged, MariaDB, slurmdbd, slurmctld and slurmd, all configured, logging and keeping
# state under one folder (LCP_SLURM_DIR, default REPO/.slurm), with fake GPUs.
#
#   scripts/slurm/start.sh [--gpus N] [--cpus N] [--mem MB]
#   source .slurm/env.sh        # SLURM_CONF and PATH for sbatch, sacct, snakemake
#   scripts/slurm/stop.sh
#
# Nothing system-wide is used or changed: our slurm.conf is found through SLURM_CONF,
# munged listens on its own socket with its own key, MariaDB has its own data folder,
# and the daemons use ports LCP_SLURM_PORT_BASE..+3 (default: four ports in 10000-29999
# picked from the state folder's path; never SLURM's own 6817-6819). MariaDB listens on
# 127.0.0.1 only; slurmctld, slurmd and slurmdbd on every interface (SLURM has no setting
# to bind them to one), where a request needs this cluster's munge key to be accepted.
# Run again with the same settings, it says the cluster is running and exits 0.
set -euo pipefail
SCRIPT_NAME=start
source "$(dirname "$0")/common.sh"

usage() {
    cat <<EOF
usage: $0 [--gpus N] [--cpus N] [--mem MB]
  --gpus N   fake GPUs on the node (gres gpu:N; default 0)
  --cpus N   CPUs the node offers (default: this machine's, $(nproc))
  --mem MB   memory the node offers (default: 3/4 of this machine's)
State folder: \$LCP_SLURM_DIR (now $STATE).
EOF
}

GPUS=0
CPUS=$(nproc)
MEM=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 * 3 / 4))
while [ $# -gt 0 ]; do
    case $1 in
        --gpus | --cpus | --mem)
            [ $# -ge 2 ] || usage_error "$1 needs a value"
            [[ $2 =~ ^[0-9]+$ ]] || usage_error "$1 must be a whole number, got '$2'"
            case $1 in --gpus) GPUS=$2 ;; --cpus) CPUS=$2 ;; --mem) MEM=$2 ;; esac
            shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; usage_error "unknown argument '$1'" ;;
    esac
done
[ "$CPUS" -ge 1 ] || usage_error "--cpus must be at least 1"
[ "$MEM" -ge 256 ] || usage_error "--mem must be at least 256 (MB)"

# Each state folder gets its own four ports (derived from its path, below the kernel's
# ephemeral range), so clusters of two checkouts can run side by side.
PORT_BASE=${LCP_SLURM_PORT_BASE:-$((10000 + $(printf %s "$STATE" | cksum | cut -d' ' -f1) % 5000 * 4))}
[[ $PORT_BASE =~ ^[0-9]+$ ]] && [ "$PORT_BASE" -ge 1024 ] && [ "$PORT_BASE" -le 65530 ] ||
    die "LCP_SLURM_PORT_BASE must be a port number between 1024 and 65530, got '$PORT_BASE'"
CTLD_PORT=$PORT_BASE
SLURMD_PORT=$((PORT_BASE + 1))
DBD_PORT=$((PORT_BASE + 2))
DB_PORT=$((PORT_BASE + 3))
CLUSTER=lcp
PARTITION=main
ACCOUNT=lcp
SETTINGS="gpus=$GPUS cpus=$CPUS mem=$MEM port_base=$PORT_BASE"

[ "$(id -u)" -eq 0 ] || die "needs root: slurmd runs jobs as their users and munged/MariaDB run as their own users"
# The socket path must fit in a sockaddr_un (108 bytes).
[ ${#STATE} -le 80 ] || die "state folder path '$STATE' is too long for its sockets (max 80 characters); set LCP_SLURM_DIR to a shorter path"
# slurm.conf, munged's and MariaDB's options split their paths at whitespace.
[[ ! $STATE =~ [[:space:]] ]] || die "state folder path '$STATE' has whitespace, which slurm.conf cannot hold; set LCP_SLURM_DIR to a path without"

reachable_by() {
    local user=$1 dir=$STATE
    until [ -e "$dir" ]; do dir=$(dirname "$dir"); done
    runuser -u "$user" -- test -x "$dir"
}
for user in munge mysql; do
    if getent passwd "$user" >/dev/null && ! reachable_by "$user"; then
        die "user '$user' (munged/MariaDB run as it) cannot reach $STATE: a folder on the way is not world-searchable (chmod o+x it), or set LCP_SLURM_DIR elsewhere"
    fi
done

all_running() {
    local daemon
    for daemon in "${DAEMONS[@]}"; do owned_pid "$daemon" >/dev/null || return 1; done
}

running_settings() { cat "$STATE/settings" 2>/dev/null || echo "unknown settings"; }

if owned_pid slurmctld >/dev/null || owned_pid slurmd >/dev/null; then
    if [ "$(running_settings)" != "$SETTINGS" ]; then
        die "a cluster is already running in $STATE with $(running_settings), not $SETTINGS; stop it first with scripts/slurm/stop.sh"
    fi
fi
if all_running; then
    say "already running in $STATE ($SETTINGS); to use it: source $STATE/env.sh"
    exit 0
fi

bash "$REPO/scripts/slurm/install.sh" >/dev/null
# tests/helpers/slurm_cluster.py marks a cluster it started so that it stops it afterwards; this
# start is not the tests' (they mark it again if it is).
rm -f "$STATE/started-by-tests"

# Writes stdin to PATH with MODE, atomically: daemons and jobs never read a half-written file.
write_file() {
    local path=$1 mode=$2 tmp
    tmp=$(mktemp "$path.XXXXXX")
    cat >"$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$path"
}

# What a daemon printed before it could open its own log file (config errors) goes here.
startup_log_of() { echo "$LOG/$1.startup.log"; }

show_logs() {
    log_tail "$(startup_log_of "$1")"
    log_tail "$(logfile_of "$1")"
}

# Polls COMMAND every 0.3 s for up to SECONDS; if it never succeeds, or DAEMON died
# meanwhile, stops with the daemon's log tail.
wait_until() {
    local what=$1 daemon=$2 seconds=$3 deadline
    shift 3
    deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ! owned_pid "$daemon" >/dev/null; then
            show_logs "$daemon"
            die "$daemon exited while waiting for $what"
        fi
        if [ $SECONDS -ge $deadline ]; then
            show_logs "$daemon"
            die "$what: not ready after ${seconds}s"
        fi
        sleep 0.3
    done
}

# Runs a daemon's start command (which forks the daemon into the background) and waits
# for its pid file.
start_daemon() {
    local daemon=$1
    shift
    if owned_pid "$daemon" >/dev/null; then
        say "$daemon already running (pid $(owned_pid "$daemon"))"
        return
    fi
    rm -f "$(pidfile_of "$daemon")"
    if ! "$@" >>"$(startup_log_of "$daemon")" 2>&1 </dev/null; then
        show_logs "$daemon"
        die "$daemon failed to start"
    fi
    local deadline=$((SECONDS + 30))
    until owned_pid "$daemon" >/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            show_logs "$daemon"
            die "$daemon did not start (no running process for $(pidfile_of "$daemon") after 30s)"
        fi
        sleep 0.2
    done
    say "started $daemon (pid $(owned_pid "$daemon"))"
}

make_folders() {
    mkdir -p "$ETC" "$RUN" "$LOG" "$STATE/spool/slurmctld" "$STATE/spool/slurmd" "$STATE/dev" "$MUNGE_DIR" "$DB_DIR/data"
    chmod 755 "$STATE" "$MUNGE_DIR"
    chown munge:munge "$MUNGE_DIR"
    chown -R mysql:mysql "$DB_DIR"
    chmod 700 "$DB_DIR"
}

make_fake_gpus() {
    local i device
    for ((i = 0; i < GPUS; i++)); do
        device=$STATE/dev/nvidia$i
        # Same numbers as /dev/null: SLURM only needs a character device to hand out.
        [ -c "$device" ] || mknod "$device" c 1 3 ||
            die "cannot create the fake GPU device $device with mknod (needs CAP_MKNOD); use --gpus 0"
    done
}

write_configs() {
    local db_password
    if [ ! -s "$ETC/db-password" ]; then
        head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | write_file "$ETC/db-password" 600
    fi
    db_password=$(cat "$ETC/db-password")

    local gres_line="" gres_conf="AutoDetect=off"
    if [ "$GPUS" -gt 0 ]; then
        gres_line=" Gres=gpu:$GPUS"
        gres_conf+=$'\n'"NodeName=localhost Name=gpu File=$STATE/dev/nvidia[0-$((GPUS - 1))]"
    fi
    echo "$gres_conf" | write_file "$ETC/gres.conf" 644

    write_file "$ETC/slurm.conf" 644 <<EOF
# Written by scripts/slurm/start.sh ($SETTINGS); rewritten on each start.
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_DIR/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/spool/slurmctld
SlurmdSpoolDir=$STATE/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
PlugStackConfig=$ETC/plugstack.conf
MpiDefault=none
# linuxproc/affinity need no cgroup setup (task/none makes every srun warn about binding).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, one job would be given all of the node's memory.
DefMemPerCPU=$((MEM / CPUS))
# The node may offer more CPUs/memory than the machine has (tests need 4 CPU slots).
SlurmdParameters=config_overrides
ReturnToService=2
MailProg=/bin/true
MinJobAge=300
KillWait=5
InactiveLimit=0
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# For slurmdbd connections SLURM takes the munge socket from here, not from AuthInfo.
AccountingStoragePass=$MUNGE_DIR/munge.socket
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM$gres_line State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    write_file "$ETC/plugstack.conf" 644 </dev/null

    write_file "$ETC/slurmdbd.conf" 600 <<EOF
# Written by scripts/slurm/start.sh; holds the database password, so readable by root only.
AuthType=auth/munge
AuthInfo=socket=$MUNGE_DIR/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$db_password
StorageLoc=slurm_acct_db
EOF
    echo "$SETTINGS" | write_file "$STATE/settings" 644
}

start_munge() {
    local key=$MUNGE_DIR/munge.key
    if [ ! -s "$key" ]; then
        (umask 077 && dd if=/dev/urandom of="$key" bs=1024 count=1 status=none)
        chown munge:munge "$key"
    fi
    start_daemon munged runuser -u munge -- /usr/sbin/munged \
        --socket="$MUNGE_DIR/munge.socket" --key-file="$key" --pid-file="$(pidfile_of munged)" \
        --log-file="$(logfile_of munged)" --seed-file="$MUNGE_DIR/munged.seed"
    wait_until "munge credentials" munged 15 \
        bash -c "munge -n --socket='$MUNGE_DIR/munge.socket' | unmunge --socket='$MUNGE_DIR/munge.socket'"
}

# Runs the SQL on stdin as MariaDB's root (through its socket; the password stays off argv).
mariadb_sql() { mariadb --no-defaults --socket="$DB_DIR/mysqld.sock" -u root; }

start_mariadb() {
    if [ ! -d "$DB_DIR/data/mysql" ]; then
        if ! mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR/data" \
            --auth-root-authentication-method=socket --skip-test-db >>"$(startup_log_of mariadbd)" 2>&1; then
            show_logs mariadbd
            die "mariadb-install-db failed to create $DB_DIR/data"
        fi
    fi
    # mariadbd does not fork: setsid puts it in its own session, out of our process group.
    # The innodb values are slurmdbd's recommended minimums (it logs an error below them).
    start_daemon mariadbd setsid --fork mariadbd --no-defaults --user=mysql --datadir="$DB_DIR/data" \
        --socket="$DB_DIR/mysqld.sock" --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --pid-file="$(pidfile_of mariadbd)" --log-error="$(logfile_of mariadbd)" \
        --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900
    wait_until "MariaDB on $DB_DIR/mysqld.sock" mariadbd 60 \
        mariadb-admin --no-defaults --socket="$DB_DIR/mysqld.sock" -u root ping
    local password
    password=$(cat "$ETC/db-password")
    mariadb_sql <<EOF || die "could not create the slurm database user in MariaDB ($DB_DIR)"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$password';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
}

# Cluster, account and user must be known to slurmdbd for jobs to be accounted.
register_accounting() {
    sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER" ||
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    sacctmgr -n -P show account format=account | grep -qx "$ACCOUNT" ||
        sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="lcp jobs" organization=lcp >/dev/null
    local user
    for user in root ${SUDO_USER:-}; do
        [ -n "$(sacctmgr -n -P show assoc where user="$user" account="$ACCOUNT" format=user)" ] ||
            sacctmgr -i add user "$user" account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
        # root already exists (in account 'root') once the cluster is added.
        sacctmgr -i modify user where name="$user" set defaultaccount="$ACCOUNT" >/dev/null || true
    done
}

# snakemake-executor-plugin-slurm-jobstep (0.6.1) runs each job's `srun` with all SLURM_*
# variables but the job's identity removed, SLURM_CONF too, and this cluster is found
# only through SLURM_CONF (there is no /etc/slurm/slurm.conf). So env.sh puts this srun,
# which restores it, first on PATH; jobs inherit PATH (the plugin submits --export=ALL).
write_srun_wrapper() {
    local real_srun
    real_srun=$(PATH=${PATH//"$STATE/bin:"/} command -v srun) || die "srun not found on PATH"
    mkdir -p "$STATE/bin"
    write_file "$STATE/bin/srun" 755 <<EOF
#!/bin/sh
# Written by scripts/slurm/start.sh: srun for the cluster in $STATE (see start.sh).
SLURM_CONF=\${SLURM_CONF:-$SLURM_CONF} exec $real_srun "\$@"
EOF
}

write_env_file() {
    write_file "$STATE/env.sh" 644 <<EOF
# Source this to use the SLURM cluster in $STATE (written by scripts/slurm/start.sh).
export SLURM_CONF=$SLURM_CONF
case ":\$PATH:" in *":$STATE/bin:"*) ;; *) export PATH="$STATE/bin:\$PATH" ;; esac
EOF
}

node_state() { sinfo -h -n localhost -o %T 2>/dev/null; }
node_ready() { case $(node_state) in idle | mixed | allocated | completing) return 0 ;; *) return 1 ;; esac; }

make_folders
make_fake_gpus
write_configs
write_srun_wrapper
start_munge
start_mariadb
start_daemon slurmdbd slurmdbd
wait_until "slurmdbd on port $DBD_PORT" slurmdbd 30 sacctmgr -n show cluster
register_accounting
start_daemon slurmctld slurmctld
wait_until "slurmctld on port $CTLD_PORT" slurmctld 30 scontrol ping
start_daemon slurmd slurmd -N localhost
if ! (wait_until "node localhost to become idle" slurmd 60 node_ready); then
    scontrol show node localhost | grep -E 'State=|Reason=' >&2 || true
    exit 1
fi
wait_until "sacct" slurmdbd 30 sacct -n -X --starttime now-1minutes
write_env_file
say "cluster '$CLUSTER' running in $STATE ($SETTINGS), partition '$PARTITION', node $(node_state)"
say "to use it: source $STATE/env.sh    (sets SLURM_CONF=$SLURM_CONF, puts $STATE/bin first on PATH)"
