# shellcheck shell=bash
# SlurmTests, as root after `cluster.sh stop`: prints what is left of the
# cluster in DIR (hosts' network namespaces listed in NSFILE, links and
# keepers tagged TAG): a process in a host, a daemon of DIR, a keeper, a
# link, a file. Nothing when all is gone.
for p in /proc/[0-9]*; do
  [ "$(awk '{print $3}' $p/stat 2>/dev/null)" = Z ] && continue
  n=$(readlink $p/ns/net 2>/dev/null) || continue
  grep -qF " $n" "$NSFILE" && echo "in a host: $(ps -o pid=,args= -p ${p#/proc/})"
  tr '\0' ' ' < $p/cmdline 2>/dev/null | grep -qF "$DIR/" && echo "daemon: $(ps -o pid=,args= -p ${p#/proc/})"
done
pgrep -f "^wgns-$TAG-h" > /dev/null && echo "a keeper"
ip -o link | grep -q " wt$TAG" && echo "a link"
[ -e "$DIR" ] && echo "files: $(find "$DIR" | head -5)"
true
