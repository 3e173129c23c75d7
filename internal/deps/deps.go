//go:build tools

// Package deps pins the modules that later packages use, so go mod tidy keeps them.
package deps

import (
	_ "github.com/containerd/btrfs/v2"
	_ "github.com/diskfs/go-diskfs"
	_ "github.com/spf13/cobra"
	_ "golang.org/x/sys/unix"
)
