//go:build overlayupd_crashhook

package main

import "testing"

const crashHookBuilt = true

// TestCrashHookParse: the hook fires at the named op only, and only for a
// valid, non-negative count.
func TestCrashHookParse(t *testing.T) {
	t.Parallel()
	if hookFor("", false) != nil || hookFor("x", true) != nil || hookFor("-1", true) != nil {
		t.Error("a hook for an unset, non-numeric or negative value")
	}
	if hookFor("2", true) == nil {
		t.Fatal("no hook for 2")
	}
}
