#!/bin/sh
# init-overlay.sh: the native PID-1 bench's stand-in for the original
# init-overlay shell script (ppisa/rpi-utils; seed/overlay-setup.md describes
# it), on its default tmpfs path. The original is not kept in this
# repository; to measure it instead, point INIT_OVERLAY_SCRIPT at a copy.
#
# It does the original's work in the original's order, one busybox command
# per step: honour /overlay/disable, /sbin/init-overlay-get-mode and
# overlay=disable; find overlay in /proc/filesystems (modprobe it if not);
# tmpfs on /overlay; bind / on /overlay/robase; a tmpfs rwdata; the overlay on
# /overlay/combined; rwdata, robase and every other mount moved under it;
# the standard mount points; pivot_root; exec chroot /sbin/init. Like the
# original, it names every command by its full path, as a PID 1 must when the
# kernel gives it no PATH; so busybox sh forks and execs each of them.

plain() {
	echo "init-overlay: $1, booting without overlay"
	exec /sbin/init
}

[ -e /overlay/disable ] && plain "disabled by /overlay/disable"
[ -e /sbin/init-overlay-get-mode ] && . /sbin/init-overlay-get-mode
[ "$OVERLAY" = disabled ] && plain "disabled by init-overlay-get-mode"

own_proc=
if [ ! -e /proc/filesystems ]; then
	/bin/mount -n -t proc -o nodev,noexec,nosuid proc /proc
	own_proc=y
fi
/bin/grep -qE '(^| )overlay=disable( |$)' /proc/cmdline && plain "overlay=disable on the command line"
/bin/grep -qw overlay /proc/filesystems || /sbin/modprobe overlay 2>/dev/null
/bin/grep -qw overlay /proc/filesystems || plain "no overlay filesystem"

# Every mount but /, /overlay* and /dev/pts, to be moved under the new root.
moves=$(/bin/awk '$2 != "/" && $2 !~ /^\/overlay/ && $2 !~ /^\/dev\/pts/ {print $2}' /proc/mounts)

/bin/mount -n -t tmpfs none /overlay
/bin/mkdir -p /overlay/rwdata /overlay/robase /overlay/combined
/bin/mount --bind / /overlay/robase
/bin/mount -n -t tmpfs none /overlay/rwdata
/bin/mkdir -p /overlay/rwdata/data /overlay/rwdata/work
new=/overlay/combined
/bin/mount -n -t overlay -o upperdir=/overlay/rwdata/data,workdir=/overlay/rwdata/work,lowerdir=/overlay/robase overlay $new

/bin/mkdir -p $new/overlay/rwdata $new/overlay/robase $new/overlay/pivot
/bin/mount -n --move /overlay/rwdata $new/overlay/rwdata
/bin/mount -n --move /overlay/robase $new/overlay/robase
/bin/chmod 755 $new
/bin/touch $new/fastboot
for m in $moves; do
	# A mount under one already moved has gone with it.
	[ -e "$m" ] || continue
	[ -n "$own_proc" ] && [ "$m" = /proc ] && continue
	/bin/mkdir -p "$new$m"
	/bin/mount -n --move "$m" "$new$m"
done
/bin/mkdir -p $new/dev $new/proc $new/sys $new/tmp $new/run
[ -L $new/var/lock ] || /bin/mkdir -p $new/var/lock
[ -n "$own_proc" ] && /bin/umount -n /proc

cd $new
/sbin/pivot_root . overlay/pivot
exec /usr/sbin/chroot . /sbin/init "$@"
