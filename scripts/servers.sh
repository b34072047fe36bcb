# Shared by scripts/test and scripts/up: install what is missing, start what is stopped.
# Nothing here is needed on a machine that already runs the servers.

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: $* (run: sudo apt-get install -y $*)" >&2
    return 1
  fi
  if [ -z "${_APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null && _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_redis_binary() {
  # Tests and the embedded default start their own redis-server processes.
  command -v redis-server >/dev/null || apt_install redis-server
}

server_missing() {
  # $1: the server, $2: what went wrong. The tests need it: stop here, not in a test far away.
  echo "error: $1 is needed by the tests and $2" >&2
  return 1
}

ensure_sshd_binary() {
  # The host services' tests start their own sshd (tests/hosts/sshd.py).
  [ -x /usr/sbin/sshd ] && return 0
  apt_install openssh-server || { server_missing sshd "could not be installed (openssh-server)"; return 1; }
}

ensure_chromium() {
  # The REST front's status page test renders it in headless Chromium (it skips without one).
  command -v chromium >/dev/null || apt_install chromium || echo "chromium missing: the status page test will skip" >&2
}

ensure_rabbitmq() {
  if ! command -v rabbitmqctl >/dev/null; then
    apt_install rabbitmq-server || { server_missing RabbitMQ "could not be installed"; return 1; }
  fi
  if ! rabbitmqctl -q status >/dev/null 2>&1; then
    echo "starting RabbitMQ" >&2
    rabbitmq-server -detached >/dev/null 2>&1 || true
    rabbitmqctl -q wait --timeout 60 /var/lib/rabbitmq/mnesia/rabbit@"$(hostname -s)".pid >/dev/null 2>&1 \
      || for _ in $(seq 60); do rabbitmqctl -q status >/dev/null 2>&1 && break; sleep 1; done
  fi
  rabbitmqctl -q status >/dev/null 2>&1 \
    || { server_missing RabbitMQ "is not running (rabbitmqctl status fails)"; return 1; }
  ensure_rabbitmq_management
}

ensure_rabbitmq_management() {
  # `status` lists RabbitMQ's queues through the management plugin's HTTP API (port 15672);
  # the tests check it. Enabling it is online (no restart) and recorded in enabled_plugins.
  if ! rabbitmq-plugins -q is_enabled rabbitmq_management >/dev/null 2>&1; then
    echo "enabling RabbitMQ's management plugin" >&2
    rabbitmq-plugins -q enable rabbitmq_management >/dev/null \
      || { server_missing "RabbitMQ's management plugin" "could not be enabled"; return 1; }
  fi
  for _ in $(seq 30); do
    (exec 3<>/dev/tcp/127.0.0.1/15672) 2>/dev/null && return 0
    sleep 1
  done
  server_missing "RabbitMQ's management API" "does not answer on 127.0.0.1:15672"
}

ensure_postgresql() {
  local installed=""
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql || { server_missing PostgreSQL "could not be installed"; return 1; }
    installed=1
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ -n "$installed" ]; then
    # A fresh install asks for passwords on TCP; the tests connect as postgres over 127.0.0.1.
    sed -i '1i host all all 127.0.0.1/32 trust' "/etc/postgresql/$version/main/pg_hba.conf"
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 \
    || { server_missing PostgreSQL "does not answer on 127.0.0.1:5432"; return 1; }
  if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -qc "create database test" \
      || { server_missing PostgreSQL "has no database 'test' and it could not be created"; return 1; }
  fi
}

ensure_venv() {
  # $1: the extra to install (test, all)
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q -e ".[$1]" 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import commissaire_tasks" # fail here if the install did not work
}
