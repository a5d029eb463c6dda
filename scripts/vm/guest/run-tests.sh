# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# /vm/main.sh for scripts/vm/test.sh: every file in /vm/tests, in name order.
. /vm/lib.sh
: >/tmp/.devices
chmod 0666 /tmp/.devices
for VM_TEST_FILE in /vm/tests/*.sh; do
    [ -f "$VM_TEST_FILE" ] || continue
    . "$VM_TEST_FILE"
done
