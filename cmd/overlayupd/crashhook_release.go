//go:build !overlayupd_crashhook

package main

// crashPoint is the crash tests' hook, which release builds do not have
// (see crashhook.go).
func crashPoint() func(int) { return nil }
