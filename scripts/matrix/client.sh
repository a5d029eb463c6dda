# The job of a matrix cell, run by bash inside `wgns up` in the userland
# under test (which has bash and coreutils, but no python): ping the peer,
# upload random bytes over TCP, and compare the peer's count and checksum.
#   bash client.sh DIR BYTES
set -u
dir=$1 bytes=$2
ping -c 2 -W 5 10.99.0.1 || { echo "client: ping failed"; exit 10; }
head -c "$bytes" /dev/urandom >"$dir/data"
mine="$(wc -c <"$dir/data") $(sha256sum <"$dir/data" | cut -d' ' -f1)"
cat "$dir/data" >/dev/tcp/10.99.0.1/5000 || { echo "client: upload failed"; exit 11; }
exec 3<>/dev/tcp/10.99.0.1/5000 || { echo "client: cannot connect for the reply"; exit 12; }
read -r reply <&3 || { echo "client: no reply"; exit 12; }
# Tells the peer it may end (a close alone can be lost as this job's tunnel
# goes away; the peer then waits 10 s, and nothing fails).
echo done >&3
exec 3>&-
[ "$reply" = "$mine" ] || { echo "client: peer got '$reply', sent '$mine'"; exit 13; }
echo "client: ping ok, $bytes bytes through TCP, checksums match"
