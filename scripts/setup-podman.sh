#!/usr/bin/env bash
# Makes a Docker-compatible engine available on this machine, as root, for the
# Docker runtime and its tests: Podman (Debian's) serving the Docker API on a
# socket of our own, plus the local images the tests and examples use (there is
# no registry). Idempotent: run it as often as you like.
#
# stdout carries exactly one line, `DOCKER_HOST=unix://...`, so callers can
#   docker_host_assignment=$(scripts/setup-podman.sh) && export "$docker_host_assignment"
# Everything else (apt, progress) goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 3>&1 1>&2

socket_dir=${SHOAL_PODMAN_DIR:-/run/shoal-podman}
socket_path="$socket_dir/podman.sock"
service_log="$socket_dir/service.log"
service_pidfile="$socket_dir/service.pid"
conf_path=/etc/containers/containers.conf
# How long to wait for a freshly started service to answer (0.1 s steps).
ping_attempts_max=300

if [ "$(id -u)" != 0 ]; then
  echo "setup-podman.sh: needs root (apt-get, /etc/containers, a socket in /run)" >&2
  exit 1
fi

missing_packages=()
command -v podman >/dev/null || missing_packages+=(podman)
command -v runc >/dev/null || missing_packages+=(runc)
[ -x /bin/busybox ] || missing_packages+=(busybox-static)
command -v curl >/dev/null || missing_packages+=(curl)
if [ ${#missing_packages[@]} -gt 0 ]; then
  echo "installing ${missing_packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_packages[@]}"
fi

# Sets `key = value` inside `[section]` of a TOML file, keeping everything else:
# replaces the key where the section has it, else adds it under the section's
# header, else appends the section.
set_toml_key() {
  local file=$1 section=$2 key=$3 value=$4
  touch "$file"
  awk -v section="[$section]" -v key="$key" -v line="$key = $value" '
    function flush_missing() { if (in_section && !done) { print line; done = 1 } }
    /^[[:space:]]*\[/ {
      flush_missing()
      header = $0; gsub(/[[:space:]]/, "", header)
      in_section = (header == section); if (in_section) seen = 1
      print; next
    }
    in_section && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" { if (!done) print line; done = 1; next }
    { print }
    END {
      flush_missing()
      if (!seen) { print ""; print section; print line }
    }
  ' "$file" >"$file.tmp"
  mv "$file.tmp" "$file"
}

# crun fails on this machine's hybrid cgroup layout; the default ulimits need
# CAP_SYS_RESOURCE, which we may not have inside a CI container.
mkdir -p "$(dirname "$conf_path")"
conf_before=$(cat "$conf_path" 2>/dev/null || true)
set_toml_key "$conf_path" containers default_ulimits '["nofile=1024:1024","nproc=1024:1024"]'
set_toml_key "$conf_path" engine runtime '"runc"'
# An exec through the API leaves its conmon waiting this long (default 300 s,
# as Docker keeps exit codes) for the client to read the exit code; Shoal reads
# it at once, and exec probes every few seconds would pile up sleeping conmons.
set_toml_key "$conf_path" engine exit_command_delay 10
conf_changed=0
[ "$conf_before" = "$(cat "$conf_path")" ] || conf_changed=1

engine_answers() {
  curl -sf --max-time 2 --unix-socket "$socket_path" http://d/_ping >/dev/null 2>&1
}

# A service this script started earlier reads the configuration only at start.
if [ "$conf_changed" = 1 ] && [ -f "$service_pidfile" ]; then
  old_pid=$(cat "$service_pidfile")
  if grep -qa "podman.*system.*service" "/proc/$old_pid/cmdline" 2>/dev/null; then
    echo "configuration changed: restarting the podman service (pid $old_pid)"
    kill "$old_pid"
    for _ in $(seq 50); do [ -e "/proc/$old_pid" ] || break; sleep 0.1; done
  fi
fi

if ! engine_answers; then
  mkdir -p "$socket_dir"
  rm -f "$socket_path"
  echo "starting podman system service on $socket_path (log: $service_log)"
  # setsid: the service outlives this script and the shell that ran it. Its
  # working directory is the socket's: conmon drops stray files (`oom`) there.
  # It must hold none of our descriptors above 2: fd 3 is our caller's stdout
  # (a `$(...)` pipe) and others may be a CI runner's; a service keeping one
  # open would keep its reader waiting for EOF forever.
  (
    cd "$socket_dir"
    for fd_path in /proc/$BASHPID/fd/*; do
      fd=${fd_path##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done
    exec setsid podman system service --time=0 "unix://$socket_path" >>"$service_log" 2>&1 </dev/null
  ) &
  echo $! >"$service_pidfile"
  attempt=0
  until engine_answers; do
    attempt=$((attempt + 1))
    if [ "$attempt" -ge "$ping_attempts_max" ]; then
      echo "podman service did not answer on $socket_path; its log:" >&2
      tail -n 30 "$service_log" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
fi
echo "podman answers on $socket_path ($(podman --version))"

scripts/build-images.sh

echo "DOCKER_HOST=unix://$socket_path" >&3
