#!/bin/bash
# A real single-node SLURM on this machine, for tests and CI (Debian 12, root, no systemd).
#
#   scripts/slurm-local.sh up [--no-accounting]
#       install the packages if missing, write the configs, start the daemons, wait until
#       the node is idle, print the environment line (see `env`). With accounting (the
#       default) MariaDB and slurmdbd run too and `sacct` works as on most clusters; with
#       --no-accounting `sacct` fails, as on clusters without slurmdbd, and only
#       `sacct --completion` (the job-completion log) and scontrol/squeue answer.
#   scripts/slurm-local.sh down     stop the daemons this script started, by PID, and wait for them
#   scripts/slurm-local.sh status   exit 0 when the node answers idle/mixed/allocated, else 1
#   scripts/slurm-local.sh env      print `export SLURM_CONF=...`: eval it before using sbatch & co.
#
# Everything (configs, state, spool, database, pids, logs) lives under $UCBX_SLURM_DIR
# (default /tmp/ucbx-slurm). `up` is idempotent: a SLURM already running from that folder
# is reused as it is (run `down` first to switch accounting on or off). A munged or MariaDB
# that was already running is used and never stopped. Ports 6817-6819 must be free.
set -euo pipefail

BASE=${UCBX_SLURM_DIR:-/tmp/ucbx-slurm}
CONF=$BASE/etc/slurm.conf
export SLURM_CONF=$CONF
MYSQL_SOCKET=/run/mysqld/mysqld.sock   # the client default, which slurmdbd uses

die() { echo "slurm-local: $*" >&2; exit 1; }

node_state() { sinfo -h -N -o %t 2>/dev/null | head -n 1; }

running() {   # running FILE NAME: the pid in FILE is a live NAME process
  local pid
  pid=$(cat "$1" 2>/dev/null) && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

is_up() {   # asks sinfo only when our slurmctld runs: sinfo waits ~10 s for an absent controller
  [ -f "$CONF" ] && running "$BASE/run/slurmctld.pid" slurmctld || return 1
  case "$(node_state)" in idle|mix|alloc|comp) return 0 ;; *) return 1 ;; esac
}

install_packages() {   # install_packages ACCOUNTING
  local packages="slurm-wlm munge"
  [ "$1" = 1 ] && packages="$packages slurmdbd mariadb-server"
  local missing=0
  command -v slurmctld >/dev/null && command -v munged >/dev/null || missing=1
  [ "$1" = 1 ] && { command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null || missing=1; }
  [ "$missing" = 0 ] && return 0
  echo "slurm-local: installing $packages" >&2
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
}

ensure_munge_key() {
  [ -s /etc/munge/munge.key ] && return 0
  mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
    || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
}

start_munge() {
  if [ -S /run/munge/munge.socket.2 ] && munge -n >/dev/null 2>&1; then
    return 0   # someone else's munged: reuse it, never stop it
  fi
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 0755 /run/munge
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged   # daemonizes; writes /run/munge/munged.pid
  for _ in $(seq 1 50); do
    if munge -n >/dev/null 2>&1 && [ -s /run/munge/munged.pid ]; then
      cp /run/munge/munged.pid "$BASE/run/munged.pid"   # ours: `down` stops it
      return 0
    fi
    sleep 0.1
  done
  die "munged did not answer (see /var/log/munge/munged.log)"
}

database_answers() { mariadb --socket="$MYSQL_SOCKET" -e 'select 1' >/dev/null 2>&1; }

start_database() {
  if database_answers; then
    return 0   # a MariaDB already runs here: slurmdbd keeps its tables in its own database
  fi
  mkdir -p "$BASE/db" /run/mysqld
  chown mysql:mysql "$BASE/db" /run/mysqld
  if [ ! -d "$BASE/db/data/mysql" ]; then
    mariadb-install-db --user=mysql --datadir="$BASE/db/data" --auth-root-authentication-method=socket \
      --skip-test-db >"$BASE/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed (see $BASE/log)"
  fi
  setsid -f mariadbd --user=mysql --datadir="$BASE/db/data" --socket="$MYSQL_SOCKET" --skip-networking \
    --pid-file="$BASE/db/mariadbd.pid" --log-error="$BASE/db/mariadb.log" </dev/null >/dev/null 2>&1
  for _ in $(seq 1 100); do
    if database_answers && [ -s "$BASE/db/mariadbd.pid" ]; then
      cp "$BASE/db/mariadbd.pid" "$BASE/run/mariadbd.pid"   # ours: `down` stops it
      return 0
    fi
    sleep 0.1
  done
  die "MariaDB did not answer (see $BASE/db/mariadb.log)"
}

start_slurmdbd() {
  cat > "$BASE/etc/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=ucbx_slurm_accounting
PidFile=$BASE/run/slurmdbd.pid
LogFile=$BASE/log/slurmdbd.log
CONF
  chmod 0600 "$BASE/etc/slurmdbd.conf"
  slurmdbd   # daemonizes; reads slurmdbd.conf beside $SLURM_CONF
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/6819") 2>/dev/null && return 0
    sleep 0.1
  done
  tail -n 20 "$BASE/log/slurmdbd.log" >&2 || true
  die "slurmdbd did not start (log above)"
}

check_ports_free() {
  local port
  for port in 6817 6818 6819; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "port $port on localhost is in use by another program; stop it first"
    fi
  done
}

write_conf() {   # write_conf ACCOUNTING
  local mem_mb accounting="AccountingStorageType=accounting_storage/none"
  mem_mb=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
  if [ "$1" = 1 ]; then
    accounting="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost"
  fi
  cat > "$CONF" <<CONF
ClusterName=ucbx
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
StateSaveLocation=$BASE/state/ctld
SlurmdSpoolDir=$BASE/state/d
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
$accounting
JobCompType=jobcomp/filetxt
JobCompLoc=$BASE/log/jobcomp.txt
ReturnToService=2
MinJobAge=3600
InactiveLimit=0
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

wait_idle() {
  for _ in $(seq 1 120); do
    [ "$(node_state)" = idle ] && return 0
    sleep 0.25
  done
  tail -n 30 "$BASE"/log/*.log >&2 || true
  die "the node did not become idle (logs above, under $BASE/log)"
}

print_env() { echo "export SLURM_CONF=$CONF"; }

up() {   # up ACCOUNTING
  if is_up; then print_env; return 0; fi
  [ "$(id -u)" = 0 ] || die "starting SLURM needs root"
  down >/dev/null   # daemons of an earlier start that no longer answer
  install_packages "$1"
  mkdir -p "$BASE"/{etc,state/ctld,state/d,run,log}
  ensure_munge_key
  check_ports_free
  write_conf "$1"
  start_munge
  if [ "$1" = 1 ]; then
    start_database
    start_slurmdbd
  fi
  slurmctld   # daemonizes; pid in $BASE/run/slurmctld.pid
  slurmd -N localhost
  wait_idle
  print_env
}

stop_pid_file() {   # stop_pid_file FILE NAME: stop that pid if it is still a NAME process
  local file=$1 name=$2 pid state
  running "$file" "$name" || { rm -f "$file"; return 0; }
  pid=$(cat "$file")
  rm -f "$file"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do   # up to 10 s; a zombie counts as gone
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || break
    [ "$state" = Z ] && break
    sleep 0.2
  done
  echo "slurm-local: stopped $name (pid $pid)"
}

down() {   # the pid files of munged and mariadbd exist only when this script started them
  stop_pid_file "$BASE/run/slurmd.pid" slurmd
  stop_pid_file "$BASE/run/slurmctld.pid" slurmctld
  stop_pid_file "$BASE/run/slurmdbd.pid" slurmdbd
  stop_pid_file "$BASE/run/mariadbd.pid" mariadbd
  stop_pid_file "$BASE/run/munged.pid" munged
}

case "${1:-} ${2:-}" in
  "up ") up 1 ;;
  "up --no-accounting") up 0 ;;
  "down ") down ;;
  "status ") is_up ;;
  "env ") print_env ;;
  *) echo "usage: $0 up [--no-accounting] | down | status | env" >&2; exit 2 ;;
esac
