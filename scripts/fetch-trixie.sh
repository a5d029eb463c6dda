#!/usr/bin/env bash
# Fetches one Debian 13 (trixie) binary package into a cache folder, once,
# with a private apt configuration (the machine's apt setup is not changed),
# and unpacks it with dpkg-deb -x.
#   scripts/fetch-trixie.sh PACKAGE VERSION-PREFIX DEST
# DEST/root is the unpacked tree; DEST/.done marks a finished fetch. Prints
# DEST/root. Fails when trixie's version does not start with VERSION-PREFIX.
set -euo pipefail
pkg=$1 want=$2 dest=$3
case $dest in /*) ;; *) dest=$(pwd)/$dest ;; esac
die() { echo "fetch-trixie.sh: $*" >&2; exit 1; }
if [ ! -f "$dest/.done" ]; then
    echo "fetch-trixie.sh: fetching Debian 13's $pkg $want (once)" >&2
    apt=$dest.apt
    rm -rf "$apt" "$dest"
    mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$dest"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        >"$apt/sources.list"
    : >"$apt/status"
    aptopts=(-q -o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=-
             -o "Dir::State=$apt" -o "Dir::State::Lists=$apt/lists" -o "Dir::State::status=$apt/status"
             -o "Dir::Cache=$apt" -o "Dir::Cache::archives=$apt/archives"
             -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root)
    apt-get "${aptopts[@]}" update >&2 || die "apt-get update of the trixie list failed"
    version=$(apt-cache "${aptopts[@]}" show "$pkg" | awk '$1 == "Version:" { print $2; exit }')
    case $version in "$want"*) ;; *) die "trixie's $pkg is '$version', not $want" ;; esac
    (cd "$apt" && apt-get "${aptopts[@]}" download "$pkg=$version" >&2) || die "apt-get download $pkg failed"
    dpkg-deb -x "$apt"/"${pkg}"_*.deb "$dest/root" || die "dpkg-deb -x $pkg failed"
    rm -rf "$apt"
    touch "$dest/.done"
fi
echo "$dest/root"
