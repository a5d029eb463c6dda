#!/usr/bin/env bash
# The one place that says how the portable release binary is linked
# (`make static`, the VM tests, `make bench`):
#   scripts/build-static.sh [--scratch-path DIR]    builds; prints the binary's path
#
# - Swift runtime linked in (--static-swift-stdlib).
# - libstdc++ and libgcc linked in as well: swiftc's static-stdlib link asks
#   for -lstdc++ by name, so a directory holding only libstdc++.a goes on the
#   search path ahead of the compiler's own (where libstdc++.so is); clang's
#   -static-libgcc takes libgcc_eh.a instead of libgcc_s.so.
# - glibc, libm, libsodium and libmnl stay shared (`ldd` lists them): Debian
#   ships no libmnl.a, and glibc is not meant to be linked in.
# Measured (`wgns showconf` of a peerless device, median; in the VM with
# scripts/vm/startup-bench.sh): with libstdc++/libgcc shared 3.0 ms natively,
# 101 ms in the QEMU TCG VM (21 ms with ASLR off); linked in: 2.0, 85 (17) ms.
# Also linking libsodium.a in saves 0 ms natively and 3 ms in the VM; it would
# need its directory searched before /usr/lib/x86_64-linux-gnu, which the
# package's pkg-config flags put first. Linking without PIE (-no-pie) gives
# 1.7 ms natively and 54 (16) ms in the VM, the VM figure only because QEMU
# translates code again at every new address; not done: it gives up ASLR.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=.build
while [ $# -gt 0 ]; do
    case $1 in
        --scratch-path) scratch=$2; shift 2 ;;
        *) echo "build-static.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
cd "$root"
case $scratch in /*) ;; *) scratch=$root/$scratch ;; esac
# The C compiler that comes with Swift (or the system's) says where libstdc++.a is.
libstdcxx=
for cc in "$(dirname "$(command -v swift)")/clang" clang gcc cc; do
    f=$("$cc" -print-file-name=libstdc++.a 2>/dev/null) || continue
    case $f in /*) [ -f "$f" ] && { libstdcxx=$f; break; } ;; esac
done
[ -f "$libstdcxx" ] || { echo "build-static.sh: no libstdc++.a found (install libstdc++-12-dev)" >&2; exit 1; }
libdir=$scratch/static-libs
mkdir -p "$libdir"
ln -sfn "$libstdcxx" "$libdir/libstdc++.a"
# No $ORIGIN runpath: nothing is bundled next to the binary, and with it the
# loader first looks for each library in a dozen folders there.
flags=(-c release --static-swift-stdlib --disable-local-rpath --scratch-path "$scratch"
       -Xswiftc "-L$libdir" -Xswiftc -Xclang-linker -Xswiftc -static-libgcc)
swift build "${flags[@]}" >&2
bin=$(swift build "${flags[@]}" --show-bin-path)/wgns
[ -x "$bin" ] || { echo "build-static.sh: no binary at $bin" >&2; exit 1; }
if ldd "$bin" | grep -q -e 'libstdc++' -e 'libgcc_s'; then
    echo "build-static.sh: $bin still links libstdc++ or libgcc_s dynamically" >&2
    exit 1
fi
echo "$bin"
