package tests

import (
	"strconv"
	"testing"
)

// probeStep reports what the previous boot left behind, then writes
// /etc/marker. Every classic scenario boots it at least twice on one disk.
const probeStep = `
if [ -e /etc/marker ]; then echo "result: before: marker present"; else echo "result: before: marker absent"; fi
[ -e /overlay/rwdata/data/etc/marker ] && echo "result: before: upper has marker"
echo "result: before: upper entries: $(ls -A /overlay/rwdata/data 2>/dev/null | tr '\n' ' ')"
bak=$(find /overlay/robase/ -maxdepth 1 -name '*-bak' 2>/dev/null | head -1)
[ -n "$bak" ] && echo "result: bak $bak marker=$(find "$bak" -path '*/etc/marker' | head -1)"
if echo written > /etc/marker; then echo "result: wrote marker"; else echo "result: write failed"; fi
[ -e /overlay/rwdata/data/etc/marker ] && echo "result: after: upper has marker"
echo "result: status $(overlayctl status --json 2>&1 | tr -d '\n' | head -c 1000)"
`

// fillStep writes 8 MiB to / and shows the system still runs afterwards.
const fillStep = `
out=$(dd if=/dev/zero of=/fill bs=1M count=8 2>&1)
echo "result: fill rc=$?"
echo "$out" | sed 's/^/result: dd: /'
echo "result: upper size KB=$(df -k / | awk 'NR == 2 {print $2}')"
rm -f /fill
echo alive > /etc/alive && echo "result: alive after fill: $(cat /etc/alive)"
`

// classicDisk builds an ext4 root with the probe and fill steps; setup adds
// the scenario's files.
func classicDisk(t *testing.T, setup func(r *rootTree)) (*session, *disk) {
	t.Helper()
	s := newSession(t)
	r := newRootTree(t, s.a)
	r.step("probe", probeStep)
	r.step("fill", fillStep)
	if setup != nil {
		setup(r)
	}
	return s, r.ext4()
}

// overlayBoot boots init=/sbin/init-overlay with the probe step (unless o
// says otherwise) and checks that /sbin/init ran to its end as PID 1.
func overlayBoot(t *testing.T, s *session, d *disk, o bootOpts) string {
	t.Helper()
	o.init = "/sbin/init-overlay"
	if o.step == "" {
		o.step = "probe"
	}
	out := s.run(d, o)
	must(t, out, `harness: step-done step=`+o.step+` rc=0`)
	return out
}

// wantOverlay checks that / is an overlay mount holding a writable layer.
func wantOverlay(t *testing.T, out string) {
	t.Helper()
	if fs := rootFS(t, out); fs != "overlay" {
		t.Errorf("root fs is %q, want overlay", fs)
	}
	must(t, out, `result: wrote marker`)
	must(t, out, `result: after: upper has marker`)
}

// wantPlain checks that / is the plain read-only root: no overlay.
func wantPlain(t *testing.T, out string) {
	t.Helper()
	if fs := rootFS(t, out); fs != "ext4" {
		t.Errorf("root fs is %q, want the plain ext4 root", fs)
	}
	must(t, out, `harness: rootmount /dev/vda ext4 ro[,\s]`)
	must(t, out, `result: write failed`)
}

func TestClassicTmpfs(t *testing.T) {
	s, d := classicDisk(t, nil)
	out := overlayBoot(t, s, d, bootOpts{})
	wantOverlay(t, out)
	must(t, out, `result: before: marker absent`)
	must(t, out, `overlayupd:`)

	out = overlayBoot(t, s, d, bootOpts{})
	wantOverlay(t, out)
	must(t, out, `result: before: marker absent`)
	if d.exists("/etc/marker") {
		t.Errorf("/etc/marker reached the read-only root image")
	}
}

func TestClassicPersistent(t *testing.T) {
	s, d := classicDisk(t, func(r *rootTree) { r.mkdir("overlay-rw-layer") })
	out := overlayBoot(t, s, d, bootOpts{})
	wantOverlay(t, out)
	must(t, out, `result: before: marker absent`)

	out = overlayBoot(t, s, d, bootOpts{})
	wantOverlay(t, out)
	must(t, out, `result: before: marker present`)
	must(t, out, `result: before: upper has marker`)
	if got := d.cat("/overlay-rw-layer/data/etc/marker"); got != "written\n" {
		t.Errorf("marker on disk = %q, want %q", got, "written\n")
	}
	if d.exists("/etc/marker") {
		t.Errorf("/etc/marker reached the lower root")
	}
}

func TestClassicPersistentClear(t *testing.T) {
	s, d := classicDisk(t, func(r *rootTree) { r.mkdir("overlay-rw-layer") })
	o := bootOpts{args: []string{"overlayupd.rwlayer=persistent-clear"}}
	out := overlayBoot(t, s, d, o)
	wantOverlay(t, out)
	if !d.exists("/overlay-rw-layer/data/etc/marker") {
		t.Errorf("boot 1 did not write its marker to the persistent dir")
	}

	out = overlayBoot(t, s, d, o)
	wantOverlay(t, out)
	must(t, out, `result: before: marker absent`)
	mustNot(t, out, `result: before: upper has marker`)
}

func TestClassicPersistentMove(t *testing.T) {
	s, d := classicDisk(t, func(r *rootTree) { r.mkdir("overlay-rw-layer") })
	o := bootOpts{args: []string{"overlayupd.rwlayer=persistent-move"}}
	wantOverlay(t, overlayBoot(t, s, d, o))

	out := overlayBoot(t, s, d, o)
	wantOverlay(t, out)
	must(t, out, `result: before: marker absent`)
	mustNot(t, out, `result: before: upper has marker`)
	must(t, out, `result: bak /overlay/robase/overlay-rw-layer-bak marker=\S+/etc/marker\n`)
	if !d.exists("/overlay-rw-layer-bak") {
		t.Errorf("no /overlay-rw-layer-bak on the disk")
	}
}

func TestClassicCustomDir(t *testing.T) {
	s, d := classicDisk(t, func(r *rootTree) {
		r.mkdir("data/rw")
		r.write("sbin/init-overlay-get-mode", "OVERLAY_RW_LAYER=persistent\nOVERLAY_RW_LAYER_DIR=/data/rw\n", 0o755)
	})
	out := overlayBoot(t, s, d, bootOpts{})
	wantOverlay(t, out)
	must(t, out, `result: before: marker absent`)

	out = overlayBoot(t, s, d, bootOpts{})
	wantOverlay(t, out)
	must(t, out, `result: before: marker present`)
	if !d.exists("/data/rw/data/etc/marker") {
		t.Errorf("marker not under the custom dir /data/rw on disk")
	}
	if d.exists("/overlay-rw-layer") {
		t.Errorf("the default /overlay-rw-layer was created")
	}
}

func TestClassicDisableFile(t *testing.T) {
	s, d := classicDisk(t, func(r *rootTree) { r.write("overlay/disable", "", 0o644) })
	wantPlain(t, overlayBoot(t, s, d, bootOpts{}))

	d.rm("/overlay/disable")
	wantOverlay(t, overlayBoot(t, s, d, bootOpts{}))
}

func TestClassicDisableCmdline(t *testing.T) {
	s, d := classicDisk(t, nil)
	wantPlain(t, overlayBoot(t, s, d, bootOpts{args: []string{"overlay=disable"}}))
	wantOverlay(t, overlayBoot(t, s, d, bootOpts{}))
}

func TestClassicGetModeDisabled(t *testing.T) {
	s, d := classicDisk(t, func(r *rootTree) {
		r.write("sbin/init-overlay-get-mode", "OVERLAY=disabled\n", 0o755)
	})
	wantPlain(t, overlayBoot(t, s, d, bootOpts{}))
	// The kernel command line wins over the get-mode script.
	wantOverlay(t, overlayBoot(t, s, d, bootOpts{args: []string{"overlayupd.fs=overlay"}}))
}

func TestClassicTmpfsSize(t *testing.T) {
	s, d := classicDisk(t, nil)
	out := overlayBoot(t, s, d, bootOpts{step: "fill", args: []string{"overlayupd.size=4M"}})
	if fs := rootFS(t, out); fs != "overlay" {
		t.Errorf("root fs is %q, want overlay", fs)
	}
	must(t, out, `result: fill rc=[1-9]`)
	must(t, out, `result: dd: .*No space left on device`)
	must(t, out, `result: alive after fill: alive`)
	if m := must(t, out, `result: upper size KB=(\d+)`); m != nil {
		if kb, _ := strconv.Atoi(m[1]); kb == 0 || kb > 4096 {
			t.Errorf("upper layer size %d KiB, want at most 4096", kb)
		}
	}

	// Without the cap the same write fits.
	out = overlayBoot(t, s, d, bootOpts{step: "fill"})
	must(t, out, `result: fill rc=0`)
	mustNot(t, out, `No space left`)
}

func TestClassicBrokenSetup(t *testing.T) {
	s, d := classicDisk(t, nil)
	out := overlayBoot(t, s, d, bootOpts{skipModul: "overlay"})
	wantPlain(t, out)
	must(t, out, `overlayupd:`)
	mustNot(t, out, `Kernel panic`)

	// The same disk with the module available gets its overlay.
	wantOverlay(t, overlayBoot(t, s, d, bootOpts{}))
}

// TestShellOverlayReference runs the tmpfs scenario against the shell-script
// overlay used by the bench: it proves the checks above see a working
// overlay, whatever state the binary is in.
func TestShellOverlayReference(t *testing.T) {
	s, d := classicDisk(t, func(r *rootTree) { r.write("sbin/init-overlay-sh", shellOverlay, 0o755) })
	for boot := 1; boot <= 2; boot++ {
		out := s.run(d, bootOpts{init: "/sbin/init-overlay-sh", step: "probe"})
		wantOverlay(t, out)
		must(t, out, `result: before: marker absent`)
	}
}

// TestClassicPersistentPowerCut: what the persistent layer holds after a
// sync survives a crash (sysrq b: reboot without syncing), and a power cut
// (QEMU killed) in the middle of a persistent-move boot leaves a root that
// boots again with its overlay.
func TestClassicPersistentPowerCut(t *testing.T) {
	s, d := classicDisk(t, func(r *rootTree) {
		r.mkdir("overlay-rw-layer")
		r.step("crash", probeStep+"sync\necho b > /proc/sysrq-trigger\nsleep 5\necho 'result: survived the crash'\n")
	})
	v := s.boot(d, bootOpts{init: "/sbin/init-overlay", step: "crash"})
	v.expect(`result: wrote marker`, bootTimeout)
	out := v.wait(bootTimeout)
	mustNot(t, out, `survived the crash|harness: step-done`)

	out = overlayBoot(t, s, d, bootOpts{})
	wantOverlay(t, out)
	must(t, out, `result: before: marker present`)

	// Cut the power while overlayupd moves the layer aside.
	v = s.boot(d, bootOpts{init: "/sbin/init-overlay", step: "probe", args: []string{"overlayupd.rwlayer=persistent-move"}})
	v.expect(`overlayupd: overlay over the root`, bootTimeout)
	v.kill()
	wantOverlay(t, overlayBoot(t, s, d, bootOpts{args: []string{"overlayupd.rwlayer=persistent-move"}}))
	wantOverlay(t, overlayBoot(t, s, d, bootOpts{}))
}
