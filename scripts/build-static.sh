#!/usr/bin/env bash
# The one place that says how the portable release binary is linked
# (`make static`, `make test`, the VM tests, `make bench`, `make dist`):
#   scripts/build-static.sh [--scratch-path DIR]    builds; prints the binary's path last
#
# One fully static executable (`ldd` says "not a dynamic executable"):
# - swiftc -static-executable links the Swift runtime, libstdc++, libgcc and
#   glibc in.
# - libsodium.a comes from Debian 12's libsodium-dev (scripts/deps.sh), libb2.a
#   (BLAKE2s) from its libb2-dev.
# - Debian 12's libmnl-dev has no libmnl.a; Debian 13's libmnl-dev 1.0.5
#   has one. It is fetched once with `apt-get download` through a private apt
#   configuration (its own sources list, lists and cache: the machine's apt
#   setup is not changed) and unpacked with `dpkg-deb -x` into
#   $WGNS_BUILD_CACHE (default build-cache/, gitignored). Only libmnl.a is
#   used from it; the headers stay Debian 12's (the same 1.0.4 API).
# - The version's git commit is written to Sources/wgns/Generated/ (gitignored)
#   and compiled in under -DWGNS_BUILD_INFO; without git it says "unknown", as
#   a plain `swift build` does.
# Name resolution in the static glibc: only its built-in "files" and "dns"
# (Tunnel/Resolver.swift sets that up), so no NSS module is ever loaded.
# The binary needs /proc mounted at run time (the Swift runtime finds itself
# through /proc/self/exe), and nothing else.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=.build-static
while [ $# -gt 0 ]; do
    case $1 in
        --scratch-path) scratch=$2; shift 2 ;;
        *) echo "build-static.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
cd "$root"
case $scratch in /*) ;; *) scratch=$root/$scratch ;; esac
die() { echo "build-static.sh: $*" >&2; exit 1; }
cache=${WGNS_BUILD_CACHE:-$root/build-cache}
mkdir -p "$cache"

# libmnl.a from Debian 13 (trixie), once.
mnl_version=1.0.5
mnl=$(bash "$root/scripts/fetch-trixie.sh" libmnl-dev "$mnl_version-" "$cache/libmnl-dev-$mnl_version")
[ -f "$mnl/usr/lib/x86_64-linux-gnu/libmnl.a" ] || die "trixie's libmnl-dev has no libmnl.a"
sodium=/usr/lib/x86_64-linux-gnu/libsodium.a
[ -f "$sodium" ] || die "no $sodium (install libsodium-dev: bash scripts/deps.sh)"
# A folder of only the two archives: with -static the linker takes .a files
# alone, and these are the only libmnl.a and libsodium.a it can find.
libdir=$scratch/static-libs
mkdir -p "$libdir"
ln -sfn "$mnl/usr/lib/x86_64-linux-gnu/libmnl.a" "$libdir/libmnl.a"
ln -sfn "$sodium" "$libdir/libsodium.a"
b2=/usr/lib/x86_64-linux-gnu/libb2.a
[ -f "$b2" ] || die "no $b2 (install libb2-dev: bash scripts/deps.sh)"
ln -sfn "$b2" "$libdir/libb2.a"

# The commit this binary is built from; rewritten only when it changes, so
# that a rebuild of the same commit compiles nothing.
commit=unknown
if command -v git >/dev/null && c=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null); then
    commit=$c
    [ -z "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ] || commit=$c-dirty
fi
gen=$root/Sources/wgns/Generated/BuildInfo.swift
mkdir -p "$(dirname "$gen")"
text=$(printf '// Written by scripts/build-static.sh; not in git.\n#if WGNS_BUILD_INFO\nlet wgnsCommit = "%s"\n#endif\n' "$commit")
[ "$(cat "$gen" 2>/dev/null)" = "$text" ] || printf '%s\n' "$text" >"$gen"

flags=(-c release --scratch-path "$scratch"
       -Xswiftc -static-executable -Xswiftc "-L$libdir" -Xswiftc -DWGNS_BUILD_INFO)
swift build "${flags[@]}" >&2
bin=$(swift build "${flags[@]}" --show-bin-path)/wgns
[ -x "$bin" ] || die "no binary at $bin"
# ldd exits 1 for a static executable: read what it says, not its status.
deps=$(ldd "$bin" 2>&1 || true)
case $deps in *'not a dynamic executable'*) ;; *) die "$bin is not static: $(echo $deps)" ;; esac
echo "$bin"
