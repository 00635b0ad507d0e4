#!/usr/bin/env bash
# Builds the local images Shoal's tests and examples run, without a registry:
# each image is a root file system made in a temporary directory and imported
# with `podman import`. Skips images already present unless --force.
#
#   scripts/build-images.sh [--force] [IMAGE_KEY...]     (default: every image)
#
# To add an image: write `build_<key> ROOTFS_DIR` (dashes in the key become
# underscores; fill the directory, print `--change` instructions for `podman
# import` on stdout, one per line), and add `<key>` with its reference to
# `image_refs` below. An image whose key also has `inputs_<key>` (printing what
# the image is made of: file contents, program versions) carries their hash in
# a label and is rebuilt when they change.
#
# The guestbook's images (examples/guestbook/) need redis-server (Debian's
# package, installed with apt-get when missing) and node (the one running here).
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A image_refs=(
  [busybox]=localhost/shoal/busybox:latest
  [redis]=localhost/shoal/redis:latest
  [guestbook-redis-slave]=localhost/shoal/guestbook-redis-slave:latest
  [guestbook-frontend]=localhost/shoal/guestbook-frontend:latest
)
default_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
inputs_label=io.shoal.image.inputs
guestbook_app=examples/guestbook/app

# A busybox-static root file system: /bin/busybox and a link per applet
# (sh, wget, nc, httpd, ...), the directories programs expect, and root/nobody.
build_busybox() {
  local rootfs=$1
  mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,proc,sys,dev,www}
  chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  local applet_path
  # --list-full prints each applet where busybox would install it (usr/bin/wget).
  while read -r applet_path; do
    [ -n "$applet_path" ] && [ "$applet_path" != bin/busybox ] || continue
    mkdir -p "$rootfs/$(dirname "$applet_path")"
    ln -sf /bin/busybox "$rootfs/$applet_path"
  done < <(/bin/busybox --list-full)
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  echo "ENV PATH=$default_path"
  echo 'CMD ["sh"]'
}

# Copies a dynamically linked program and every library `ldd` lists for it
# (and the loader) into the root file system, at the same paths.
copy_program_with_libraries() {
  local rootfs=$1 program=$2 destination=$3 library
  mkdir -p "$rootfs/$(dirname "$destination")"
  cp -L "$program" "$rootfs/$destination"
  # Lines look like `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux-x86-64.so.2 (0x...)`.
  while read -r library; do
    [ -n "$library" ] || continue
    mkdir -p "$rootfs/$(dirname "$library")"
    cp -L "$library" "$rootfs/$library"
  done < <(ldd "$program" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
}

redis_server_path() {
  if ! command -v redis-server >/dev/null; then
    echo "installing redis-server (Debian's package) for the Redis images" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >&2
  fi
  command -v redis-server
}

node_path() {
  readlink -f "$(command -v node)"
}

# What a program is, for the inputs hash: its resolved path, size and modification time.
describe_program() {
  stat -L -c '%n %s %Y' "$1"
}

# Redis from Debian's redis-server package, its libraries and nothing else;
# runs a master (no persistence, replicas served at once).
build_redis() {
  local rootfs=$1
  mkdir -p "$rootfs"/{tmp,data,etc}
  chmod 1777 "$rootfs/tmp"
  copy_program_with_libraries "$rootfs" "$(redis_server_path)" /usr/bin/redis-server
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
  echo "ENV PATH=$default_path"
  echo 'WORKDIR /data'
  echo 'ENTRYPOINT ["redis-server"]'
  echo 'CMD ["--protected-mode", "no", "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"]'
}
inputs_redis() {
  describe_program "$(redis_server_path)"
}

# busybox, redis-server and the guestbook's replica entrypoint, which follows
# the master named by REDIS_MASTER_SERVICE_HOST/_PORT (GET_HOSTS_FROM=env).
build_guestbook_redis_slave() {
  local rootfs=$1
  build_busybox "$rootfs" >/dev/null
  mkdir -p "$rootfs"/{data,usr/local/bin}
  copy_program_with_libraries "$rootfs" "$(redis_server_path)" /usr/bin/redis-server
  cp "$guestbook_app/redis-slave.sh" "$rootfs/usr/local/bin/guestbook-redis-slave"
  chmod 755 "$rootfs/usr/local/bin/guestbook-redis-slave"
  echo "ENV PATH=$default_path"
  echo 'WORKDIR /data'
  echo 'ENTRYPOINT ["/usr/local/bin/guestbook-redis-slave"]'
  echo 'CMD []'
}
inputs_guestbook_redis_slave() {
  describe_program /bin/busybox
  describe_program "$(redis_server_path)"
  cat "$guestbook_app/redis-slave.sh"
}

# The guestbook's web frontend: the node binary running here, its libraries,
# and the app (no dependencies).
build_guestbook_frontend() {
  local rootfs=$1 file
  mkdir -p "$rootfs"/{tmp,etc,app}
  chmod 1777 "$rootfs/tmp"
  copy_program_with_libraries "$rootfs" "$(node_path)" /usr/local/bin/node
  for file in server.mjs resp.mjs index.html; do cp "$guestbook_app/$file" "$rootfs/app/$file"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  echo "ENV PATH=$default_path"
  echo 'WORKDIR /app'
  echo 'ENTRYPOINT ["/usr/local/bin/node", "/app/server.mjs"]'
  echo 'CMD []'
}
inputs_guestbook_frontend() {
  describe_program "$(node_path)"
  cat "$guestbook_app/server.mjs" "$guestbook_app/resp.mjs" "$guestbook_app/index.html"
}

# The hash of an image's inputs, or nothing for an image without inputs_<key>.
inputs_hash() {
  local function_name="inputs_${1//-/_}"
  declare -F "$function_name" >/dev/null || return 0
  { declare -f "build_${1//-/_}"; "$function_name"; } | sha256sum | cut -c1-16
}

force=0
keys=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -*) echo "build-images.sh: unknown option $arg" >&2; exit 2 ;;
    *)
      if [ -z "${image_refs[$arg]+set}" ]; then
        echo "build-images.sh: unknown image $arg (known: ${!image_refs[*]})" >&2
        exit 2
      fi
      keys+=("$arg")
      ;;
  esac
done
[ ${#keys[@]} -gt 0 ] || keys=("${!image_refs[@]}")

for key in "${keys[@]}"; do
  ref=${image_refs[$key]}
  wanted_inputs=$(inputs_hash "$key")
  if [ "$force" = 0 ] && podman image exists "$ref"; then
    present_inputs=$(podman image inspect --format "{{index .Labels \"$inputs_label\"}}" "$ref" 2>/dev/null || true)
    if [ -z "$wanted_inputs" ] || [ "$present_inputs" = "$wanted_inputs" ]; then
      echo "image $ref present"
      continue
    fi
  fi
  work_dir=$(mktemp -d "/tmp/shoal-image-$key.XXXXXX")
  trap 'rm -rf "$work_dir"' EXIT
  mkdir "$work_dir/rootfs"
  change_args=()
  [ -z "$wanted_inputs" ] || change_args+=(--change "LABEL $inputs_label=$wanted_inputs")
  # Into a file first: a failing build function must stop the script (set -e does not see into <(...)).
  "build_${key//-/_}" "$work_dir/rootfs" >"$work_dir/changes"
  while read -r change; do
    [ -n "$change" ] && change_args+=(--change "$change")
  done <"$work_dir/changes"
  replaced_id=$(podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)
  tar -C "$work_dir/rootfs" -c . | podman import --quiet "${change_args[@]}" - "$ref" >/dev/null
  rm -rf "$work_dir"
  trap - EXIT
  # The image --force replaced is left without a name; drop it unless a container still uses it.
  if [ -n "$replaced_id" ] && [ "$replaced_id" != "$(podman image inspect --format '{{.Id}}' "$ref")" ]; then
    podman rmi "$replaced_id" >/dev/null 2>&1 || true
  fi
  echo "image $ref built"
done
