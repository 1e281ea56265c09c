#!/usr/bin/env bash
# Start the local PostgreSQL and Redis the tests talk to, when installed but stopped.
# A service that is not installed is reported; the tests that need it fail loudly.
set -u

if command -v pg_isready >/dev/null 2>&1; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "services: starting PostgreSQL"
    for version in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  fi
  pg_isready -h 127.0.0.1 -p 5432 >/dev/null || echo "services: WARNING PostgreSQL is not answering"
else
  echo "services: WARNING PostgreSQL is not installed"
fi

if command -v redis-server >/dev/null 2>&1; then
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "services: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
      --appendonly no --dir /tmp --logfile /tmp/megacity-redis.log || true
    for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || echo "services: WARNING Redis is not answering"
else
  echo "services: WARNING Redis is not installed"
fi
exit 0
