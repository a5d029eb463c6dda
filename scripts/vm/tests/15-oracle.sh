# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# The oracle and the test data agree: wg setconf, syncconf and addconf read
# back through `wg showconf` exactly as the generated files say. (If these
# fail, the interop tests below prove nothing.)

wg_roundtrip() {
    dev=$(fresh_dev); wg_new "$dev"
    with_port "$DATA/$1.conf" $((40000 + ${dev#wg})) >want.conf
    wg setconf "$dev" want.conf
    wg showconf "$dev" >wg.out
    same_file want.conf wg.out "wg showconf $dev"
}

wg_sync_and_add() {
    dev=$(fresh_dev); wg_new "$dev"; port=$((40000 + ${dev#wg}))
    with_port "$DATA/sync-base.conf" $port >base.conf
    with_port "$DATA/sync-next.conf" $port >next.conf
    with_port "$DATA/add-expected.conf" $port >added.conf
    wg setconf "$dev" base.conf
    wg addconf "$dev" "$DATA/add-extra.conf"
    wg showconf "$dev" >wg.out
    same_file added.conf wg.out "wg showconf $dev after wg addconf"
    wg setconf "$dev" base.conf
    wg syncconf "$dev" next.conf
    wg showconf "$dev" >wg.out
    same_file next.conf wg.out "wg showconf $dev after wg syncconf"
}

for c in zero one v6 peers-1000 aips-10000; do
    run_test "root/wg-oracle/$c" wg_roundtrip "$c"
done
run_test root/wg-oracle/syncconf-addconf wg_sync_and_add
run_test_user user/wg-oracle/peers-1000 wg_roundtrip peers-1000
run_test_user user/wg-oracle/syncconf-addconf wg_sync_and_add
