//go:build !overlayupd_crashhook

package main

const crashHookBuilt = false
