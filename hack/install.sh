#!/usr/bin/env bash
# Installs what `npm run build` put in dist/, or removes it again:
#   hack/install.sh [--singularity] [PREFIX]    PREFIX/bin/tsrt and tsrt-singularity, their man pages in
#                                                PREFIX/share/man, bash completion in
#                                                PREFIX/share/bash-completion/completions and the site config
#                                                examples in PREFIX/share/doc/tsrt/examples (PREFIX: /usr/local);
#                                                --singularity also installs run-singularity and the name
#                                                singularity for tsrt-singularity (a link), its page and completion
#   hack/install.sh --uninstall [PREFIX]         removes exactly what the install put there
# DESTDIR (from the environment, as make's) stages the tree under another root for a package: the files land in
# DESTDIR/PREFIX, the links and the list below name PREFIX.
# An install writes the list of what it put (and the directories it made) to PREFIX/share/tsrt/installed;
# --uninstall reads that list, so it removes nothing else even after the tree or dist/ changed. A file that is
# in the way and not on the list (a real Singularity's `singularity`) is never replaced: the install fails.
# Whoever can write a directory on the way to where the files go could swap them for their own, which root
# would then run (R9): an install dir, or one above it, that a user other than root and the installing one owns
# or can write is refused, before anything is written.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022

usage() {
  echo "usage: [DESTDIR=DIR] hack/install.sh [--singularity] [PREFIX] | [DESTDIR=DIR] hack/install.sh --uninstall [PREFIX]" >&2
  exit 2
}

mode=install singularity=no prefix=/usr/local
for arg in "$@"; do
  case $arg in
  --uninstall) mode=uninstall ;;
  --singularity) singularity=yes ;;
  -h | --help) usage ;;
  -*) echo "install: unknown flag $arg" >&2; usage ;;
  *) prefix=$arg ;;
  esac
done
[ "$mode" = install ] || [ "$singularity" = no ] || usage
destdir=${DESTDIR:-}
for name in PREFIX DESTDIR; do
  if [ "$name" = PREFIX ]; then value=$prefix; else value=$destdir; fi
  [ "$name" = DESTDIR ] && [ -z "$value" ] && continue
  case $value in
  /*) ;;
  *) echo "install: $name must be an absolute path: $value" >&2; exit 2 ;;
  esac
  case /$value/ in
  */../* | */./*) echo "install: $name must not hold . or .. components: $value" >&2; exit 2 ;;
  esac
  if [[ $value == *$'\n'* ]]; then echo "install: $name holds a newline" >&2; exit 2; fi
done
prefix=${prefix%/}
destdir=${destdir%/}
manifest=$prefix/share/tsrt/installed

fail() {
  echo "install: $*" >&2
  exit 1
}

me=$(id -u)
# A directory in which only root and the installing user can make, remove or rename entries.
only_ours() {
  local uid mode
  read -r uid mode < <(stat -c '%u %a' -- "$1")
  [ "$uid" = 0 ] || [ "$uid" = "$me" ] || return 1
  (((8#$mode & 8#022) == 0))
}
describe() {
  stat -c '%n (owner uid %u, mode %a)' -- "$1"
}
# Checks the way down to DIR (staged path, absolute, no . or ..) one entry at a time, through symlinks: each
# entry lies in a directory only root and we can change, or in a sticky one (/tmp) and is root's or ours; the
# deepest directory that exists, in which the install makes names of its own, must be only ours whatever its bits.
walk() {
  local rest=${1#/} part next owner target
  [ -n "${cur:-}" ] || { cur=/; only_ours / || fail "$(describe /) can be written by another user"; }
  while [ -n "$rest" ]; do
    part=${rest%%/*}
    rest=${rest#"$part"}
    rest=${rest#/}
    next=${cur%/}/$part
    if [ ! -e "$next" ] && [ ! -L "$next" ]; then
      only_ours "$cur" || fail "$next would be made in $(describe "$cur"), which another user can write; choose another PREFIX or DESTDIR"
      stop=yes
      return 0
    fi
    if ! only_ours "$cur"; then
      owner=$(stat -c %u -- "$next")
      [ -k "$cur" ] && { [ "$owner" = 0 ] || [ "$owner" = "$me" ]; } ||
        fail "$next lies in $(describe "$cur"), where another user can replace it; choose another PREFIX or DESTDIR"
    fi
    if [ -L "$next" ]; then
      target=$(realpath -e -- "$next") || fail "$next is a dangling symlink"
      cur=
      walk "$target"
      [ "${stop:-}" = yes ] && return 0
    else
      [ -d "$next" ] || fail "$next is not a directory"
      cur=$next
    fi
  done
}
check_dir() {
  cur= stop=
  walk "$1"
  [ "$stop" = yes ] || only_ours "$cur" || fail "$(describe "$cur") can be written by another user; choose another PREFIX or DESTDIR"
}

bin=$prefix/bin man=$prefix/share/man completions=$prefix/share/bash-completion/completions
examples=$prefix/share/doc/tsrt/examples
if [ "$mode" = install ]; then
  dirs=("$bin" "$man/man1" "$man/man8" "$completions" "$examples" "${manifest%/*}")
else
  dirs=("${manifest%/*}")
fi
for dir in "${dirs[@]}"; do check_dir "$destdir$dir"; done

uninstall() {
  if [ ! -f "$destdir$manifest" ]; then
    fail "nothing to uninstall: $destdir$manifest does not exist"
  fi
  local kind path dirs=()
  while IFS=' ' read -r kind path; do
    case $kind in
    file | link) rm -f -- "$destdir$path" ;;
    dir) dirs+=("$path") ;;
    esac
  done <"$destdir$manifest"
  rm -f -- "$destdir$manifest"
  # Deepest first; a directory something else has put files in since stays.
  local i
  for ((i = ${#dirs[@]} - 1; i >= 0; i--)); do rmdir -- "$destdir${dirs[i]}" 2>/dev/null || true; done
  echo "install: removed tsrt from $destdir$prefix"
}

if [ "$mode" = uninstall ]; then
  uninstall
  exit 0
fi

for f in dist/tsrt dist/tsrt-core dist/tsrt-singularity dist/run-singularity dist/man/tsrt.8 dist/completion/tsrt; do
  [ -e "$f" ] || fail "$f is missing: run 'npm run build' first"
done

declare -A ours=()
if [ -f "$destdir$manifest" ]; then
  while IFS=' ' read -r kind path; do ours[$path]=$kind; done <"$destdir$manifest"
fi
entries=()
# The staging root itself is the packager's, not part of what is installed.
[ -z "$destdir" ] || mkdir -p -- "$destdir"

# mkdir -p that notes each directory it makes, so that --uninstall takes away only those.
make_dir() {
  local dir=$1
  [ -d "$destdir$dir" ] && return 0
  make_dir "$(dirname "$dir")"
  mkdir -m 0755 -- "$destdir$dir"
  entries+=("dir $dir")
}

# Refuses to replace what an earlier install of ours did not put there.
check_free() {
  if { [ -e "$destdir$1" ] || [ -L "$destdir$1" ]; } && [ -z "${ours[$1]:-}" ]; then
    fail "$destdir$1 exists and was not installed by hack/install.sh; remove it or choose another PREFIX"
  fi
}

put() { # put MODE SOURCE DEST
  check_free "$3"
  make_dir "$(dirname "$3")"
  install -m "$1" -- "$2" "$destdir$3"
  entries+=("file $3")
}

link() { # link TARGET (relative, beside DEST) DEST
  check_free "$2"
  make_dir "$(dirname "$2")"
  ln -sfn -- "$1" "$destdir$2"
  entries+=("link $2")
}

# Directories an earlier install made stay recorded, so that the uninstall after a reinstall removes them too.
for path in "${!ours[@]}"; do [ "${ours[$path]}" = dir ] && entries+=("dir $path"); done

# dist/tsrt is the front door; it runs the core from its own directory (issue 17).
put 0755 dist/tsrt-core "$bin/tsrt-core"
put 0755 dist/tsrt "$bin/tsrt"
put 0755 dist/tsrt-singularity "$bin/tsrt-singularity"
for page in dist/man/*.[0-9]; do
  section=${page##*.}
  put 0644 "$page" "$man/man$section/$(basename "$page")"
done
put 0644 dist/completion/tsrt "$completions/tsrt"
put 0644 dist/completion/tsrt-singularity "$completions/tsrt-singularity"
# Examples only: a file in /etc/tsrt or /etc/tsrt-singularity is the site's policy, which the administrator writes.
put 0644 docs/examples/tsrt.conf "$examples/tsrt.conf"
put 0644 docs/examples/singularity.conf "$examples/singularity.conf"
if [ "$singularity" = yes ]; then
  # run-singularity runs the tsrt-singularity beside it; images name it on their #! line.
  put 0755 dist/run-singularity "$bin/run-singularity"
  link tsrt-singularity "$bin/singularity"
  link tsrt-singularity.1 "$man/man1/singularity.1"
  link tsrt-singularity "$completions/singularity"
fi

# What the earlier install put and this one did not (a verb's page that is gone, the singularity names).
declare -A now=()
for e in "${entries[@]}"; do now[${e#* }]=1; done
for path in "${!ours[@]}"; do
  case ${ours[$path]} in file | link) [ -n "${now[$path]:-}" ] || rm -f -- "$destdir$path" ;; esac
done

make_dir "$(dirname "$manifest")"
# The manifest's own directory goes last, so that an uninstall empties it before removing it.
printf '%s\n' "${entries[@]}" | sort -u -k1,1 -k2 | awk '$1 != "dir"' >"$destdir$manifest.tmp"
printf '%s\n' "${entries[@]}" | awk '$1 == "dir"' | awk '!seen[$0]++' | sort -t ' ' -k2 >>"$destdir$manifest.tmp"
mv -f -- "$destdir$manifest.tmp" "$destdir$manifest"
echo "install: tsrt $(dist/tsrt --version | head -1 | sed 's/^tsrt version //') in $destdir$prefix"
