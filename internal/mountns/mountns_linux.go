// Package mountns owns private mount namespaces for work that must mount
// something without the host ever seeing it: a check mount of an image, and
// later the chroot of an update.
package mountns

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// InPrivate runs fn on a dedicated OS thread that has its own mount
// namespace in which every mount is private, so nothing fn mounts is ever seen
// by the host or any other thread of this process.
//
// Why a locked thread that is never unlocked: unshare(CLONE_NEWNS) applies to
// the calling thread only. While locked, the goroutine is the only one that runs
// on the thread; when it returns still locked, the Go runtime terminates the
// thread instead of reusing it, and the namespace (with anything still mounted
// in it, and so any autoclear loop device) is released with it. fn must do its
// work on its own goroutine: goroutines it starts run in the host namespace.
func InPrivate(fn func() error) error {
	errc := make(chan error, 1)
	go nsWorker(fn, errc)
	return <-errc
}

func nsWorker(fn func() error, errc chan<- error) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// The main thread: the runtime never ends it, so a namespace made here
		// would outlive the call, and /proc/self (which names the main thread)
		// would show it to the whole process. Hold this thread so the worker
		// started now lands on another one, then give it back.
		inner := make(chan error, 1)
		go nsWorker(fn, inner)
		errc <- <-inner
		runtime.UnlockOSThread()
		return
	}
	defer func() {
		if r := recover(); r != nil {
			errc <- fmt.Errorf("panic in private mount namespace: %v", r)
		}
	}()
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		errc <- fmt.Errorf("unshare mount namespace: %w", err)
		return
	}
	// Why: a new namespace inherits shared propagation from the host; without
	// this, a mount made here would propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		errc <- fmt.Errorf("make mounts private: %w", err)
		return
	}
	errc <- fn()
}
