package trampoline

import (
	"fmt"
	"strings"
)

// builder accumulates a transition while simulating it on a State, so that every
// op it emits is valid (sources exist, targets do not) and rm-* names are unique.
type builder struct {
	st      State
	ops     []Op
	removes []string
	notes   []Note
	err     error
	budget  int // the committed root's boot budget (Decide only; 0: off)
}

func newBuilder(st State) *builder { return &builder{st: st} }

func (b *builder) do(op Op) {
	if b.err != nil {
		return
	}
	next, err := b.st.Apply(op)
	if err != nil {
		b.err = fmt.Errorf("plan: %w", err)
		return
	}
	b.st = next
	b.ops = append(b.ops, op)
}

func (b *builder) rename(from, to string)        { b.do(Op{Kind: OpRename, From: from, To: to}) }
func (b *builder) exchange(x, y string)          { b.do(Op{Kind: OpExchange, From: x, To: y}) }
func (b *builder) name(r Role, tries int) string { return b.st.name(r, tries) }

// discard takes name out of the protocol by renaming it to rm-*, and deletes it
// at the end of the transition. Why (containerd's habit): the rename is atomic
// and cheap; the delete (a big unlink, a subvolume delete) is not, and a crash
// during it must leave a name that no role reads and gc removes.
func (b *builder) discard(name string) {
	rm := b.freeName(RemovePrefix + name)
	b.rename(name, rm)
	b.removes = append(b.removes, rm)
}

func (b *builder) freeName(want string) string {
	n := want
	for i := 2; b.st.Has(n); i++ {
		n = fmt.Sprintf("%s%d-%s", RemovePrefix, i, strings.TrimPrefix(want, RemovePrefix))
	}
	return n
}

// fail moves a trial entry to root.failed, replacing an older failed entry.
// Order: the old failed entry goes first (rename to rm-*); a crash right after
// leaves the trial where it was, and the next boot or command fails it again.
// Renaming the trial is the one step that ends it.
func (b *builder) fail(e Entry, why string) {
	failed := b.name(RoleFailed, 0)
	if b.st.Has(failed) {
		b.discard(failed)
	}
	b.rename(e.Name, failed)
	b.notes = append(b.notes, Note{File: FailedReasonFile, Entry: e.Name, Why: why})
	b.failLayer()
}

// failLayer ends the trial's writable layer with the trial (layer.go): it
// becomes layer.failed, replacing an older one. Why right after the
// trial's own rename: a crash between the two leaves layer.trial with no
// trial, which settleLayers fails the same way; the writes never reach
// the persistent layer.
func (b *builder) failLayer() {
	if !b.st.Has(LayerTrial) {
		return
	}
	if b.st.Has(LayerFailed) {
		b.discard(LayerFailed)
	}
	b.rename(LayerTrial, LayerFailed)
}

// settleLayers fails a trial layer that no trial owns any more: only a
// crash between a trial's end and its layer's can leave one (a commit in
// flight owns it: finishCommit runs first).
func (b *builder) settleLayers() {
	if !b.st.Has(LayerTrial) {
		return
	}
	_, trying := b.st.Find(RoleTrying)
	_, next := b.st.Find(RoleCommitting)
	if !trying && !next {
		b.failLayer()
	}
}

// finishCommit rolls an interrupted commit forward. Renaming the trial to
// root.next is the commit point; every step after it only moves names, and
// each intermediate state is recognisable by root.next being present:
//
//	{root, root.next, root.prev}  -> discard root.prev
//	{root, root.next}             -> root -> root.prev
//	{root.prev, root.next}        -> root.next -> root   (root.next is the committed root)
//	{root, root.prev}             done
//
// Why not RENAME_EXCHANGE(root.next, root): after the swap the names are the
// same as before it, so a crash right after it could not be told apart from a
// crash right before it. With plain renames no two intermediate states share a
// name set. The price is one instant without the name "root"; root.next is the
// committed root then, and Decide boots it (invariant 1).
func (b *builder) finishCommit() bool {
	next, ok := b.st.Find(RoleCommitting)
	if !ok {
		return false
	}
	// The trial's layer is committed with it: the next boot folds it into
	// the persistent layer (layer.go). First, while root.next still says
	// a commit is in flight: a crash after the commit point and before
	// this rename is rolled forward here, never taken for a failure.
	if b.st.Has(LayerTrial) && !b.st.Has(LayerFold) {
		b.rename(LayerTrial, LayerFold)
	}
	root, prev := b.name(RoleCommitted, 0), b.name(RolePrevious, 0)
	if b.st.Has(root) {
		if b.st.Has(prev) {
			b.discard(prev)
		}
		b.rename(root, prev)
	}
	b.rename(next.Name, root)
	// The new committed root starts its own boot budget. A crash before
	// this rename leaves it the old root's count: a healthy system's is 0
	// (it was marked good), and at worst the new root has fewer boots.
	b.resetBootCount()
	return true
}

// transition appends the deletions of discarded entries, last.
func (b *builder) transition() (Transition, error) {
	for _, rm := range b.removes {
		b.do(Op{Kind: OpRemove, From: rm})
	}
	b.removes = nil
	return Transition{Ops: b.ops, Notes: b.notes}, b.err
}

// Settle is the transition that finishes an interrupted commit and fails a
// trial layer left without its trial, or no ops. Decide and Next both
// start with it; a command may run it on its own.
func Settle(st State) Transition {
	b := newBuilder(st)
	b.finishCommit()
	b.settleLayers()
	t, _ := b.transition()
	return t
}
