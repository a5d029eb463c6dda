# shellcheck shell=bash
# Host side of the kernel VM: fetch a Debian kernel with the WireGuard module,
# pack an initramfs around a guest script, boot it in QEMU (TCG) and keep the
# serial console. Sourced by scripts/vm/test.sh and scripts/bench.sh.
#
#   vm_kernel                 sets VM_KVER, VM_VMLINUZ, VM_MODULES
#   vm_build_wgns             sets VM_WGNS (scripts/build-static.sh; or $WGNS_BIN)
#   vm_initramfs OUT MAIN [DATA_DIR]
#                             a cpio (newc) whose /init runs MAIN (a guest script)
#   vm_boot INITRAMFS LOG [TIMEOUT_S]   (VM_APPEND: more kernel parameters; NAME=VALUE
#                             ones reach /init as environment, e.g. VM_TEST_TIMEOUT=60)
#                             boots, console to LOG; 0 when the guest said it was done
#
# Everything is cached under vm-cache/ (gitignored); the machine's /boot is never touched.

PATH=$PATH:/usr/sbin:/sbin
VM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VM_CACHE=${VM_CACHE:-$VM_ROOT/vm-cache}
VM_SCRATCH=${VM_SCRATCH:-.build-static}
VM_GUEST=$VM_ROOT/scripts/vm/guest

vm_die() { echo "vm: $*" >&2; exit 1; }

# The versioned image package behind the linux-image-cloud-amd64 metapackage
# (non-RT, with wireguard.ko), downloaded and unpacked once. VM_KERNEL_SUITE
# picks the Debian release whose kernel it is (default: this machine's own,
# through its apt lists; another release's, e.g. bullseye (5.10) or trixie
# (6.12), through apt lists of its own in vm-cache/apt-SUITE, from this
# machine's Debian mirror). Compressed modules (.ko.xz, .ko.zst) are
# unpacked, so that busybox's insmod in the guest can load them.
vm_kernel() {
    local meta=linux-image-cloud-amd64 pkg dir deb suite host_suite
    local apt=()
    host_suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    suite=${VM_KERNEL_SUITE:-$host_suite}
    if [ "$suite" != "$host_suite" ]; then
        local a=$VM_CACHE/apt-$suite mirror
        apt=(-o "Dir::Etc::SourceList=$a/sources.list" -o Dir::Etc::SourceParts=/nonexistent
             -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache" -o APT::Sandbox::User=root)
        if [ ! -f "$a/.done" ]; then
            mirror=$(apt-get indextargets --format '$(SITE) $(RELEASE)' 2>/dev/null | awk -v r="$host_suite" '$2 == r { print $1; exit }')
            [ -n "$mirror" ] || vm_die "cannot tell this machine's Debian mirror (apt-get indextargets)"
            echo "vm: apt lists of $suite (once)" >&2
            rm -rf "$a" && mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
            echo "deb $mirror $suite main" >"$a/sources.list"
            apt-get -q "${apt[@]}" update >&2 || vm_die "apt-get update for $suite failed"
            touch "$a/.done"
        fi
    fi
    pkg=$(apt-cache "${apt[@]}" depends "$meta" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
    if [ -z "$pkg" ]; then
        # apt lists not there yet: fall back to what is already cached.
        pkg=$(cd "$VM_CACHE" 2>/dev/null && ls -d linux-image-*/ 2>/dev/null | sed 's:/$::' | sort -V | tail -n1)
        [ -n "$pkg" ] || vm_die "apt-cache does not know $meta (run: apt-get update)"
    fi
    dir=$VM_CACHE/$pkg
    if [ ! -f "$dir/.done" ]; then
        echo "vm: fetching $pkg (once)" >&2
        rm -rf "$dir" && mkdir -p "$dir"
        (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "${apt[@]}" "$pkg" >&2) \
            || vm_die "apt-get download $pkg failed"
        deb=$(ls "$dir"/*.deb)
        dpkg-deb -x "$deb" "$dir/root" || vm_die "dpkg-deb -x $deb failed"
        rm -f "$deb"
        # Debian 13 keeps its modules in /usr/lib/modules (merged /usr).
        [ -d "$dir/root/lib/modules" ] || { mkdir -p "$dir/root/lib" && ln -s ../usr/lib/modules "$dir/root/lib/modules"; }
        find "$dir/root/lib/modules/" -name '*.ko.xz' -exec xz -d {} + || vm_die "cannot unpack the .ko.xz modules"
        if find "$dir/root/lib/modules/" -name '*.ko.zst' | grep -q .; then
            find "$dir/root/lib/modules/" -name '*.ko.zst' -exec zstd -q -d --rm {} + || vm_die "cannot unpack the .ko.zst modules (apt-get install zstd)"
        fi
        local kver
        kver=$(ls "$dir/root/lib/modules")
        depmod -b "$dir/root" "$kver" || vm_die "depmod failed for $kver"
        echo "$kver" >"$dir/kver"
        touch "$dir/.done"
    fi
    VM_KVER=$(cat "$dir/kver")
    # wireguard and its dependencies in load order; tun for the carriers,
    # dummy (the VM's stand-in for an outside interface) and veth for tests.
    local mod
    # nf_tables with what wg-quick's firewall for a default route uses (fib,
    # ct): tests/50-wg-quick.sh runs wg-quick itself as the oracle. bridge:
    # the test cluster's fabric (tests/45-cluster.sh).
    for mod in wireguard tun dummy veth bridge nf_tables nft_fib_ipv4 nft_fib_ipv6 nft_ct; do
        modprobe -d "$dir/root" -S "$VM_KVER" --show-depends "$mod" || vm_die "no module $mod in $pkg"
    done | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++' >"$dir/modules.list"
    grep -q '/wireguard\.ko$' "$dir/modules.list" || vm_die "$pkg has no wireguard.ko"
    VM_VMLINUZ=$dir/root/boot/vmlinuz-$VM_KVER
    VM_MODULES_DIR=$dir/root/lib/modules/$VM_KVER
    VM_MODULES=()
    local m
    while read -r m; do
        # modules.list holds absolute paths from the machine that unpacked it;
        # keep the part below the unpacked root so the cache can move.
        VM_MODULES+=("$dir/root/lib/modules/${m#*/lib/modules/}")
    done <"$dir/modules.list"
    [ -f "$VM_VMLINUZ" ] || vm_die "no kernel at $VM_VMLINUZ"
}

# The wgns binary the guest runs: the portable static build
# (scripts/build-static.sh: one fully static executable).
# WGNS_BIN=path uses a binary built elsewhere instead.
vm_build_wgns() {
    if [ -n "${WGNS_BIN:-}" ]; then
        [ -x "$WGNS_BIN" ] || vm_die "WGNS_BIN=$WGNS_BIN is not an executable"
        VM_WGNS=$WGNS_BIN
        return
    fi
    VM_WGNS=$(bash "$VM_ROOT/scripts/build-static.sh" --scratch-path "$VM_SCRATCH" | tail -n1) \
        || vm_die "scripts/build-static.sh failed"
}

# Copies binary $1 to $stage/$2 and every shared library ldd lists for it
# (at the same paths, symlinks resolved), the dynamic loader included. A
# static executable (wgns) needs none.
vm_copy_binary() {
    local stage=$1 src=$2 dst=$3 lib
    mkdir -p "$stage$(dirname "$dst")"
    cp -L "$src" "$stage$dst"
    # (ldd exits 1 for a static executable: read what it says.)
    case $(ldd "$src" 2>&1 || true) in *'not a dynamic executable'*) return 0 ;; esac
    if ldd "$src" 2>/dev/null | grep -q 'not found'; then
        vm_die "$src needs a library this machine lacks: $(ldd "$src" | grep 'not found' | head -n1 | tr -s ' \t' ' ')"
    fi
    ldd "$src" 2>/dev/null | awk '/=> \// { print $3 } /^\t\// { print $1 }' | while read -r lib; do
        [ -e "$stage$lib" ] && continue
        mkdir -p "$stage$(dirname "$lib")"
        cp -L "$lib" "$stage$lib"
    done
}

vm_initramfs() {
    local out=$1 main=$2 data=${3:-} stage tool
    stage=$(mktemp -d "$VM_CACHE/stage.XXXXXX")
    mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib64,etc,proc,sys,dev,tmp,run,root,home/user,vm/tests,vm/data,modules}
    cp /bin/busybox "$stage/bin/busybox"
    for tool in $(/bin/busybox --list); do
        [ "$tool" = busybox ] || ln -s busybox "$stage/bin/$tool"
    done
    # The real tools, in /usr/bin and /usr/sbin. Debian's busybox runs its own
    # applet of the same name before PATH: guest scripts use these by path.
    vm_copy_binary "$stage" "$(command -v wg)" /usr/bin/wg
    vm_copy_binary "$stage" /usr/bin/unshare /usr/bin/unshare
    vm_copy_binary "$stage" /usr/bin/setpriv /usr/bin/setpriv
    vm_copy_binary "$stage" "$(command -v jq)" /usr/bin/jq
    vm_copy_binary "$stage" /usr/bin/nsenter /usr/bin/nsenter
    # iputils' ping falls back to ICMP datagram sockets where raw sockets are
    # refused, as for root of a job's own user namespace; busybox's does not.
    vm_copy_binary "$stage" /usr/bin/ping /usr/bin/ping
    [ -x /sbin/ip ] && vm_copy_binary "$stage" /sbin/ip /usr/sbin/ip
    # bash, for wg-quick (the oracle of tests/50-wg-quick.sh) and for
    # scripts/testnet/cluster.sh (tests/45-cluster.sh), with the GNU tools
    # they need where busybox's differ: readlink, stat, sort, sysctl, nft for
    # wg-quick; seq (-f) and sleep (a keeper renamed with exec -a, which a
    # busybox applet would not know itself by) for cluster.sh.
    if [ -x /bin/bash ]; then
        rm -f "$stage/bin/bash"; vm_copy_binary "$stage" /bin/bash /bin/bash
        for tool in /usr/bin/readlink /usr/bin/stat /usr/bin/sort /usr/sbin/sysctl /usr/sbin/nft /usr/bin/seq /usr/bin/sleep; do
            [ -x "$tool" ] && vm_copy_binary "$stage" "$tool" "$tool"
        done
        [ -x /usr/bin/wg-quick ] && cp /usr/bin/wg-quick "$stage/usr/bin/wg-quick"
        mkdir -p "$stage/vm/testnet"
        cp "$VM_ROOT/scripts/testnet/cluster.sh" "$stage/vm/testnet/"
        # The member job and the upload pair of every multi-node test
        # (Tests/jobs), run there by bash and busybox.
        mkdir -p "$stage/vm/jobs"
        cp "$VM_ROOT"/Tests/jobs/* "$stage/vm/jobs/"
    fi
    local carrier
    for carrier in slirp4netns pasta; do
        command -v "$carrier" >/dev/null && vm_copy_binary "$stage" "$(command -v "$carrier")" "/usr/bin/$carrier"
    done
    vm_copy_binary "$stage" "$VM_WGNS" /usr/bin/wgns
    strip "$stage/usr/bin/wgns" 2>/dev/null || true
    # The benchmark's timer (guest/elapsed.c), static, with the C compiler
    # that comes with Swift.
    "$(dirname "$(command -v swiftc)")/clang" -O2 -static -o "$stage/usr/bin/elapsed" "$VM_GUEST/elapsed.c" \
        || vm_die "cannot compile $VM_GUEST/elapsed.c"
    local i=0 m
    for m in "${VM_MODULES[@]}"; do
        i=$((i + 1))
        cp "$m" "$stage/modules/$(printf %02d "$i")-$(basename "$m")"
    done
    # The same modules at their places under /lib/modules/KVER with the
    # kernel's modules.* indexes, and kmod as /sbin/modprobe: the kernel can
    # then load wireguard itself when a link is created (VM_DEFER_WIREGUARD).
    local mods=$VM_MODULES_DIR
    for m in "${VM_MODULES[@]}"; do
        mkdir -p "$stage/lib/modules/$VM_KVER/$(dirname "${m#"$mods"/}")"
        cp "$m" "$stage/lib/modules/$VM_KVER/${m#"$mods"/}"
    done
    cp "$mods"/modules.* "$stage/lib/modules/$VM_KVER/"
    vm_copy_binary "$stage" "$(command -v kmod)" /usr/bin/kmod
    ln -s /usr/bin/kmod "$stage/sbin/modprobe"
    printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' >"$stage/etc/passwd"
    printf 'root:x:0:\nuser:x:1000:\n' >"$stage/etc/group"
    printf '127.0.0.1 localhost\n::1 localhost\n' >"$stage/etc/hosts"
    printf 'nameserver 127.0.0.1\n' >"$stage/etc/resolv.conf"
    # cluster.sh binds each test host's name over it.
    printf '(none)\n' >"$stage/etc/hostname"
    cp "$VM_GUEST/init" "$stage/init"
    cp "$VM_GUEST/lib.sh" "$VM_GUEST/run-one.sh" "$VM_ROOT/scripts/bench/pipeline-kernel.sh" "$stage/vm/"
    cp "$main" "$stage/vm/main.sh"
    cp "$VM_ROOT"/scripts/vm/tests/* "$stage/vm/tests/" 2>/dev/null || true
    [ -n "$data" ] && cp -r "$data"/. "$stage/vm/data/"
    chmod 0755 "$stage/init" "$stage/vm/main.sh"
    # Left uncompressed: under TCG the kernel takes ~0.5 s to gunzip it, more
    # than QEMU takes to load 30 MB from the host's page cache.
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$out.tmp" \
        || vm_die "cpio of the initramfs failed"
    # cpio -R 0:0 makes root own everything; /init gives the user its home.
    mv "$out.tmp" "$out"
    rm -rf "$stage"
}

# Boots the VM; the console goes to $2. The guest ends with poweroff; the
# timeout kills QEMU if it hangs. Returns 0 only if the guest printed its
# end marker.
vm_boot() {
    local initrd=$1 log=$2 limit=${3:-300} rc=0
    timeout --signal=KILL "$limit" qemu-system-x86_64 \
        -accel tcg -cpu max -m "${VM_MEMORY:-1024}" -smp "${VM_SMP:-1}" \
        -nographic -no-reboot -nodefaults -serial stdio -monitor none \
        -kernel "$VM_VMLINUZ" -initrd "$initrd" \
        -append "console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off ${VM_APPEND:-}" \
        </dev/null >"$log" 2>&1 || rc=$?
    if [ "$rc" = 137 ]; then
        echo "vm: QEMU killed after ${limit}s without finishing" >&2
    fi
    tr -d '\r' <"$log" | grep -q '^[^@]*@@VM-DONE'
}
