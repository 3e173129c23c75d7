package tests

// Unit tests of the power-cut walk's model (powercut_test.go): no VM, no root.

import (
	"fmt"
	"strings"
	"testing"
)

// cutBoot is a boot as the walk sees it: the image that ran, and status
// --json's entries ("name role mtime" each), the booted one first.
func cutBoot(t *testing.T, image string, entries ...string) *storeBoot {
	t.Helper()
	var js []string
	booted := ""
	for i, e := range entries {
		f := strings.Fields(e)
		if i == 0 {
			booted = f[0]
		}
		js = append(js, fmt.Sprintf(`{"name":%q,"role":%q,"size":5017600,"mtime":%q}`, f[0], f[1], f[2]))
	}
	console := fmt.Sprintf("result: image %s\nresult: status {\"store\":{\"booted\":%q,\"entries\":[%s]}}\n", image, booted, strings.Join(js, ","))
	b, err := readStoreBoot(1, console)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCutModelCheck(t *testing.T) {
	trial := cutBoot(t, "v2", "root.trying-0.sqsh trying 2026-12-03T21:04:55Z", "root.sqsh committed 2026-12-03T21:04:37Z")
	for _, c := range []struct {
		name  string
		model func(m *cutModel) // what the step before the boot left
		next  *storeBoot
		want  string // a problem the check must find, "" for none
	}{
		{"the cut trial boots again: try-once broken",
			func(m *cutModel) { m.cutTrialBy(trial) }, trial, "cut without a commit, but boots again"},
		{"the cut trial is failed, the committed root boots",
			func(m *cutModel) { m.cutTrialBy(trial) },
			cutBoot(t, "v3", "root.sqsh committed 2026-12-03T21:04:37Z", "root.failed.sqsh failed 2026-12-03T21:04:55Z"), ""},
		// The walk's apply:v2 ran in the trial of v2 and said rc=0: the new
		// entry supersedes the cut one and boots under the same name.
		{"the same image applied again during its trial boots as a new trial",
			func(m *cutModel) { m.cutTrialBy(trial); m.wantTrial = "v2" },
			cutBoot(t, "v2", "root.trying-0.sqsh trying 2026-12-03T21:05:00Z", "root.failed.sqsh failed 2026-12-03T21:04:55Z", "root.sqsh committed 2026-12-03T21:04:37Z"), ""},
		{"as above, the apply cut before it reported",
			func(m *cutModel) { m.cutTrialBy(trial) },
			cutBoot(t, "v2", "root.trying-0.sqsh trying 2026-12-03T21:05:00Z", "root.failed.sqsh failed 2026-12-03T21:04:55Z", "root.sqsh committed 2026-12-03T21:04:37Z"), ""},
		{"an apply that said rc=0 does not boot as the trial",
			func(m *cutModel) { m.wantTrial = "v2" },
			cutBoot(t, "v1", "root.sqsh committed 2026-12-03T21:04:37Z"), "apply reported success"},
		{"a commit that said rc=0 boots committed",
			func(m *cutModel) { m.wantCommitted = "v2" }, trial, "commit reported success"},
		{"a rollback that said rc=0 boots the same root",
			func(m *cutModel) { m.notEntry, m.notImage = trial.status.bootedID(), "v2" }, trial, "rollback reported success"},
		{"two committed roots",
			func(m *cutModel) {},
			cutBoot(t, "v1", "root.sqsh committed 2026-12-03T21:04:37Z", "root.next.sqsh committed 2026-12-03T21:04:38Z"), "2 committed roots"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &cutModel{committed: "v1"}
			c.model(m)
			_, problems := m.check(c.next)
			got := strings.Join(problems, "; ")
			if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
				t.Errorf("check: %q, want a problem containing %q", got, c.want)
			}
			if m.cutTrial != "" || m.wantTrial != "" {
				t.Errorf("the model's expectations outlive the boot they were for: %+v", m)
			}
		})
	}
}
