#!/bin/sh
# connprobe: deb prerm and rpm %preun.
#
# Only a real removal stops and disables the agent. On an upgrade the old
# version's script runs too (deb: "upgrade"; rpm: 1 or more), and the new
# version's postinstall restarts the agent instead.

# deb: "remove" (or "upgrade", "deconfigure", ...); rpm: 0 on erase.
case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac

# The site's Prometheus agent too, if it was enabled (see README, Many sites).
if [ -d /run/systemd/system ]; then
	systemctl stop connprobe.service connprobe-prometheus-agent.service || true
fi
if command -v systemctl >/dev/null 2>&1; then
	systemctl disable connprobe.service connprobe-prometheus-agent.service >/dev/null 2>&1 || true
fi
exit 0
