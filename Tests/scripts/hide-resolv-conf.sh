# shellcheck shell=sh
# UpRobustnessTests: a machine without /etc/resolv.conf, simulated. Run as
# `unshare -Urm sh hide-resolv-conf.sh CMD...`: puts a tmpfs over /etc with
# every entry but resolv.conf bound back, runs CMD in a nested user
# namespace as MAP_UID:MAP_GID (the test user's own ids, as on that machine),
# then says whether the outer /etc is as it was.
set -e
d=$(mktemp -d)
mount --rbind /etc "$d"
mount -t tmpfs -o mode=0755 tmpfs /etc
for e in "$d"/* "$d"/.[!.]*; do
  [ -e "$e" ] || [ -L "$e" ] || continue
  n=${e##*/}
  [ "$n" = resolv.conf ] && continue
  if [ -L "$e" ]; then cp -P "$e" "/etc/$n"
  elif [ -d "$e" ]; then mkdir "/etc/$n"; mount --rbind "$e" "/etc/$n"
  else : > "/etc/$n"; mount --bind "$e" "/etc/$n"; fi
done
test ! -e /etc/resolv.conf && test ! -L /etc/resolv.conf
unshare -U --map-user="$MAP_UID" --map-group="$MAP_GID" "$@"
test ! -e /etc/resolv.conf && echo "outer /etc unchanged"
