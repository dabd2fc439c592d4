#!/usr/bin/env bash
# Builds the images the engine tests run, without a registry or an engine:
#   OUT/rootfs/                 a busybox rootfs (busybox-static and its applet links)
#   OUT/busybox-rootfs.tar      that rootfs as a plain tarball (docker import, podman import)
#   OUT/busybox-oci.tar         an OCI image-layout archive, ref localhost/tsrt-busybox:latest (ctr images import)
#   OUT/busybox-docker.tar      a docker-archive, tag tsrt-busybox:latest (docker load)
#   OUT/pause-oci.tar           the CRI sandbox image registry.k8s.io/pause:3.6: the same layer, a sleeping init
# Usage: hack/engines/image.sh OUT
# Every file is rebuilt from scratch, so the digests depend only on the busybox binary.
set -euo pipefail
out=${1:?usage: image.sh OUT}
mkdir -p "$out"
out=$(cd "$out" && pwd)
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "image.sh: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }

rootfs=$out/rootfs
rm -rf "$rootfs"
mkdir -p "$rootfs"/{bin,sbin,etc,proc,sys,dev,tmp,root,usr/bin,usr/sbin,var,run}
cp "$busybox" "$rootfs/bin/busybox"
# The applet list comes from the binary itself; links are made from the host, so nothing runs in the rootfs.
for applet in $("$busybox" --list-full); do
  [ -e "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
: > "$rootfs/etc/hosts"
: > "$rootfs/etc/resolv.conf"
chmod 1777 "$rootfs/tmp"

# Reproducible tar: sorted names, numeric root ownership, epoch mtimes.
tarball() { tar -C "$1" --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -cf "$2" .; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

tarball "$rootfs" "$out/busybox-rootfs.tar"

work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
diff_id=$(sha "$out/busybox-rootfs.tar")
gzip -n -c "$out/busybox-rootfs.tar" > "$work/layer.tar.gz"
layer_digest=$(sha "$work/layer.tar.gz")
layer_size=$(stat -c %s "$work/layer.tar.gz")
path_env='"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"'

# image_config CONFIG_JSON_BODY -> the image config document (created is fixed: digests stay stable)
image_config() {
  printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$1" "$diff_id"
}

# oci_archive OUT REF CONFIG_BODY: one manifest in an image layout, named by org.opencontainers.image.ref.name
oci_archive() {
  local dest=$1 ref=$2 body=$3 layout
  layout=$(mktemp -d "$work/oci.XXXXXX")
  mkdir -p "$layout/blobs/sha256"
  cp "$work/layer.tar.gz" "$layout/blobs/sha256/$layer_digest"
  image_config "$body" > "$layout/config"
  local config_digest config_size
  config_digest=$(sha "$layout/config"); config_size=$(stat -c %s "$layout/config")
  mv "$layout/config" "$layout/blobs/sha256/$config_digest"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$config_digest" "$config_size" "$layer_digest" "$layer_size" > "$layout/manifest"
  local manifest_digest manifest_size
  manifest_digest=$(sha "$layout/manifest"); manifest_size=$(stat -c %s "$layout/manifest")
  mv "$layout/manifest" "$layout/blobs/sha256/$manifest_digest"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest_digest" "$manifest_size" "$ref" > "$layout/index.json"
  tarball "$layout" "$dest"
}

busybox_config="\"Env\":[$path_env],\"Cmd\":[\"/bin/sh\"]"
# The sandbox only holds namespaces; containerd stops it with SIGKILL.
pause_config="\"Env\":[$path_env],\"Entrypoint\":[\"/bin/sleep\",\"2147483647\"]"
oci_archive "$out/busybox-oci.tar" localhost/tsrt-busybox:latest "$busybox_config"
oci_archive "$out/pause-oci.tar" registry.k8s.io/pause:3.6 "$pause_config"

# docker-archive (docker save's format): manifest.json names the config file and one directory per layer
# holding the uncompressed layer.tar.
archive=$(mktemp -d "$work/docker.XXXXXX")
image_config "$busybox_config" > "$archive/config"
config_digest=$(sha "$archive/config")
mv "$archive/config" "$archive/$config_digest.json"
mkdir "$archive/$diff_id"
cp "$out/busybox-rootfs.tar" "$archive/$diff_id/layer.tar"
printf '1.0' > "$archive/$diff_id/VERSION"
printf '{"id":"%s","created":"1970-01-01T00:00:00Z","os":"linux"}' "$diff_id" > "$archive/$diff_id/json"
printf '[{"Config":"%s.json","RepoTags":["tsrt-busybox:latest"],"Layers":["%s/layer.tar"]}]' "$config_digest" "$diff_id" > "$archive/manifest.json"
printf '{"tsrt-busybox":{"latest":"%s"}}' "$diff_id" > "$archive/repositories"
tarball "$archive" "$out/busybox-docker.tar"
echo "image.sh: $out/{busybox-rootfs.tar,busybox-oci.tar,busybox-docker.tar,pause-oci.tar}"
