# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# Interop with wireguard-tools on the real kernel module, both ways, as root
# and as an unprivileged user in a user namespace. Every config in /vm/data
# is written exactly as `wg showconf` prints it back, so readbacks are
# compared with the file byte for byte. Each device gets its own name and
# listen port; big devices are never deleted (minutes under TCG).

# want_conf CONFIG DEV: the config with a listen port unique to DEV, in want.conf.
want_conf() { with_port "$DATA/$1.conf" $((40000 + ${2#wg})) >want.conf; }

# wgns show --json turned into `wg show DEV dump` lines (private key left out).
json_to_dump() {
    jq -r -f /vm/tests/show-json-to-dump.jq "$1" >json.tsv || return 1
    sed 's/\["//; s/"\]//; s/","/,/g' json.tsv
}
dump_without_private_key() { wg show "$1" dump | awk 'NR == 1 { sub(/^[^\t]*\t/, "") } { print }'; }

wg_sets_wgns_reads() {
    dev=$(fresh_dev); wg_new "$dev"; want_conf "$1" "$dev"
    wg setconf "$dev" want.conf
    wg showconf "$dev" >wg.out
    same_file want.conf wg.out "wg showconf $dev (the oracle itself)"
    wgns showconf "$dev" >wgns.out || fail "wgns showconf $dev exited $?"
    same_file want.conf wgns.out "wgns showconf $dev"
    wg show "$dev" dump >wg.dump
    wgns show "$dev" dump >wgns.dump || fail "wgns show $dev dump exited $?"
    same_file wg.dump wgns.dump "wgns show $dev dump"
    dump_without_private_key "$dev" >dump.want
    wgns show "$dev" --json --show-keys >show.json || fail "wgns show $dev --json --show-keys exited $?"
    json_to_dump show.json >dump.out || fail "wgns show $dev --json is not the expected JSON"
    same_file dump.want dump.out "wgns show $dev --json --show-keys (as a dump)"
    # Without --show-keys: the same JSON minus the preshared keys (compared
    # one comma-separated item per line: busybox sed is slow on a 1.5 MB line),
    # and the private key nowhere.
    wgns show "$dev" --json >plain.json || fail "wgns show $dev --json exited $?"
    tr ',' '\n' <show.json | grep -v '^"presharedKey":' >plain.want
    tr ',' '\n' <plain.json >plain.items
    same_file plain.want plain.items "wgns show $dev --json (the --show-keys JSON without preshared keys)"
    if grep -q -F "$(sed -n 's/^PrivateKey = //p' want.conf)" show.json plain.json; then
        fail "wgns show $dev --json shows the private key"
    fi
}

# The text form of `show`, as wg prints it without a terminal.
wgns_show_text() {
    dev=$(fresh_dev); wg_new "$dev"; want_conf "$1" "$dev"
    wg setconf "$dev" want.conf
    wg show "$dev" >wg.out
    wgns show "$dev" >wgns.out || fail "wgns show $dev exited $?"
    same_file wg.out wgns.out "wgns show $dev (text)"
    # And each field alone, as `wg show DEV FIELD`.
    for f in public-key private-key listen-port fwmark peers preshared-keys endpoints allowed-ips \
             latest-handshakes transfer persistent-keepalive dump; do
        wg show "$dev" "$f" >wg.out
        wgns show "$dev" "$f" >wgns.out || fail "wgns show $dev $f exited $?"
        same_file wg.out wgns.out "wgns show $dev $f"
    done
}

# Reading a 10,000-peer device while another process adds and removes one
# peer 20 times (so dumps get interrupted, NLM_F_DUMP_INTR, and must be
# restarted): every readback is the device either with or without that peer,
# never a mix. (Under endless changes both wg and wgns would retry forever.)
# without_peer KEY: a showconf (stdin) without KEY's [Peer] section.
without_peer() {
    awk -v x="PublicKey = $1" '
        function out(s) { while (blanks > 0) { print ""; blanks-- } print s }
        $0 == "" { if (skip) skip = 0; else blanks++; next }
        $0 == "[Peer]" { pending = 1; next }
        pending { pending = 0; if ($0 == x) { skip = 1; next } out("[Peer]"); out($0); next }
        skip { next }
        { out($0) }'
}

dump_while_changing() { # TOOL
    dev=$(fresh_dev); wg_new "$dev"; want_conf peers-10000 "$dev"
    wg setconf "$dev" want.conf
    x=$(wg genkey | wg pubkey)
    (i=0; while [ $i -lt 20 ]; do
        wg set "$dev" peer "$x" allowed-ips 10.255.255.1/32 endpoint 127.0.0.1:1
        wg set "$dev" peer "$x" remove
        i=$((i + 1))
    done) >/dev/null 2>&1 &
    churn=$!
    for i in 1 2 3; do
        "$1" showconf "$dev" >"got.$i" || { kill "$churn"; fail "$1 showconf $dev exited non-zero"; }
    done
    wait "$churn" 2>/dev/null || true
    for i in 1 2 3; do
        without_peer "$x" <"got.$i" >"stripped.$i"
        same_file want.conf "stripped.$i" "$1 showconf $dev (read $i, during changes, without the changing peer)"
    done
}

wgns_sets_wg_reads() {
    dev=$(fresh_dev); wg_new "$dev"; want_conf "$1" "$dev"
    wgns setconf "$dev" want.conf || fail "wgns setconf $dev $1 exited $?"
    wg showconf "$dev" >wg.out
    same_file want.conf wg.out "wg showconf $dev after wgns setconf"
}

# syncconf: 300 peers set by wg, then wgns syncconf to a config that drops
# every 10th peer, changes endpoints, allowed IPs and preshared keys, adds 50.
wgns_syncconf() {
    dev=$(fresh_dev); wg_new "$dev"; want_conf sync-base "$dev"; mv want.conf base.conf
    want_conf sync-next "$dev"
    wg setconf "$dev" base.conf
    wgns syncconf "$dev" want.conf || fail "wgns syncconf $dev exited $?"
    wg showconf "$dev" >wg.out
    same_file want.conf wg.out "wg showconf $dev after wgns syncconf"
}

# addconf: 100 peers added on top of 300; the 300 stay as they were.
wgns_addconf() {
    dev=$(fresh_dev); wg_new "$dev"; want_conf sync-base "$dev"; mv want.conf base.conf
    want_conf add-expected "$dev"
    wg setconf "$dev" base.conf
    wgns addconf "$dev" "$DATA/add-extra.conf" || fail "wgns addconf $dev exited $?"
    wg showconf "$dev" >wg.out
    same_file want.conf wg.out "wg showconf $dev after wgns addconf"
}

# setconf on a device that has peers replaces all of them.
wgns_setconf_replaces() {
    dev=$(fresh_dev); wg_new "$dev"; want_conf sync-base "$dev"; mv want.conf base.conf
    want_conf sync-next "$dev"
    wgns setconf "$dev" base.conf || fail "wgns setconf $dev (base) exited $?"
    wgns setconf "$dev" want.conf || fail "wgns setconf $dev (next) exited $?"
    wg showconf "$dev" >wg.out
    same_file want.conf wg.out "wg showconf $dev after a second wgns setconf"
    # And down to one peer, then none.
    want_conf one "$dev"
    wgns setconf "$dev" want.conf || fail "wgns setconf $dev (one) exited $?"
    wg showconf "$dev" >wg.out
    same_file want.conf wg.out "wg showconf $dev after wgns setconf down to one peer"
    want_conf zero "$dev"
    wgns setconf "$dev" want.conf || fail "wgns setconf $dev (zero) exited $?"
    wg showconf "$dev" >wg.out
    same_file want.conf wg.out "wg showconf $dev after wgns setconf down to no peer"
}

# Errors name the device, exit non-zero, print one line.
one_line_error() { # WHAT-TO-FIND COMMAND...
    want=$1; shift
    if "$@" >out 2>err; then fail "$* succeeded"; fi
    [ "$(wc -l <err)" = 1 ] || { cat err; fail "$*: expected one error line"; }
    grep -q -i -- "$want" err || { cat err; fail "$*: the error does not say \"$want\""; }
}

wgns_errors() {
    one_line_error nosuchdev0 wgns showconf nosuchdev0
    one_line_error nosuchdev0 wgns show nosuchdev0 --json
    one_line_error nosuchdev0 wgns setconf nosuchdev0 "$DATA/one.conf"
    one_line_error "not a WireGuard device" wgns showconf lo
    $IP link add dummyx type dummy
    one_line_error "not a WireGuard device" wgns setconf dummyx "$DATA/one.conf"
    dev=$(fresh_dev); wg_new "$dev"
    printf '[Interface]\nListenPort = 70000\n' >bad.conf
    one_line_error "bad.conf" wgns setconf "$dev" bad.conf
    one_line_error "missing.conf" wgns setconf "$dev" missing.conf
}

# Root's device, seen by uid 1000 from outside any user namespace: refused.
wgns_permission_denied() {
    dev=$(fresh_dev); wg_new "$dev"; want_conf one "$dev"
    wg setconf "$dev" want.conf
    chmod 0755 . && chmod 0644 want.conf   # the file is readable: only the kernel says no
    for cmd in "showconf $dev" "show $dev --json" "show" "setconf $dev $PWD/want.conf" "syncconf $dev $PWD/want.conf"; do
        # shellcheck disable=SC2086
        one_line_error "permission denied" as_user wgns $cmd
    done
    wg showconf "$dev" >wg.out
    same_file want.conf wg.out "wg showconf $dev after refused changes"
}

run_test root/wgns-permission-denied wgns_permission_denied

for who in root user; do
    run=run_test; [ "$who" = user ] && run=run_test_user
    for c in zero one v6 peers-1000 aips-10000 peers-10000; do
        $run "$who/wg-setconf-wgns-reads/$c" wg_sets_wgns_reads "$c"
        $run "$who/wgns-setconf-wg-reads/$c" wgns_sets_wg_reads "$c"
    done
    for c in one v6 peers-1000; do
        $run "$who/wgns-show-text/$c" wgns_show_text "$c"
    done
    [ "$who" = root ] && $run "$who/wg-dump-while-changing" dump_while_changing wg   # the oracle copes too
    $run "$who/wgns-dump-while-changing" dump_while_changing wgns
    $run "$who/wgns-syncconf" wgns_syncconf
    $run "$who/wgns-addconf" wgns_addconf
    $run "$who/wgns-setconf-replaces" wgns_setconf_replaces
    $run "$who/wgns-errors" wgns_errors
done
