package boot_test

// The persistent layer belongs to the committed root (trampoline/layer.go),
// booted as PID 1 of a private namespace on a loop-mounted ext4 store.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// layerStore is a store with v1 committed, v2 staged, and a persistent
// layer that already holds a file of the user's.
func layerStore(t *testing.T, v1files, v2files map[string]string) string {
	t.Helper()
	v1, v2 := image(t, "v1", "", v1files), image(t, "v2", "", v2files)
	return store(t, map[string]string{"root.sqsh": v1, "root.try-1.sqsh": v2},
		map[string]string{"overlay-rw-layer/data/etc/user": "the user's file\n", "overlay-rw-layer/work/": ""})
}

const showLayers = `echo "USER=$(cat /etc/user 2>&1)"; echo "TRIALFILE=$(cat /etc/trialfile 2>&1)"; ` +
	`echo "COMMITTED=$(cat /overlay/store/overlay-rw-layer/data/etc/trialfile 2>&1)"; ` +
	`echo "SLOTS=$(ls /overlay/store/roots | grep -v '^boots-' | tr '\n' ' ')"`

// TestTrialLayerRolledBack: a trial sees the committed root's layer, read
// only, and writes into its own; rebooted without a commit, the committed
// root's layer does not have what the trial wrote (it is in layer.failed).
func TestTrialLayerRolledBack(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	img := layerStore(t, nil, nil)
	write := "ACTION=echo trial > /etc/trialfile; echo changed > /etc/user; " +
		"echo x > /overlay/rwcommitted/etc/x 2>/dev/null && echo RW=writable || echo RW=read-only; " + showLayers
	bootAll(t, img, []bootWant{
		{env: []string{write}, want: map[string]string{"IMAGE": "v2", "RW": "read-only", "USER": "changed", "TRIALFILE": "trial",
			"COMMITTED": "cat: can't open '/overlay/store/overlay-rw-layer/data/etc/trialfile': No such file or directory",
			"SLOTS":     "layer.trial root.sqsh root.trying-0.sqsh "}},
		{env: []string{"ACTION=" + showLayers}, want: map[string]string{"IMAGE": "v1", "USER": "the user's file",
			"TRIALFILE": "cat: can't open '/etc/trialfile': No such file or directory",
			"SLOTS":     "boot.reason failed.reason layer.base layer.failed root.failed.sqsh root.sqsh "}},
	})
}

// TestTrialLayerCommitted: a trial that commits keeps its writes: the next
// boot folds them into the persistent layer, with the user's earlier file.
func TestTrialLayerCommitted(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	img := layerStore(t, nil, nil)
	bootAll(t, img, []bootWant{
		{env: []string{"ACTION=echo trial > /etc/trialfile; overlayupd commit >/dev/null 2>&1; " + showLayers},
			want: map[string]string{"IMAGE": "v2", "TRIALFILE": "trial", "SLOTS": "layer.fold root.prev.sqsh root.sqsh "}},
		{env: []string{"ACTION=" + showLayers}, want: map[string]string{"IMAGE": "v2", "USER": "the user's file", "TRIALFILE": "trial",
			"COMMITTED": "trial", "SLOTS": "layer.base root.prev.sqsh root.sqsh "},
			has: []string{"folded the committed trial's writes into the persistent layer"}},
	})
}

// updateStore is a store with v1 committed, v2 in /updates for apply,
// and an empty persistent layer.
func updateStore(t *testing.T, v1files, v2files map[string]string) string {
	t.Helper()
	tree := testroot.Tree(t, map[string]string{"overlayupd-store": "overlayupd store v1\n", "roots/": "", "updates/": "", "overlay-rw-layer/": ""})
	image(t, "v1", filepath.Join(tree, "roots/root.sqsh"), v1files)
	image(t, "v2", filepath.Join(tree, "updates/v2.sqsh"), v2files)
	return testroot.Ext4(t, tree, "128M")
}

// TestShadowReported: v1's file edited by the user, v2 changes it: the
// first boot of v2 names it (keep: the user's wins); with
// overlayupd.shadow=image the trial shows v2's and leaves the layer alone,
// and the first committed boot moves the user's aside.
func TestShadowReported(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	v1 := map[string]string{"etc/conf": "v1's conf\n"}
	v2 := map[string]string{"etc/conf": "v2's conf\n"}
	edit := "ACTION=echo mine > /etc/conf && overlayupd apply /overlay/store/updates/v2.sqsh"
	conf := `echo "CONF=$(cat /etc/conf)"; echo "ASIDE=$(cat /overlay/rwdata/shadowed/1/etc/conf 2>&1)"; ` +
		`echo "LAYER=$(cat /overlay/store/overlay-rw-layer/data/etc/conf 2>&1)"; ` +
		`overlayupd status --json | grep -c '"path": "/etc/conf"' | sed 's/^/STATUS=/'`
	for _, policy := range []string{"keep", "image"} {
		t.Run(policy, func(t *testing.T) {
			img := updateStore(t, v1, v2)
			cmdline := "root=/dev/vda ro init=/sbin/init-overlay overlayupd.shadow=" + policy
			got, log := testroot.Boot(t, img, cmdline, edit)
			if got["IMAGE"] != "v1" || got["ACTION-RC"] != "0" {
				t.Fatalf("boot 1: %v:\n%s", got, log)
			}
			want := map[string]string{"keep": "mine", "image": "v2's conf"}[policy]
			got, log = testroot.Boot(t, img, cmdline, "ACTION="+conf+"; overlayupd commit >/dev/null 2>&1")
			if got["IMAGE"] != "v2" || got["CONF"] != want || got["LAYER"] != "mine" || got["STATUS"] != "1" ||
				!strings.Contains(log, "shadow: /etc/conf changed by the new image") {
				t.Fatalf("trial: %v, want /etc/conf %q, the user's untouched in the layer, named in status and the log:\n%s", got, want, log)
			}
			got, log = testroot.Boot(t, img, cmdline, "ACTION="+conf)
			switch policy {
			case "keep":
				if got["CONF"] != "mine" || got["LAYER"] != "mine" {
					t.Errorf("committed, keep: %v, want the user's file kept:\n%s", got, log)
				}
			case "image":
				if got["CONF"] != "v2's conf" || got["ASIDE"] != "mine" || !strings.HasPrefix(got["LAYER"], "cat: can't open") {
					t.Errorf("committed, image: %v, want v2's conf shown and the user's in /overlay/rwdata/shadowed/1:\n%s", got, log)
				}
			}
			// The layer is v2's now: no check, no report of it again.
			got, log = testroot.Boot(t, img, cmdline, "ACTION="+conf)
			if strings.Contains(log, "shadow: /etc/conf") || got["IMAGE"] != "v2" {
				t.Errorf("boot 4 (%v) checks again:\n%s", got, log)
			}
		})
	}
}

// TestLayerStuckAndHostile: a pending fold that cannot be done (a layer
// made with redirect_dir on) is kept for later and the boot gets a tmpfs
// layer, so that nothing written now is overwritten by the fold later; a
// trial layer planted as a link is never followed: the trial gets a tmpfs
// layer, and nothing is written where the link points.
func TestLayerStuckAndHostile(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	v1, v2 := image(t, "v1", "", nil), image(t, "v2", "", nil)
	redirect := testroot.ApplyFunc(func(root *os.Root) error {
		return unix.Lsetxattr(filepath.Join(root.Name(), "roots/layer.fold/data/etc/moved"), "trusted.overlay.redirect", []byte("/etc/old"), 0)
	})
	img := store(t, map[string]string{"root.sqsh": v1}, map[string]string{"overlay-rw-layer/data/etc/user": "the user's\n",
		"roots/layer.fold/data/etc/moved/x": "the trial's\n", "roots/layer.fold/work/": ""}, redirect)
	show := `ACTION=echo "ROOTRW=$(awk '$2=="/overlay/rwdata"{print $3}' /proc/mounts)"; echo "X=$(cat /etc/moved/x 2>&1)"; ls /overlay/store/roots | grep -v '^boots-' | tr '\n' ' ' | sed 's/^/SLOTS=/'; echo`
	got, log := testroot.Boot(t, img, "root=/dev/vda ro init=/sbin/init-overlay", show)
	if got["ROOTRW"] != "tmpfs" || !strings.Contains(got["SLOTS"], "layer.fold") || !strings.Contains(log, "kept for the next boot, this boot has a tmpfs writable layer") {
		t.Errorf("a fold that cannot be done: %v, want a tmpfs layer and layer.fold kept:\n%s", got, log)
	}

	elsewhere := testroot.Group(testroot.Dir("elsewhere", 0o755), testroot.Symlink("/elsewhere", "roots/layer.trial"))
	img = store(t, map[string]string{"root.sqsh": v1, "root.try-1.sqsh": v2}, map[string]string{"overlay-rw-layer/": ""}, elsewhere)
	got, log = testroot.Boot(t, img, "root=/dev/vda ro init=/sbin/init-overlay",
		`ACTION=echo trial > /etc/t; echo "ROOTRW=$(awk '$2=="/overlay/rwdata"{print $3}' /proc/mounts)"; ls -A /overlay/store/elsewhere | wc -l | sed 's/^/ELSEWHERE=/'`)
	if got["IMAGE"] != "v2" || got["ROOTRW"] != "tmpfs" || got["ELSEWHERE"] != "0" || !strings.Contains(log, "not a directory; the trial boots with a tmpfs writable layer") {
		t.Errorf("a linked trial layer: %v, want the trial on a tmpfs layer and nothing where the link points:\n%s", got, log)
	}
}
