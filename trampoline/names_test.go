package trampoline_test

import (
	"testing"

	"github.com/overlayupd/overlayupd/trampoline"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		name, suffix string
		want         trampoline.Entry
	}{
		{"root.sqsh", sfx, trampoline.Entry{Name: "root.sqsh", Role: trampoline.RoleCommitted}},
		{"root.next.sqsh", sfx, trampoline.Entry{Name: "root.next.sqsh", Role: trampoline.RoleCommitting}},
		{"root.prev.sqsh", sfx, trampoline.Entry{Name: "root.prev.sqsh", Role: trampoline.RolePrevious}},
		{"root.failed.sqsh", sfx, trampoline.Entry{Name: "root.failed.sqsh", Role: trampoline.RoleFailed}},
		{"root.try-1.sqsh", sfx, trampoline.Entry{Name: "root.try-1.sqsh", Role: trampoline.RoleStaged, Tries: 1}},
		{"root.try-99.sqsh", sfx, trampoline.Entry{Name: "root.try-99.sqsh", Role: trampoline.RoleStaged, Tries: 99}},
		{"root.trying-0.sqsh", sfx, trampoline.Entry{Name: "root.trying-0.sqsh", Role: trampoline.RoleTrying}},
		{"root.trying-98.sqsh", sfx, trampoline.Entry{Name: "root.trying-98.sqsh", Role: trampoline.RoleTrying, Tries: 98}},
		{"root.trying-99.sqsh", sfx, trampoline.Entry{Name: "root.trying-99.sqsh"}},
		{"root.try-0.sqsh", sfx, trampoline.Entry{Name: "root.try-0.sqsh"}},
		{"root.try-100.sqsh", sfx, trampoline.Entry{Name: "root.try-100.sqsh"}},
		{"root.try-01.sqsh", sfx, trampoline.Entry{Name: "root.try-01.sqsh"}},
		{"root.try-+1.sqsh", sfx, trampoline.Entry{Name: "root.try-+1.sqsh"}},
		{"root.try-.sqsh", sfx, trampoline.Entry{Name: "root.try-.sqsh"}},
		{"root", sfx, trampoline.Entry{Name: "root"}},
		{"root", "", trampoline.Entry{Name: "root", Role: trampoline.RoleCommitted}},
		{"root.trying-2", "", trampoline.Entry{Name: "root.trying-2", Role: trampoline.RoleTrying, Tries: 2}},
		{".stage-abc", sfx, trampoline.Entry{Name: ".stage-abc", Role: trampoline.RoleStaging}},
		{"rm-root.prev.sqsh", sfx, trampoline.Entry{Name: "rm-root.prev.sqsh", Role: trampoline.RoleRemoving}},
		{".lock", sfx, trampoline.Entry{Name: ".lock"}},
		{"failed.reason", sfx, trampoline.Entry{Name: "failed.reason"}},
		{".failed.reason.tmp-123", sfx, trampoline.Entry{Name: ".failed.reason.tmp-123"}},
	}
	for _, tt := range tests {
		if got := trampoline.ParseName(tt.name, tt.suffix); got != tt.want {
			t.Errorf("ParseName(%q, %q): got %+v, want %+v", tt.name, tt.suffix, got, tt.want)
		}
	}
}

// FuzzParseName: parsing never panics, and a protocol name has exactly one
// reading: formatting what was parsed gives the name back.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"root.sqsh", "root.try-3.sqsh", "root.trying-0", "root.try-01.sqsh", "rm-x", ".stage-1", "", "root.trying-99"} {
		f.Add(s, ".sqsh")
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, name, suffix string) {
		e := trampoline.ParseName(name, suffix)
		if e.Name != name {
			t.Fatalf("ParseName(%q).Name = %q", name, e.Name)
		}
		switch e.Role {
		case trampoline.RoleOther, trampoline.RoleRemoving, trampoline.RoleStaging:
			return
		}
		if got := trampoline.EntryName(e.Role, e.Tries, suffix); got != name {
			t.Fatalf("EntryName(ParseName(%q, %q)) = %q", name, suffix, got)
		}
		if e.Tries < 0 || e.Tries > trampoline.MaxTries {
			t.Fatalf("ParseName(%q): tries %d out of range", name, e.Tries)
		}
	})
}
