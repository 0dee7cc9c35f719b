#!/bin/sh
# Stands in for ssh when Open MPI starts its daemons on simulated hosts
# (tests/netns/hosts.sh): Open MPI's rsh launcher runs
#   rsh-agent.sh [options] HOST COMMAND...
# and this runs COMMAND in the network namespace named HOST, as ssh would:
# through `sh -c` on the joined words, with a fresh minimal environment (not
# the caller's: what mpirun needs on the far side must travel on the orted
# command line, as with ssh) and the host's own hostname (unshare --uts).
while [ $# -gt 0 ]; do
  case $1 in -*) shift ;; *) break ;; esac
done
host=$1
shift
exec ip netns exec "$host" unshare --uts \
  env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/sh -c "hostname '$host'; $*"
