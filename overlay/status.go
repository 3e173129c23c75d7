package overlay

import (
	"fmt"

	"github.com/overlayupd/overlayupd/internal/mounts"
)

// Status is what `overlayupd status` reports about the running system.
type Status struct {
	Active bool `json:"active"`
	// EnabledNextBoot is false when the disable file exists on the real
	// root, the get-mode script there disables the overlay, or this boot's
	// kernel command line has overlay=disable; DisabledBy says which.
	EnabledNextBoot bool   `json:"enabled_next_boot"`
	DisabledBy      string `json:"disabled_by"`
	// Base is where the real root is visible: /overlay/robase under the
	// overlay, / without it.
	Base         string `json:"base"`
	BaseReadOnly bool   `json:"base_read_only"`
	UnionFS      string `json:"union_fs"`
	// RWLayer is "tmpfs" or "persistent"; RWLayerDir the persistent directory.
	RWLayer     string   `json:"rw_layer"`
	RWLayerDir  string   `json:"rw_layer_dir"`
	RWSize      uint64   `json:"rw_size_bytes"`
	RWUsed      uint64   `json:"rw_used_bytes"`
	RWUsedPct   float64  `json:"rw_used_percent"`
	Warnings    []string `json:"warnings,omitempty"`
	DisableFile string   `json:"disable_file"`
}

// TmpfsWarnPercent is the usage of a tmpfs writable layer past which status
// warns: when it fills, writes fail everywhere on the device.
const TmpfsWarnPercent = 80

// Usage is the size and use of a filesystem, from statfs.
type Usage struct{ Size, Used uint64 }

// StatusFrom derives the status from the mount table, whether the disable
// file exists (at its path under the base), and the usage of the writable
// layer.
func StatusFrom(ms []mounts.Mount, disableExists func(string) bool, usage func(string) (Usage, error)) Status {
	st := Status{Base: "/"}
	if robase, ok := mounts.Find(ms, RobaseDir); ok {
		st.Active = true
		st.Base = RobaseDir
		st.BaseReadOnly = robase.ReadOnly()
		if root, ok := mounts.Find(ms, "/"); ok {
			st.UnionFS = root.FSType
		}
	} else if root, ok := mounts.Find(ms, "/"); ok {
		st.BaseReadOnly = root.ReadOnly()
	}
	st.DisableFile = st.Base + "/overlay/disable"
	if st.Base == "/" {
		st.DisableFile = DisableFile
	}
	st.EnabledNextBoot = !disableExists(st.DisableFile)
	if !st.EnabledNextBoot {
		st.DisabledBy = st.DisableFile
	}
	if rw, ok := mounts.Find(ms, RwdataDir); ok && st.Active {
		if rw.FSType == "tmpfs" {
			st.RWLayer = string(Tmpfs)
		} else {
			st.RWLayer, st.RWLayerDir = string(Persistent), rw.Root
		}
		if u, err := usage(RwdataDir); err == nil && u.Size > 0 {
			st.RWSize, st.RWUsed = u.Size, u.Used
			st.RWUsedPct = float64(u.Used) * 100 / float64(u.Size)
			if st.RWLayer == string(Tmpfs) && st.RWUsedPct > TmpfsWarnPercent {
				st.Warnings = append(st.Warnings, fmt.Sprintf(
					"the tmpfs writable layer is %.0f%% full (%s of %s): writes will fail when it fills; reboot to empty it or raise OVERLAY_RW_LAYER_SIZE",
					st.RWUsedPct, HumanBytes(u.Used), HumanBytes(u.Size)))
			}
		}
	}
	return st
}

// HumanBytes formats a byte count with a binary unit.
func HumanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
