package boot

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/squash"
	"github.com/overlayupd/overlayupd/trampoline"
)

// TestShadowStepHostileLayer: the first boot of a new committed root over a
// persistent layer used with root.prev looks into the layer for the shadow
// check. A layer whose data/ or shadowed/ is a FIFO (a damaged layer, a
// store on untrusted media) must not hang PID 1 there: a committed boot has
// no watchdog, so a hang is a board that never boots until someone pulls
// its power, and then hangs again.
func TestShadowStepHostileLayer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		policy overlay.ShadowPolicy
		plant  func(layerDir string) error
	}{
		{"data is a FIFO", overlay.ShadowKeep, func(d string) error {
			return unix.Mkfifo(filepath.Join(d, "data"), 0o644)
		}},
		{"shadowed is a FIFO", overlay.ShadowImage, func(d string) error {
			if err := os.MkdirAll(filepath.Join(d, "data", "etc"), 0o755); err != nil {
				return err
			}
			return unix.Mkfifo(filepath.Join(d, overlay.AsideDir), 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			top := t.TempDir()
			slots := filepath.Join(top, trampoline.SlotDir)
			if err := os.Mkdir(slots, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"root.sqsh", "root.prev.sqsh"} {
				if err := os.WriteFile(filepath.Join(slots, n), []byte(n), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := trampoline.Open(top, squash.Format{})
			prevID, err := s.EntryID("root.prev.sqsh")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SetLayerBase(prevID); err != nil { // the layer was used with root.prev
				t.Fatal(err)
			}
			layerDir := filepath.Join(top, "overlay-rw-layer")
			if err := os.Mkdir(layerDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tc.plant(layerDir); err != nil {
				t.Fatal(err)
			}
			st, err := s.State()
			if err != nil {
				t.Fatal(err)
			}
			cfg := overlay.Config{RWLayer: overlay.Persistent, RWLayerDir: layerDir, Shadow: tc.policy}
			l := &layers{log: overlay.NewLog(), s: s, w: &writableStore{top: top}, cfg: &cfg}
			plan := trampoline.BootPlan{Boot: trampoline.ParseName("root.sqsh", ".sqsh"), After: st}
			done := make(chan struct{})
			go func() {
				defer close(done)
				l.shadowStep(plan)
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("the boot's shadow check hangs on a persistent layer whose %s", tc.name)
			}
		})
	}
}
