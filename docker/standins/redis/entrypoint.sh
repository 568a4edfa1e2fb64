#!/bin/sh
# As the official image: options alone mean redis-server; protected mode off (the official build's default),
# so other containers on the network may connect without a password.
set -eu
[ "${1#-}" != "$1" ] && set -- redis-server "$@"
if [ "${1:-}" = redis-server ]; then
    shift
    set -- redis-server --protected-mode no "$@"
fi
exec "$@"
