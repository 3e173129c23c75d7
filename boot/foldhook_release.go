//go:build !overlayupd_crashhook

package boot

import "github.com/overlayupd/overlayupd/overlay"

// foldHook is nil in a release build: only the test build can stop a fold
// (foldhook.go).
func foldHook(*overlay.Log, string) func(string) error { return nil }
