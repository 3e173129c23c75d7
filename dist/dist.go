// Package dist owns the files overlayupd installs besides itself: the
// automatic commit's systemd unit and its /etc/init.d script for busybox
// and sysvinit. `overlayupd install --auto-commit` writes them from here;
// `make install` ships the same files.
package dist

import _ "embed"

// Names and where they go on a root.
const (
	UnitName   = "overlayupd-commit.service"
	UnitDir    = "etc/systemd/system"
	UnitWants  = "etc/systemd/system/multi-user.target.wants"
	InitName   = "overlayupd-commit"
	InitDir    = "etc/init.d"
	InitPrefix = "S99"
)

// CommitUnit is overlayupd-commit.service.
//
//go:embed overlayupd-commit.service
var CommitUnit []byte

// CommitInit is /etc/init.d/overlayupd-commit.
//
//go:embed overlayupd-commit.init
var CommitInit []byte
