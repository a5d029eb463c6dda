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
read -r reply </dev/tcp/10.99.0.1/5000 || { echo "client: no reply"; exit 12; }
[ "$reply" = "$mine" ] || { echo "client: peer got '$reply', sent '$mine'"; exit 13; }
# One more round trip: it follows this connection's last packets through the
# tunnel, so they have reached the peer before the job (and tunnel) ends.
ping -c 1 -W 5 10.99.0.1 >/dev/null || { echo "client: last ping failed"; exit 14; }
echo "client: ping ok, $bytes bytes through TCP, checksums match"
