//go:build tools

// Package deps pins the modules that later packages use, so go mod tidy keeps them.
package deps
import (
 _ "golang.org/x/sys/unix"
 _ "github.com/spf13/cobra"
 _ "github.com/diskfs/go-diskfs"
 _ "github.com/containerd/btrfs/v2"
)
