package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(withoutProgress(out)), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
}

// withoutProgress is a command's merged output (run gives stdout and
// stderr in one) without the --json progress lines of stderr.
func withoutProgress(out string) string {
	var keep []string
	for _, l := range strings.SplitAfter(out, "\n") {
		if !strings.HasPrefix(l, `{"progress":`) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

// healthDir makes a directory of health checks: name -> shell script body.
func healthDir(t *testing.T, checks map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range checks {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// trialStore is a store whose staged image is booted as a trial.
func trialStore(t *testing.T, e *env) (top, oldSum, newSum, trial string) {
	t.Helper()
	top, old := newStore(t, e)
	img := bootable().squashfs(t)
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, img); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	return top, fileSum(t, old), fileSum(t, img), bootTrial(t, e, top)
}

func TestCommit(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, oldSum, newSum, trial := trialStore(t, e)
	out, err := run(t, e, "overlayupd", "commit", "--store", top, "--health-dir", healthDir(t, map[string]string{"10-ok": "exit 0"}))
	if err != nil {
		t.Fatalf("commit: %v\n%s", err, out)
	}
	if want := "committed root.sqsh (was the trial " + trial + ")"; !strings.Contains(out, want) || !strings.Contains(out, "rollback") {
		t.Errorf("output %q, want %q and a word on rollback", out, want)
	}
	for name, want := range map[string]string{"root.sqsh": newSum, "root.prev.sqsh": oldSum} {
		if got := entrySum(t, slotPath(top, name)); got != want {
			t.Errorf("%s holds %s, want %s", name, got, want)
		}
	}
}

func TestCommitRefusedOutsideTrial(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		booted string // "" keeps the staged image unbooted
		trial  bool
		want   string
	}{
		{"staged, not booted", "", false, "not booted"},
		{"trial, but booted the committed root", "root.sqsh", true, "not booted into the trial"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := testEnv(t)
			top, _ := newStore(t, e)
			img := bootable().squashfs(t)
			if _, err := run(t, e, "overlayupd", "apply", "--store", top, img); err != nil {
				t.Fatal(err)
			}
			if c.trial {
				bootTrial(t, e, top)
			}
			fakeBooted(e, c.booted)
			before := treeDigest(t, top)
			ran := filepath.Join(t.TempDir(), "ran")
			hd := healthDir(t, map[string]string{"10-mark": "touch " + ran})
			_, err := run(t, e, "overlayupd", "commit", "--store", top, "--health-dir", hd)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--force") {
				t.Errorf("err = %v, want %q and a hint at --force", err, c.want)
			}
			if _, err := os.Stat(ran); err == nil {
				t.Error("health checks ran for a commit that is refused anyway")
			}
			if treeDigest(t, top) != before {
				t.Error("a refused commit changed the store")
			}
			if out, err := run(t, e, "overlayupd", "commit", "--store", top, "--force", "--health-dir", hd); err != nil {
				t.Fatalf("commit --force: %v\n%s", err, out)
			}
			if got := entrySum(t, slotPath(top, "root.sqsh")); got != fileSum(t, img) {
				t.Error("commit --force did not commit the new image")
			}
		})
	}
}

func TestCommitNothingToCommit(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	_, err := run(t, e, "overlayupd", "commit", "--store", top, "--force", "--health-dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "nothing to commit") {
		t.Errorf("err = %v, want 'nothing to commit'", err)
	}
}

func TestCommitHealthChecks(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		checks  map[string]string
		timeout string
		wantErr []string // empty: the commit succeeds
	}{
		{"all pass", map[string]string{"10-a": "exit 0", "20-b": "true", "README": "exit 1"}, "5s", nil},
		{"one fails", map[string]string{"10-ok": "exit 0", "20-net": "echo no route to the server >&2; exit 1", "30-never": "exit 0"}, "5s",
			[]string{"20-net", "no route to the server", "exit status 1", "not committed"}},
		{"one hangs", map[string]string{"10-slow": "sleep 30"}, "300ms", []string{"10-slow", "timed out"}},
		{"hidden and backups skipped", map[string]string{".10-hidden": "exit 1", "20-x~": "exit 1"}, "5s", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := testEnv(t)
			top, oldSum, newSum, _ := trialStore(t, e)
			hd := healthDir(t, c.checks)
			if _, ok := c.checks["README"]; ok {
				_ = os.Chmod(filepath.Join(hd, "README"), 0o644) // not executable: not a check
			}
			before := treeDigest(t, top)
			_, err := run(t, e, "overlayupd", "commit", "--store", top, "--health-dir", hd, "--health-timeout", c.timeout)
			if len(c.wantErr) == 0 {
				if err != nil {
					t.Fatalf("commit: %v", err)
				}
				if got := entrySum(t, slotPath(top, "root.sqsh")); got != newSum {
					t.Error("not committed")
				}
				return
			}
			if err == nil {
				t.Fatal("commit succeeded despite a failing health check")
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant it to say %q", err, w)
				}
			}
			if treeDigest(t, top) != before || entrySum(t, slotPath(top, "root.sqsh")) != oldSum {
				t.Error("a refused commit changed the store")
			}
		})
	}
}

func TestRollback(t *testing.T) {
	t.Parallel()
	t.Run("after a commit", func(t *testing.T) {
		t.Parallel()
		e := testEnv(t)
		top, oldSum, newSum, _ := trialStore(t, e)
		if _, err := run(t, e, "overlayupd", "commit", "--store", top, "--health-dir", t.TempDir()); err != nil {
			t.Fatal(err)
		}
		out, err := run(t, e, "overlayupd", "rollback", "--store", top)
		if err != nil {
			t.Fatalf("rollback: %v\n%s", err, out)
		}
		if got := entrySum(t, slotPath(top, "root.sqsh")); got != oldSum {
			t.Error("root.sqsh is not the old image after rollback")
		}
		if got := entrySum(t, slotPath(top, "root.prev.sqsh")); got != newSum {
			t.Error("root.prev.sqsh is not the new image after rollback")
		}
		if !strings.Contains(out, "next boot: boots root.sqsh") || !strings.Contains(out, "swapped") {
			t.Errorf("output does not say what changed and what boots next:\n%s", out)
		}
	})
	t.Run("during a trial", func(t *testing.T) {
		t.Parallel()
		e := testEnv(t)
		top, _, newSum, _ := trialStore(t, e)
		out, err := run(t, e, "overlayupd", "rollback", "--store", top)
		if err != nil {
			t.Fatalf("rollback: %v\n%s", err, out)
		}
		if got, want := slots(t, top), []string{"failed.reason", "root.failed.sqsh", "root.sqsh"}; !slices.Equal(got, want) {
			t.Errorf("slots %v, want %v", got, want)
		}
		if entrySum(t, slotPath(top, "root.failed.sqsh")) != newSum {
			t.Error("root.failed.sqsh is not the trial image")
		}
	})
	t.Run("nothing to roll back", func(t *testing.T) {
		t.Parallel()
		e := testEnv(t)
		top, _ := newStore(t, e)
		if _, err := run(t, e, "overlayupd", "rollback", "--store", top); err == nil || !strings.Contains(err.Error(), "nothing to do") {
			t.Errorf("err = %v, want nothing to do", err)
		}
	})
}

func TestGC(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _, _, _ := trialStore(t, e)
	if _, err := run(t, e, "overlayupd", "rollback", "--store", top); err != nil {
		t.Fatal(err)
	}
	left := slotPath(top, ".stage-12345")
	if err := os.WriteFile(left, []byte("half an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, e, "overlayupd", "gc", "--store", top)
	if err != nil {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	if got, want := slots(t, top), []string{"root.sqsh"}; !slices.Equal(got, want) {
		t.Errorf("after gc: %v, want %v", got, want)
	}
	if !strings.Contains(out, "root.failed.sqsh") || !strings.Contains(out, ".stage-12345") {
		t.Errorf("gc output does not name what it removed:\n%s", out)
	}
	if out, err := run(t, e, "overlayupd", "gc", "--store", top); err != nil || !strings.Contains(out, "nothing to remove") {
		t.Errorf("second gc: %v\n%s", err, out)
	}
}

func TestStatusStore(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _, newSum, trial := trialStore(t, e)
	out, err := run(t, e, "overlayupd", "status", "--store", top, "--json", "--sha256")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	var raw map[string]json.RawMessage
	mustJSON(t, out, &raw)
	for _, k := range []string{"active", "enabled_next_boot", "base", "disable_file", "store"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status --json lacks %q:\n%s", k, out)
		}
	}
	var got struct {
		Store *struct {
			Top          string
			Booted       string
			BootedSHA256 string `json:"booted_sha256"`
			Entries      []struct{ Name, Role string }
			NextBoot     struct{ Summary string } `json:"next_boot"`
		}
	}
	mustJSON(t, out, &got)
	s := got.Store
	if s == nil {
		t.Fatal("no store part")
	}
	if s.Booted != trial || s.BootedSHA256 != newSum || s.Top != top || s.NextBoot.Summary == "" {
		t.Errorf("store part: booted %q sha %q top %q summary %q; want %q %q %q and a summary",
			s.Booted, s.BootedSHA256, s.Top, s.NextBoot.Summary, trial, newSum, top)
	}
	var roles []string
	for _, e := range s.Entries {
		roles = append(roles, e.Name+"="+e.Role)
	}
	if want := []string{"root.sqsh=committed", trial + "=trying"}; !slices.Equal(roles, want) {
		t.Errorf("entries %v, want %v", roles, want)
	}
	text, err := run(t, e, "overlayupd", "status", "--store", top)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"store: " + top, "booted: " + trial, "committed", "trying", "running trial"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
}

func TestStatusWithoutStore(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	out, err := run(t, e, "overlayupd", "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	mustJSON(t, out, &raw)
	if _, ok := raw["active"]; !ok {
		t.Errorf("status --json lost the overlay fields:\n%s", out)
	}
}

// TestHealthCheckOutputBounded: commit keeps only the end of a check's
// output (it quotes the last KiB): a check that prints without end (a
// broken trial's check looping on an error) must not grow commit's memory
// with it until the board runs out. Not parallel: it measures the heap.
func TestHealthCheckOutputBounded(t *testing.T) {
	hd := healthDir(t, map[string]string{"10-chatty": "head -c 268435456 /dev/zero | tr '\\0' x; echo; echo the-last-line; exit 1"})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := runHealthChecks(context.Background(), hd, time.Minute, nil)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "the-last-line") {
		t.Errorf("a failing check: %v; want its last line quoted", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("commit allocated %d MiB for 256 MiB of a check's output; it quotes only the last KiB", grew>>20)
	}
}

// TestCommitHealthTimeoutRefused: --health-timeout 0 (read as "no limit"
// by many tools) or below made every health check time out at once, so
// every trial was refused and rolled back at its deadline; it is refused
// before anything runs, as --after below 0 is.
func TestCommitHealthTimeoutRefused(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _, _, _ := trialStore(t, e)
	hd := healthDir(t, map[string]string{"10-ok": "exit 0"})
	for _, d := range []string{"0", "-1s"} {
		_, err := run(t, e, "overlayupd", "commit", "--store", top, "--health-dir", hd, "--health-timeout", d)
		if err == nil || !strings.Contains(err.Error(), "--health-timeout") {
			t.Errorf("commit --health-timeout %s: %v; want a refusal that names the flag", d, err)
		}
	}
	if out, err := run(t, e, "overlayupd", "commit", "--store", top, "--health-dir", hd, "--health-timeout", "5s"); err != nil {
		t.Errorf("commit --health-timeout 5s: %v\n%s", err, out)
	}
}
