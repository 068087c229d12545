#!/bin/sh
# connprobe: deb postrm and rpm %postun.
#
# The unit file is gone (or replaced): let a running systemd forget it.
# There is nothing else to clean up: the service runs as a DynamicUser, so
# no user, home or state directory was ever created; /etc/connprobe is the
# package manager's (dpkg --purge and rpm -e handle its conffile).
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
