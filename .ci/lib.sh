# Shared set-up for .ci/demo, .ci/test and .ci/run: installs what is missing, starts what is down.
# Sourced, not run. Needs root only to install Debian packages or start services.

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# ensure_packages PKG...: apt-get install the Debian packages that are not installed yet.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! is_root; then
    log "Missing Debian packages: ${missing[*]}. Install them (sudo apt-get install ${missing[*]}) or run this as root."
    return 1
  fi
  log "Installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_venv: .venv from the system Python, with requirements.txt installed whenever it changed.
ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    log "Creating .venv"
    /usr/bin/python3 -m venv .venv
  fi
  local stamp=.venv/.requirements.sha256 want
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "Installing requirements.txt into .venv"
    .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
    echo "$want" >"$stamp"
  fi
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  log "Starting Redis on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  log "Redis did not come up"; return 1
}

# ensure_postgres: a running cluster and a role `panel` (password `panel`, may create databases),
# so the tests connect over TCP whatever the cluster's authentication rules are.
ensure_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    log "Starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
    for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.1; done
  fi
  if is_root; then
    runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'panel') THEN
    CREATE ROLE panel LOGIN CREATEDB PASSWORD 'panel';
  END IF;
END $$;
SQL
    runuser -u postgres -- psql -q -d postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'panel'" | grep -q 1 \
      || runuser -u postgres -- createdb -O panel panel
  fi
}

# ensure_lxcfs: lxcfs serving /var/lib/lxcfs, so guests see their own memory and CPUs in /proc.
ensure_lxcfs() {
  if [ -f /var/lib/lxcfs/proc/meminfo ]; then return 0; fi
  is_root || { log "lxcfs is not running; guests will see the host's /proc/meminfo"; return 0; }
  log "Starting lxcfs on /var/lib/lxcfs"
  # A lxcfs that was killed leaves its FUSE mount behind, dead: clear it first.
  if grep -q " /var/lib/lxcfs " /proc/mounts; then umount -l /var/lib/lxcfs || true; fi
  mkdir -p /var/lib/lxcfs
  setsid lxcfs /var/lib/lxcfs </dev/null >>/var/log/lxcfs.log 2>&1 &
  for _ in $(seq 50); do [ -f /var/lib/lxcfs/proc/meminfo ] && return 0; sleep 0.1; done
  log "lxcfs did not come up: see /var/log/lxcfs.log"; return 1
}
