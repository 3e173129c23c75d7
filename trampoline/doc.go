// Package trampoline owns the slot protocol of a root store: which root boots,
// and every transition (init, stage, trial start, commit, rollback, failure,
// gc) as renames in the store's slot directory, plus the store's layout and
// marker, the Backend and Format seams, the store lock and status data. It
// does not mount, copy or validate entries: the formats (squash/, and
// snapshot/ for btrfs) implement Backend and Format and import this package;
// the PID-1 path (boot/) imports them all. This package imports only
// internal/atomicfile, internal/mounts and internal/record (the records the
// PID-1 path writes and reads, without encoding/json).
//
// # Terms
//
//	store          the filesystem that holds the roots: the partition the kernel
//	               mounts as "/" in store mode, seen as /overlay/store after boot.
//	               Its top directory is Store.Top; the marker there names its format.
//	slot directory Top/roots (Store.SlotDir): the entries, the reason files, the lock.
//	entry          one root in the slot directory: an image file or a subvolume.
//	               Its name is its role; nothing else is state.
//	format         what an entry is (Format: "squashfs", "btrfs"): how to mount
//	               one, how to delete one, which one is booted.
//	committed root root, or root.next while a commit is in flight: what boots
//	               when no trial does.
//	trial          a root booted without being committed: root.try-N before its
//	               first boot (staged), root.trying-K during (trying).
//	staging        a .stage-* entry being made (copied, unpacked, snapshotted); it
//	               becomes staged by one rename. Not to be confused with staged.
//	tries          on a staged entry (try-N): boots allowed without a commit.
//	               On a trying entry (trying-K): boots left AFTER the current one.
//	               In status, tries_left: trial boots left, the next one included.
//	commit point   the rename of the trial to root.next: before it, the old root
//	               is committed; after it, the new one.
//	trampoline     this binary as PID 1 (TrampolinePath, /sbin/init-overlay on
//	               the store): it picks the entry and execs the real init
//	               (/sbin/init inside the entry).
//
// # Names
//
// The names are the whole state; an entry is an image file (suffix ".sqsh")
// or a btrfs subvolume (no suffix), the protocol does not care (DirBackend):
//
//	root            the committed root: boots by default
//	root.try-N      staged by apply, N (1..99) boots allowed without a commit
//	root.trying-K   a trial in progress; K more boots allowed after the current one
//	root.next       commit in flight: the commit point has passed, it becomes root
//	root.prev       the previously committed root, for rollback
//	root.failed     the last trial that never committed (reason in failed.reason)
//	rm-*            being deleted; gc finishes
//	.stage-*        an entry being made by init, apply or update; gc removes leftovers
//
//	layer.trial     a trial's writable layer (a directory, not an entry: layer.go)
//	layer.fold      a committed trial's layer, folded into the persistent one at boot
//	layer.failed    the last failed trial's layer, kept for diagnosis
//
// Anything else (.lock, failed.reason, boot.reason, layer.base,
// shadow.report, atomicfile temp files) is not an entry. Counts are canonical decimals, so a name has one reading.
// "Committed root" means root, or root.next while a commit is in flight.
//
// # Decisions are data
//
// Decide (boot), Fallback (a mount failed) and Next (commands) are pure
// functions of a State; they return Transitions, lists of Ops (rename with
// RENAME_NOREPLACE, RENAME_EXCHANGE, remove), and Notes (reason files). Execute
// runs the ops one by one, each followed by an fsync of the directory, so the
// disk sees them in order. Every state change is one op.
//
// # Orderings and crashes
//
// A crash can stop a transition after any op. The conformance package proves,
// for every reachable state, every event and every crash point, on every
// backend, that the store still holds a committed root (invariant 1), that no
// image boots as a trial more often than asked (invariant 2), that a commit is
// all or nothing (3), and that a finished command is durable (6).
//
//   - Trial start / another try (boot): ONE rename, try-N -> trying-(N-1) or
//     trying-K -> trying-(K-1), fsynced BEFORE the image is mounted. A crash
//     during the trial can only find fewer tries, never more; trying-0 at boot
//     means the last try was used: it becomes root.failed and root boots.
//   - Failure: old root.failed -> rm-*; trial -> root.failed; delete rm-*. A
//     crash after the first step leaves the trial, which the next boot fails.
//   - Commit: trying-K -> root.next (the commit point); root.prev -> rm-*;
//     root -> root.prev; root.next -> root; delete rm-*. Before the first step
//     nothing changed; after it, Decide and every command roll the commit
//     forward (Settle), so the next boot is the new root, committed. No
//     RENAME_EXCHANGE here: an exchange leaves the same names as before it, so
//     a crash right before and right after it could not be told apart; with
//     renames every intermediate state has its own name set. Between the
//     third and fourth step there is no "root", and root.next is the committed
//     root (Decide and ReadOnlyPlan boot it).
//   - Stage: .stage-X -> root.try-N (RENAME_NOREPLACE). Replacing a staged
//     root.try-M: RENAME_EXCHANGE(.stage-X, try) swaps the images in one step;
//     the count rename goes before the swap when lowering it and after when
//     raising it, so a crash never grants more tries; the old image, now
//     .stage-X, is deleted last. A trial in progress is superseded at the next
//     boot (it becomes root.failed).
//   - Rollback: with a trial (trying and/or staged): trying -> root.failed
//     first, then staged -> rm-*, so every crash point boots what the state
//     before or after would. Without: RENAME_EXCHANGE(root, root.prev), one
//     step, and there is always a root.
//   - Init: .stage-X -> root (RENAME_NOREPLACE), only when there is no
//     committed root. A crash before it leaves no committed root, which is
//     safe only because store init writes the marker after it: without a
//     marker the directory is not a store and never boots as one.
//   - Trial layer: every way a trial ends without a commit (failure,
//     supersede, rollback, did not mount) renames layer.trial to
//     layer.failed right after the trial's own rename; a layer.trial that
//     no trial owns (a crash between the two) is failed first by Decide
//     and every command (Settle). Commit renames layer.trial to layer.fold
//     right after the commit point, while root.next still marks the commit
//     in flight, so the roll-forward does it too. The boot folds
//     layer.fold into the persistent layer before it mounts anything, then
//     FoldDone (layer.fold -> rm-*, delete). The conformance suite checks
//     that a trial never starts on another's layer, that a layer reaches
//     the persistent one only when its trial was committed, and always then.
//   - GC: root.failed -> rm-*, then delete rm-* and .stage-*. Hold the store
//     lock from making a .stage-* entry to staging it, so gc never removes a
//     live one.
//
// Reasons (failed.reason, boot.reason: JSON {time, entry, why}) are written
// with atomicfile after the ops: diagnostics only, never state.
package trampoline
