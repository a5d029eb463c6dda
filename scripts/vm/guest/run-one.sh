# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# Runs one test function from a test file: run-one.sh FILE FUNC [ARGS]
# (used by run_test_user inside the user namespace).
. /vm/lib.sh
VM_RUN_ONE=1
. "$1"
shift
$IP link set lo up
set -e
"$@"
