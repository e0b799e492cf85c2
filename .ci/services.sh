#!/usr/bin/env bash
# Start the local services the tests talk to, when they are installed but
# stopped (a fresh machine boots with them running; a long-lived one may not).
# Never installs or skips anything: a service that cannot be reached makes the
# tests that need it fail with a clear message.
set -u

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # port name
  for _ in $(seq 1 50); do up "$1" && return 0; sleep 0.2; done
  echo "services: $2 did not come up on 127.0.0.1:$1" >&2
  return 1
}

if ! up 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "services: starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    wait_for 5432 PostgreSQL || true
  else
    echo "services: PostgreSQL is not running on 127.0.0.1:5432 and not installed here; its tests will fail" >&2
  fi
fi

if ! up 6379; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "services: starting Redis" >&2
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    wait_for 6379 Redis || true
  else
    echo "services: Redis is not running on 127.0.0.1:6379 and not installed here; its tests will fail" >&2
  fi
fi
if ! up 3306; then
  if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
    echo "services: starting MariaDB (the reconciliation tests read a CEL table there, as FreePBX keeps it)" >&2
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    wait_for 3306 MariaDB || true
  else
    echo "services: MariaDB/MySQL is not running on 127.0.0.1:3306 and not installed here; its tests will fail" >&2
  fi
fi
exit 0
