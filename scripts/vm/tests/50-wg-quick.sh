# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# wg-quick itself is the oracle for Table and hooks: the same config is
# brought up with `wg-quick up` (as root, in a network namespace of its own,
# kernel WireGuard), its routes, rules and addresses read, brought down; then
# with `wgns up` (kernel backend, as the unprivileged user) and the same read
# inside the job's namespace. wg0's routes (`ip -4/-6 route show table all`,
# sorted), `ip rule`, `ip -6 rule` and wg0's addresses must be identical.

# wgq_state: on stdout, the script that prints what is compared.
wgq_state() {
    cat <<'EOS'
{ /usr/sbin/ip -4 route show table all; /usr/sbin/ip -6 route show table all; } | grep ' dev wg0' | LC_ALL=C sort
echo rules; /usr/sbin/ip rule; /usr/sbin/ip -6 rule
echo addresses; /usr/sbin/ip -o addr show dev wg0 | sed 's/^[0-9]*: //; s/ *valid_lft.*//'
EOS
}

# wgq_compare TABLE_LINE [ALLOWED_IPS]: a config with that [Interface] line
# (may be empty), a PostUp using %i, and AllowedIPs (default: default routes,
# a prefix the address covers, and others); wg-quick's and wgns's state must
# match.
wgq_compare() {
    table=$1 allowed=${2:-10.96.0.0/24, 10.96.0.9/32, 10.50.0.0/16, 0.0.0.0/0, fd95::/64, ::/0}
    # bash's <(...) (wg-quick's set_config) needs /dev/fd.
    [ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
    wg genkey >peer.key
    cat >wg0.conf <<EOC
[Interface]
PrivateKey = $(wg genkey)
Address = 10.96.0.2/24, fd96::2/64
MTU = 1420
$table
PostUp = /usr/sbin/ip route add 10.77.0.0/16 dev %i

[Peer]
PublicKey = $(wg pubkey <peer.key)
Endpoint = 10.0.2.2:51999
AllowedIPs = $allowed
EOC
    chmod 0600 wg0.conf
    wgq_state >state.sh
    # wg-quick: root, a namespace of its own (other tests' devices stay apart).
    $UNSHARE -n /bin/bash -c "
        /usr/sbin/ip link set lo up
        PATH=/usr/bin:/usr/sbin:/bin:/sbin wg-quick up $PWD/wg0.conf 2>wg-quick.log || { cat wg-quick.log; exit 1; }
        sh state.sh
        PATH=/usr/bin:/usr/sbin:/bin:/sbin wg-quick down $PWD/wg0.conf 2>>wg-quick.log" >theirs || { cat theirs; fail "wg-quick up failed"; }
    chown "$TEST_UID:$TEST_UID" . wg0.conf state.sh
    as_user wgns up --backend kernel --carrier slirp4netns "$PWD/wg0.conf" -- sh "$PWD/state.sh" >ours 2>wgns.log \
        || { cat wgns.log; fail "wgns up failed"; }
    grep -q 'dev wg0' theirs || { cat theirs; fail "wg-quick's state lists no wg0 route"; }
    same_file theirs ours "routes, rules and addresses of wgns up against wg-quick up ($table)"
    no_leftovers "wgns up"
}

if [ -x /usr/bin/wg-quick ] && [ -x /bin/bash ] && [ -x /usr/sbin/nft ]; then
    # (No Table is auto: the host tests check that both give the same.)
    run_test root/wg-quick/table-auto wgq_compare "Table = auto"
    run_test root/wg-quick/table-off wgq_compare "Table = off"
    run_test root/wg-quick/table-1234 wgq_compare "Table = 1234"
    # wg-quick fails on a route the main table has (the address's own
    # prefix route, the carrier's default): none of those here.
    run_test root/wg-quick/table-main wgq_compare "Table = main" "10.96.0.9/32, 10.50.0.0/16, fd95::/64"
else
    echo "@@VM-ERROR wg-quick, bash or nft missing from the initramfs (scripts/deps.sh installs them)"
fi
