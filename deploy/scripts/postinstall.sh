#!/bin/sh
# connprobe: deb postinst and rpm %post.
#
# A fresh install enables the unit but does not start it: the packaged
# configuration is an example that probes public hosts, and the person
# installing should point it at their own vendors first. Enabling still
# means a box that is rebooted before anyone runs "systemctl start" comes
# up monitoring. An upgrade restarts the agent only if it was running, so
# the new binary takes over; the configuration is a conffile and is kept.
#
# Nothing here may fail the installation: hosts without systemd (containers,
# chroots) get the files and a note.

# deb: "configure" [old-version]; rpm: 1 on install, 2 or more on upgrade.
case "$1" in
configure)
	if [ -n "${2:-}" ]; then action=upgrade; else action=install; fi
	;;
1) action=install ;;
[0-9]*) action=upgrade ;;
*) exit 0 ;; # deb abort-upgrade, abort-remove, ...: nothing was changed
esac

running_systemd=false
if [ -d /run/systemd/system ]; then running_systemd=true; fi

if $running_systemd; then
	systemctl daemon-reload || true
fi

if [ "$action" = upgrade ]; then
	if $running_systemd; then
		systemctl try-restart connprobe.service || true
	fi
	exit 0
fi

if command -v systemctl >/dev/null 2>&1 &&
	systemctl enable connprobe.service >/dev/null 2>&1; then
	enabled="enabled (it starts at boot), not started"
else
	enabled="installed, but systemd could not enable it here"
fi

cat <<MSG
connprobe: $enabled.
  1. Replace the example checks:   /etc/connprobe/connprobe.yml
  2. Check them:                   connprobe validate --config.file /etc/connprobe/connprobe.yml
  3. Start it:                     systemctl start connprobe
  Flags (listen address, profiles): /etc/default/connprobe
  Metrics: http://localhost:9469/metrics
MSG
exit 0
