#!/usr/bin/env bash
# Downloads Debian's Google Benchmark packages and unpacks them into a folder
# (default .benchdeps, git-ignored) for bench/build.sh on a machine that has
# a compiler but no package registry.
set -euo pipefail
dest=$(readlink -f "${1:-.benchdeps}")
mkdir -p "$dest/debs"
(cd "$dest/debs" && apt-get download libbenchmark1debian libbenchmark-dev)
for d in "$dest"/debs/*.deb; do dpkg -x "$d" "$dest"; done
echo "unpacked into $dest"
