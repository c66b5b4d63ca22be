#!/usr/bin/env bash
# install.sh: installs Depot under a prefix, as //:install.
#   tools/bazelw run //:install -- --prefix=/usr/local [--destdir=DIR]
#   tools/bazelw run //:install -- --prefix=/usr/local [--destdir=DIR] --uninstall
#
# PREFIX is where Depot will live (the pkg-config files name it); DESTDIR,
# for packagers, is a staging root the files are written under
# ($DESTDIR/$PREFIX/...).  Every file, link and directory the install
# creates is listed in PREFIX/share/depot/install_manifest.txt (paths
# relative to PREFIX), and --uninstall removes exactly those.
set -euo pipefail

die() { echo "install: $*" >&2; exit 2; }

usage() {
  cat <<'EOF'
usage: install --prefix=PREFIX [--destdir=DIR] [--uninstall]
  --prefix=PREFIX  where Depot is installed (bin/, lib/, include/, share/)
  --destdir=DIR    stage the files under DIR (default: $DESTDIR)
  --uninstall      remove what an install with the same options put there
EOF
}

prefix= destdir=${DESTDIR:-} uninstall=0
for arg in "$@"; do
  case $arg in
    --prefix=*) prefix=${arg#*=} ;;
    --destdir=*) destdir=${arg#*=} ;;
    --uninstall) uninstall=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $arg" ;;
  esac
done
[[ -n $prefix ]] || { usage >&2; die "--prefix is required"; }

# `bazel run` starts us in the runfiles tree; relative paths are the user's.
absolute() { case $1 in /*) echo "$1" ;; *) echo "${BUILD_WORKING_DIRECTORY:-$PWD}/$1" ;; esac; }
prefix=$(absolute "$prefix")
prefix=${prefix%/}
[[ -z $destdir ]] || destdir=$(absolute "$destdir")
root=${destdir%/}$prefix
manifest_rel=share/depot/install_manifest.txt
manifest=$root/$manifest_rel

if ((uninstall)); then
  [[ -f $manifest ]] || die "no install manifest at $manifest"
  mapfile -t entries <"$manifest"
  n=0
  for e in "${entries[@]}"; do
    case ${e%% *} in f | l) rm -f -- "$root/${e#* }"; n=$((n + 1)) ;; esac
  done
  rm -f -- "$manifest"
  # Python writes __pycache__ beside the package's modules when it imports
  # them: not in the manifest, but the install's all the same.
  for e in "${entries[@]}"; do
    [[ $e == "d "*/dist-packages/depot ]] && rm -rf -- "$root/${e#* }/__pycache__"
  done
  # The directories the install created, deepest first, where now empty.
  for ((i = ${#entries[@]} - 1; i >= 0; i--)); do
    e=${entries[i]}
    [[ ${e%% *} == d ]] && rmdir -- "$root/${e#* }" 2>/dev/null || true
  done
  echo "install: removed $n files from $root"
  exit 0
fi

# The files, from the runfiles tree.
runfiles=${RUNFILES_DIR:-}
[[ -n $runfiles ]] || { [[ -d $0.runfiles ]] && runfiles=$0.runfiles; } || true
[[ -n $runfiles ]] || runfiles=${TEST_SRCDIR:-}
src=$runfiles/depot
[[ -f $src/libdepot.so ]] || die "cannot find the built files (looked in $src)"
header=$src/runtime/include/depot/depot.h
version_part() { sed -n "s/^#define DEPOT_VERSION_$1 \([0-9]*\)\$/\1/p" "$header"; }
major=$(version_part MAJOR)
version=$major.$(version_part MINOR).$(version_part PATCH)

mkdir -p -- "$root"

# Adds an entry to the manifest (held back until its directory exists).
pending=()
record() {
  if [[ -d ${manifest%/*} ]]; then
    ((${#pending[@]} == 0)) || printf '%s\n' "${pending[@]}" >>"$manifest"
    pending=()
    echo "$1" >>"$manifest"
  else
    pending+=("$1")
  fi
}

# Makes directory $1 (relative to the prefix) and the parents it lacks,
# each listed in the manifest.
make_dir() {
  [[ -d $root/$1 ]] && return
  local parent
  parent=$(dirname -- "$1")
  [[ $parent == . ]] || make_dir "$parent"
  mkdir -- "$root/$1"
  record "d $1"
}
# put MODE SOURCE DEST: one file.
put() {
  make_dir "$(dirname -- "$3")"
  rm -f -- "$root/$3"
  cp -- "$2" "$root/$3"
  chmod "$1" "$root/$3"
  record "f $3"
}
# link TARGET DEST: a symbolic link.
link() {
  make_dir "$(dirname -- "$2")"
  ln -sfn -- "$1" "$root/$2"
  record "l $2"
}
# stamp SOURCE DEST: a pkg-config file, given its prefix.
stamp() {
  local tmp
  tmp=$(mktemp)
  sed "s|@PREFIX@|$prefix|g" "$1" >"$tmp"
  put 644 "$tmp" "$2"
  rm -f "$tmp"
}

# The manifest is written as files go in, so a failed install can be undone.
make_dir "$(dirname -- "$manifest_rel")"

put 755 "$src/libdepot.so" "lib/libdepot.so.$version"
link "libdepot.so.$version" "lib/libdepot.so.$major"
link "libdepot.so.$major" lib/libdepot.so
put 644 "$src/libdepot.a" lib/libdepot.a
put 644 "$src/libdepot_malloc.a" lib/libdepot_malloc.a
put 644 "$header" include/depot/depot.h
stamp "$src/tools/pkg/depot.pc" lib/pkgconfig/depot.pc
stamp "$src/tools/pkg/depot-malloc.pc" lib/pkgconfig/depot-malloc.pc
put 644 "$src/tools/pkg/depot-config.cmake" lib/cmake/depot/depot-config.cmake
put 644 "$src/tools/pkg/depot-config-version.cmake" lib/cmake/depot/depot-config-version.cmake
put 755 "$src/tools/depot-run" bin/depot-run
put 755 "$src/tools/stress" bin/depot-stress
put 755 "$src/tools/topo" bin/depot-topo
for page in depot.3 depot.7 depot-run.1 depot-stress.1 depot-topo.1; do
  put 644 "$src/tools/man/out/$page" "share/man/man${page##*.}/$page"
done
put 644 "$src/README.md" share/doc/depot/README.md

# Python's depot package and depot.pxd (Cython), where the build had
# python3-dev: PREFIX/lib/pythonX.Y/dist-packages/depot, the directory
# Debian's python3 searches for PREFIX=/usr/local; _depot.so finds
# libdepot.so in PREFIX/lib by its run path ($ORIGIN/../../..).
pkg=$src/runtime/python/tree/lib/python3/dist-packages/depot
if [[ -f $pkg/_depot.so ]] && grep -q PyInit__depot "$pkg/_depot.so"; then
  pyver=$(/usr/bin/python3 -c 'import sys; print("python%d.%d" % sys.version_info[:2])' 2>/dev/null || echo python3)
  pydir=lib/$pyver/dist-packages/depot
  for f in __init__.py __main__.py __init__.pxd depot.pxd; do
    put 644 "$pkg/$f" "$pydir/$f"
  done
  put 755 "$pkg/_depot.so" "$pydir/_depot.so"
fi

# An earlier install's entries stay (first), so that an uninstall also
# removes the directories that one created.
awk '!seen[$0]++' "$manifest" >"$manifest.new"
mv -- "$manifest.new" "$manifest"
chmod 644 "$manifest"
echo "install: Depot $version installed in $root"
