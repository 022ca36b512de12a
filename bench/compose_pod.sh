#!/usr/bin/env bash
# The baseline of bench/compose_pod.py: the pod part of a grading of the compose fixture
# (tests/fixtures/apps/clients/compose_postgres_redis) with plain `docker` commands, for INSTANCES instances at once.
# Per instance: a hardened app container of the dependency layer (no network), the repository copied in, postgres
# and redis joining its network namespace with the caps and limits Viva gives sidecars, readiness polled (pg_isready
# over TCP, redis-cli ping) every POLL_S until ready within Viva's sidecar budget (POLL_TRIES; unlike Viva it does
# not call a service unhealthy after its healthcheck's `retries`), the app started as the Dockerfile's CMD says,
# polled until it answers any HTTP status, the probe requests sent from inside with python3, everything removed.
#
# Set by the caller: LAYER PG_IMAGE REDIS_IMAGE REPO SOCKETS CONTROL INSTANCES POLL_S POLL_TRIES APP_POLL_S REQUESTS
# COMMAND. SOCKETS/N holds instance N's gateway socket; CONTROL holds bridge.py, probe.py, plan.json, app.env.
# Prints `N PHASE EPOCH` at each phase's end (bash's clock, no process forked), `N latency EPOCH:MS…` and
# `N cpu CONTAINER NANOSECONDS` (its cgroup's CPU time, read before it is removed).
set -euo pipefail

mark() { echo "$1 $2 $EPOCHREALTIME"; }
sidecar() {  # the caps, limits and tmpfs mounts Viva's sandboxes/docker_pod.py gives a sidecar
  docker run -d --network "container:$1" --cap-drop ALL --cap-add CHOWN --cap-add SETUID --cap-add SETGID \
    --cap-add DAC_OVERRIDE --cap-add FOWNER --security-opt no-new-privileges --read-only \
    --tmpfs /tmp:rw,exec,nosuid,nodev,size=64m,mode=1777 --tmpfs /run:rw,nosuid,nodev,size=16m,mode=1777 \
    --memory 512m --memory-swap 512m --cpus 1 --pids-limit 256 "${@:2}"
}
poll() {  # run `$2…` in container $1 until it succeeds, every POLL_S, at most POLL_TRIES times
  docker exec "$1" sh -c 'tries=$1; shift; until "$@" > /dev/null 2>&1; do tries=$((tries - 1));
    [ "$tries" -gt 0 ] || exit 1; sleep "$0"; done' "$POLL_S" "$POLL_TRIES" "${@:2}"
}

instance() {
  n=$1
  app=$(docker run -d --network none --user 1000:1000 --cap-drop ALL --security-opt no-new-privileges --read-only \
    --tmpfs /work:rw,exec,nosuid,nodev,size=512m,uid=1000,gid=1000,mode=0700 \
    --tmpfs /tmp:rw,nosuid,nodev,size=64m,uid=1000,gid=1000,mode=1777 --memory 1g --memory-swap 1g --cpus 1 \
    --pids-limit 256 --init --add-host postgres:127.0.0.1 --add-host redis:127.0.0.1 \
    -v "$REPO":/repo:ro -v "$SOCKETS/$n":/sock:ro -v "$CONTROL":/control:ro -e HOME=/work -w /work \
    "$LAYER" sleep infinity)
  containers=("$app")
  trap 'docker rm -f "${containers[@]}" > /dev/null 2>&1' EXIT
  docker exec "$app" sh -c 'mkdir -p /work/app && cp -a /repo/. /work/app/'
  pg=$(sidecar "$app" --tmpfs /var/lib/postgresql/data:rw,nosuid,nodev,size=256m \
    -e POSTGRES_USER=handbook -e POSTGRES_PASSWORD=handbook -e POSTGRES_DB=handbook \
    -v "$REPO/db/init.sql":/docker-entrypoint-initdb.d/init.sql:ro "$PG_IMAGE")
  containers+=("$pg")
  redis=$(sidecar "$app" --tmpfs /data:rw,nosuid,nodev,size=256m "$REDIS_IMAGE")
  containers+=("$redis")
  # TCP, not the Unix socket: the entrypoint's temporary init server answers on the socket alone
  poll "$pg" pg_isready -h 127.0.0.1 -U handbook -d handbook
  poll "$redis" redis-cli ping
  mark "$n" pod
  docker exec -d "$app" python3 /control/bridge.py forward 18080 /sock/gateway.sock
  docker exec -d -w /work/app --env-file "$CONTROL/app.env" "$app" sh -c 'exec sh -c "$0" > /work/app.log 2>&1' \
    "$COMMAND"
  docker exec "$app" python3 /control/probe.py wait "$APP_POLL_S"
  mark "$n" app
  if ! asked=$(docker exec "$app" python3 /control/probe.py ask "$REQUESTS"); then
    docker exec "$app" tail -c 3000 /work/app.log >&2
    exit 1
  fi
  echo "$n latency $asked"
  mark "$n" probes
  for c in "${containers[@]:1}" "$app"; do  # CPU the instance's containers used, before they go
    echo "$n cpu $c $(cat "/sys/fs/cgroup/cpuacct/docker/$c/cpuacct.usage" 2> /dev/null || echo 0)"
  done
  docker rm -f "$pg" "$redis" > /dev/null  # the sidecars first: they live in the app's network namespace
  docker rm -f "$app" > /dev/null
  trap - EXIT
  mark "$n" down
}

pids=()
for n in $(seq 1 "$INSTANCES"); do
  instance "$n" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
