#!/bin/sh
# The guestbook's Redis replica: follows the master it finds through the
# redis-master service's variables when GET_HOSTS_FROM=env (as the reference's
# image does), through the name `redis-master` (cluster DNS) otherwise.
# The entrypoint of localhost/shoal/guestbook-redis-slave (on busybox) and the
# program `guestbook-redis-slave` of the process runtime (examples/guestbook-process/bin/).
# Listens on $POD_IP (process runtime: each pod its own loopback address) or
# everywhere, port $PORT or 6379. Extra arguments go to redis-server.
set -eu
# Without the master's variables, exit after this long: the restart (immediate the first time) gets them.
missing_service_exit_delay_s=3

if [ "${GET_HOSTS_FROM:-dns}" = env ]; then
  master_host=${REDIS_MASTER_SERVICE_HOST:-}
  master_port=${REDIS_MASTER_SERVICE_PORT:-6379}
  if [ -z "$master_host" ]; then
    echo "guestbook-redis-slave: GET_HOSTS_FROM=env but REDIS_MASTER_SERVICE_HOST is unset: the redis-master service did not exist when this pod started; exiting so that the restart gets it" >&2
    sleep "$missing_service_exit_delay_s"
    exit 1
  fi
else
  master_host=redis-master
  master_port=6379
fi
echo "guestbook-redis-slave: following the master at $master_host:$master_port"
exec redis-server --bind "${POD_IP:-0.0.0.0}" --port "${PORT:-6379}" --protected-mode no \
  --save '' --appendonly no --replicaof "$master_host" "$master_port" "$@"
