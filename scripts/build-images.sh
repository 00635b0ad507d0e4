#!/usr/bin/env bash
# Builds the local images Shoal's tests and examples run, without a registry:
# each image is a root file system made in a temporary directory and imported
# with `podman import`. Skips images already present unless --force.
#
#   scripts/build-images.sh [--force] [IMAGE_KEY...]     (default: every image)
#
# To add an image: write `build_<key> ROOTFS_DIR` (fill the directory, print
# `--change` instructions for `podman import` on stdout, one per line), and add
# `<key>` with its reference to `image_refs` below.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A image_refs=(
  [busybox]=localhost/shoal/busybox:latest
)
default_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

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
  if [ "$force" = 0 ] && podman image exists "$ref"; then
    echo "image $ref present"
    continue
  fi
  rootfs=$(mktemp -d "/tmp/shoal-image-$key.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  change_args=()
  while read -r change; do
    [ -n "$change" ] && change_args+=(--change "$change")
  done < <("build_$key" "$rootfs")
  replaced_id=$(podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)
  tar -C "$rootfs" -c . | podman import "${change_args[@]}" - "$ref" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  # The image --force replaced is left without a name; drop it unless a container still uses it.
  if [ -n "$replaced_id" ] && [ "$replaced_id" != "$(podman image inspect --format '{{.Id}}' "$ref")" ]; then
    podman rmi "$replaced_id" >/dev/null 2>&1 || true
  fi
  echo "image $ref built"
done
