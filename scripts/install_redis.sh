#!/bin/sh
# Install Debian's redis-server for the shared-cache tests (tests/redis_server.py).
#
# The tests start their own redis-server on a free loopback port with no
# persistence; this script only makes sure the binary is there.  Idempotent:
# does nothing when redis-server is already on PATH or in /usr/bin.  Needs root
# (apt-get).  The Debian package also installs a system service; it is not
# needed (and not started by anything here).
set -eu

if command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; then
    echo "install_redis: redis-server already present: $( (command -v redis-server || echo /usr/bin/redis-server) )"
    exit 0
fi

if [ "$(id -u)" != "0" ]; then
    echo "install_redis: redis-server is missing and this script needs root for apt-get" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
# policy-rc.d 101: do not start the system redis service on install (we start
# our own on a free port; a CI container may have no init system anyway).
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y --no-install-recommends redis-server

if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    echo "install_redis: apt-get finished but redis-server is still missing" >&2
    exit 1
fi
echo "install_redis: installed $(redis-server --version)"
