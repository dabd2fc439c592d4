# Sourced by the scripts that keep work under a fixed name in a shared directory (/var/tmp/<name>): R9, no
# predictable name in a directory another user can write, unless it is verified to be ours. Any user may
# create /var/tmp/<name> first; root would then run daemons on that user's configs and images.
#   private_dir DIR [MODE]   makes DIR (mode MODE, default 755) if missing, then requires a directory (not a
#                            symlink) owned by the caller and not writable by group or others; exits otherwise.
# Checked after it exists, so a directory someone slipped in between the test and mkdir is caught too; in
# the sticky /var/tmp nobody else can rename or replace our entry afterwards.
private_dir() {
  local dir="$1" mode="${2:-755}" owner perms
  if [ ! -e "$dir" ] && [ ! -L "$dir" ]; then mkdir -p -m "$mode" "$dir"; fi
  if [ -L "$dir" ] || [ ! -d "$dir" ]; then
    echo "$dir is not a directory of ours (a symbolic link or another file): remove it, or choose another name" >&2
    exit 1
  fi
  read -r owner perms < <(stat -c '%u %a' "$dir")
  if [ "$owner" != "$(id -u)" ]; then
    echo "$dir is owned by uid $owner, not by uid $(id -u): another user made it first; remove it, or choose another name" >&2
    exit 1
  fi
  if (( 8#$perms & 8#022 )); then
    echo "$dir is writable by group or others (mode $perms): refusing to use it" >&2
    exit 1
  fi
}
