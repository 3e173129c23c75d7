package trampoline

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestRecordsAreEncodingJSONs: the records the PID-1 path writes by hand
// (package record) are byte for byte what encoding/json writes for the same
// values, so status --json and older versions read them as before.
func TestRecordsAreEncodingJSONs(t *testing.T) {
	when := time.Date(2026, 12, 2, 18, 45, 1, 5, time.UTC)
	check := func(got []byte, v any) {
		t.Helper()
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("by hand:\n %s\nencoding/json:\n %s", got, want)
		}
	}
	for _, r := range []Reason{{}, {Time: when, Entry: "root.sqsh", Why: "trial <failed> & \"rolled back\"\n"}} {
		check(r.record(), r)
	}
	for _, r := range []ShadowReport{
		{},
		{Time: when, Root: "root.next", Against: "root", Policy: "keep", Files: []ShadowFile{}},
		{Time: when, Root: "r", Against: "a", Policy: "image", Trial: true, More: 3, Error: "walk: EIO",
			Files: []ShadowFile{{Path: "/etc/a", Change: "changed", Layer: "file", Action: "kept"},
				{Path: "/etc/b\xff", Change: "removed", Layer: "whiteout", Action: "moved", Aside: "/overlay/store/x"}}},
	} {
		check(r.record(), r)
	}
}
