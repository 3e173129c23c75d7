// Package trampoline owns the slot protocol of a root store: which root boots,
// and every transition (stage, trial start, commit, rollback, failure, gc) as
// renames in the store's slot directory, plus the store lock and status data.
// It does not mount, copy or validate images (squash/, overlay/ do).
//
// # Names
//
// The names are the whole state; an entry is an image file (suffix ".sqsh",
// FileBackend) or a btrfs subvolume (no suffix), the protocol does not care:
//
//	root            the committed root: boots by default
//	root.try-N      staged by apply, N (1..99) boots allowed without a commit
//	root.trying-K   a trial in progress; K more boots allowed after the current one
//	root.next       commit in flight: the commit point has passed, it becomes root
//	root.prev       the previously committed root, for rollback
//	root.failed     the last trial that never committed (reason in failed.reason)
//	rm-*            being deleted; gc finishes
//	.stage-*        an image being written by apply; gc removes leftovers
//
// Anything else (.lock, failed.reason, boot.reason, atomicfile temp files) is
// not an entry. Counts are canonical decimals, so a name has one reading.
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
//   - GC: root.failed -> rm-*, then delete rm-* and .stage-*. Hold the store
//     lock from squash.Stage to Stage so gc never removes a live .stage-*.
//
// Reasons (failed.reason, boot.reason: JSON {time, entry, why}) are written
// with atomicfile after the ops: diagnostics only, never state.
package trampoline
