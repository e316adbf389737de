// Package alloc hands out a board's ZIC pool: CPUs, main RAM, a loader slot
// and optionally an ivshmem-net link per ZIC, keyed by the full container
// name.
//
// State is the allocation table in memory: pure bookkeeping, no I/O.
// Allocator keeps the table in one JSON file shared by every runphi process
// on the node. Each operation locks a separate lock file (<state>.lock) with
// flock, reads the table, changes it and replaces the file by writing a
// temporary file, syncing it and renaming it over the old one, so a reader
// never sees half a table and a crash leaves either the old or the new one.
//
// A request that cannot be met fails with an error saying why (e.g. "no
// free CPU: pool 1-15, all taken", "64 MiB requested, largest free block
// 48 MiB") and changes nothing. Release frees exactly what a grant holds;
// Reconcile drops the grants of cells that no longer exist.
package alloc

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/runphi-go/runphi/cellgen/board"
	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// Errors. Shortages and bad requests are wrapped so errors.Is tells them
// apart; the message itself says what was asked and what was left.
var (
	ErrExists     = errors.New("already has a grant")
	ErrBadRequest = errors.New("invalid allocation request")
	ErrNoCPU      = errors.New("no free CPU")
	ErrNoMemory   = errors.New("not enough free memory")
	ErrNoLoader   = errors.New("no free loader slot")
	ErrNoNet      = errors.New("no free ivshmem-net slot")
	ErrCorrupt    = errors.New("corrupt allocator state")
)

// MaxNameLen bounds grant names (container ids are 64 bytes; names are
// never truncated).
const MaxNameLen = 1024

// shortage is an error whose message is exactly msg and which wraps kind.
type shortage struct {
	kind error
	msg  string
}

func (e *shortage) Error() string { return e.msg }
func (e *shortage) Unwrap() error { return e.kind }

func short(kind error, format string, args ...any) error {
	return &shortage{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Request is what one ZIC asks for.
type Request struct {
	// CPUs, when not empty, are the exact CPUs wanted (an OCI cpuset);
	// otherwise CPUCount CPUs are taken, lowest first.
	CPUs     cpuset.Set
	CPUCount int
	// Memory is the size of main RAM in bytes, rounded up to the pool's
	// alignment.
	Memory uint64
	// Net asks for an ivshmem-net link to the root cell.
	Net bool
}

// Grant is what one ZIC holds. Addresses are physical.
type Grant struct {
	Name   string
	CPUs   cpuset.Set
	RAM    board.Range
	Loader board.Range
	// Net is the ivshmem-net link, nil without one.
	Net *board.NetSlot
	// Reserved is true between Reserve and Commit: the cell may not exist
	// yet.
	Reserved bool
}

// State is an allocation table: the grants by name.
type State struct {
	Grants map[string]Grant
}

// NewState returns an empty table.
func NewState() *State { return &State{Grants: map[string]Grant{}} }

// Allocate grants req to name from pool, or fails without changing s.
func (s *State) Allocate(pool *board.Pool, name string, req Request) (Grant, error) {
	if err := checkName(name); err != nil {
		return Grant{}, err
	}
	if _, ok := s.Grants[name]; ok {
		return Grant{}, fmt.Errorf("%q %w", name, ErrExists)
	}
	cpus, err := s.pickCPUs(pool, req)
	if err != nil {
		return Grant{}, err
	}
	ram, err := s.pickRAM(pool, req.Memory)
	if err != nil {
		return Grant{}, err
	}
	loader, err := s.pickLoader(pool)
	if err != nil {
		return Grant{}, err
	}
	g := Grant{Name: name, CPUs: cpus, RAM: ram, Loader: loader}
	if req.Net {
		slot, err := s.pickNet(pool)
		if err != nil {
			return Grant{}, err
		}
		g.Net = &slot
	}
	if s.Grants == nil {
		s.Grants = map[string]Grant{}
	}
	s.Grants[name] = g
	return g, nil
}

// Release drops name's grant and reports whether there was one.
func (s *State) Release(name string) bool {
	_, ok := s.Grants[name]
	delete(s.Grants, name)
	return ok
}

func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrBadRequest)
	case len(name) > MaxNameLen || !utf8.ValidString(name):
		return fmt.Errorf("%w: name of %d bytes is not valid UTF-8 of at most %d bytes", ErrBadRequest, len(name), MaxNameLen)
	}
	return nil
}

// sorted returns the grants ordered by name, for stable messages.
func (s *State) sorted() []Grant {
	out := make([]Grant, 0, len(s.Grants))
	for _, g := range s.Grants {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b Grant) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func (s *State) takenCPUs() cpuset.Set {
	var taken cpuset.Set
	for _, g := range s.Grants {
		taken = taken.Union(g.CPUs)
	}
	return taken
}

func (s *State) pickCPUs(pool *board.Pool, req Request) (cpuset.Set, error) {
	taken := s.takenCPUs()
	free := pool.CPUs.Minus(taken)
	if !req.CPUs.IsEmpty() {
		if req.CPUCount != 0 && req.CPUCount != req.CPUs.Len() {
			return cpuset.Set{}, fmt.Errorf("%w: CPU count %d does not match CPUs %s", ErrBadRequest, req.CPUCount, req.CPUs)
		}
		if out := req.CPUs.Minus(pool.CPUs); !out.IsEmpty() {
			return cpuset.Set{}, fmt.Errorf("%w: CPUs %s are not in pool %s", ErrBadRequest, out, pool.CPUs)
		}
		if busy := req.CPUs.Intersect(taken); !busy.IsEmpty() {
			for _, g := range s.sorted() {
				if both := busy.Intersect(g.CPUs); !both.IsEmpty() {
					return cpuset.Set{}, short(ErrNoCPU, "CPUs %s requested, CPU %s granted to %q", req.CPUs, both, g.Name)
				}
			}
		}
		return req.CPUs, nil
	}
	n := req.CPUCount
	switch {
	case n <= 0:
		return cpuset.Set{}, fmt.Errorf("%w: %d CPUs", ErrBadRequest, n)
	case free.IsEmpty():
		return cpuset.Set{}, short(ErrNoCPU, "no free CPU: pool %s, all taken", pool.CPUs)
	case free.Len() < n:
		return cpuset.Set{}, short(ErrNoCPU, "%d CPUs requested, %d free (%s) in pool %s", n, free.Len(), free, pool.CPUs)
	}
	return cpuset.Of(free.CPUs()[:n]...), nil
}

// FreeMemory returns the free blocks of the pool's main RAM, aligned and
// sorted by address.
func (s *State) FreeMemory(pool *board.Pool) []board.Range {
	taken := make([]board.Range, 0, len(s.Grants))
	for _, g := range s.Grants {
		taken = append(taken, g.RAM)
	}
	slices.SortFunc(taken, func(a, b board.Range) int { return cmp.Compare(a.Start, b.Start) })
	a := pool.Alignment
	var free []board.Range
	for _, r := range pool.Memory {
		cur := r.Start
		emit := func(end uint64) {
			start := alignUp(cur, a)
			end = end &^ (a - 1)
			if end > start {
				free = append(free, board.Range{Start: start, Size: end - start})
			}
		}
		for _, t := range taken {
			if !t.Overlaps(r) {
				continue
			}
			if t.Start > cur {
				emit(t.Start)
			}
			cur = max(cur, t.End())
		}
		if cur < r.End() {
			emit(r.End())
		}
	}
	slices.SortFunc(free, func(x, y board.Range) int { return cmp.Compare(x.Start, y.Start) })
	return free
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

// pickRAM places size bytes (rounded up to the alignment) in the smallest
// free block that holds them, the lowest of equals, at its start.
func (s *State) pickRAM(pool *board.Pool, size uint64) (board.Range, error) {
	if size == 0 || size > 1<<52 {
		return board.Range{}, fmt.Errorf("%w: memory size %d", ErrBadRequest, size)
	}
	need := alignUp(size, pool.Alignment)
	var best, largest board.Range
	for _, f := range s.FreeMemory(pool) {
		if f.Size > largest.Size {
			largest = f
		}
		if f.Size >= need && (best.Size == 0 || f.Size < best.Size) {
			best = f
		}
	}
	if best.Size == 0 {
		asked := FormatSize(size) + " requested"
		if need != size {
			asked += fmt.Sprintf(" (rounded up to %s)", FormatSize(need))
		}
		if largest.Size == 0 {
			return board.Range{}, short(ErrNoMemory, "%s, no free memory left", asked)
		}
		return board.Range{}, short(ErrNoMemory, "%s, largest free block %s", asked, FormatSize(largest.Size))
	}
	return board.Range{Start: best.Start, Size: need}, nil
}

func (s *State) pickLoader(pool *board.Pool) (board.Range, error) {
	taken := make([]board.Range, 0, len(s.Grants))
	for _, g := range s.Grants {
		taken = append(taken, g.Loader)
	}
	n := pool.Loader.Slots()
	for i := range n {
		slot := pool.Loader.Slot(i)
		if !slices.ContainsFunc(taken, slot.Overlaps) {
			return slot, nil
		}
	}
	return board.Range{}, short(ErrNoLoader, "no free loader slot: %d of %d in use", n, n)
}

func (s *State) pickNet(pool *board.Pool) (board.NetSlot, error) {
	used := map[uint16]bool{}
	for _, g := range s.Grants {
		if g.Net != nil {
			used[g.Net.BDF] = true
		}
	}
	for _, slot := range pool.Net {
		if !used[slot.BDF] {
			return slot, nil
		}
	}
	if len(pool.Net) == 0 {
		return board.NetSlot{}, short(ErrNoNet, "no free ivshmem-net slot: the %s pool has none", pool.Board)
	}
	return board.NetSlot{}, short(ErrNoNet, "no free ivshmem-net slot: %d of %d in use", len(pool.Net), len(pool.Net))
}

// check reports the first conflict between grants, which only a damaged
// or hand-edited state file can contain.
func (s *State) check() error {
	gs := s.sorted()
	for i, g := range gs {
		switch {
		case g.CPUs.IsEmpty():
			return fmt.Errorf("%w: grant %q: no CPU", ErrCorrupt, g.Name)
		case g.RAM.Size == 0 || g.RAM.End() < g.RAM.Start:
			return fmt.Errorf("%w: grant %q: bad RAM %v", ErrCorrupt, g.Name, g.RAM)
		case g.Loader.Size == 0 || g.Loader.End() < g.Loader.Start:
			return fmt.Errorf("%w: grant %q: bad loader slot %v", ErrCorrupt, g.Name, g.Loader)
		}
		for _, o := range gs[:i] {
			var what string
			switch {
			case !g.CPUs.Intersect(o.CPUs).IsEmpty():
				what = "CPUs " + g.CPUs.Intersect(o.CPUs).String()
			case g.RAM.Overlaps(o.RAM) || g.RAM.Overlaps(o.Loader) || g.Loader.Overlaps(o.RAM) || g.Loader.Overlaps(o.Loader):
				what = "memory"
			case g.Net != nil && o.Net != nil && g.Net.BDF == o.Net.BDF:
				what = "ivshmem-net " + cell.FormatBDF(g.Net.BDF)
			default:
				continue
			}
			return fmt.Errorf("%w: %s granted to both %q and %q", ErrCorrupt, what, o.Name, g.Name)
		}
	}
	return nil
}

// FormatSize writes a byte count in the largest binary unit that divides
// it: "64 MiB", "1 GiB", "4 KiB", "1000 B".
func FormatSize(n uint64) string {
	units := []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}}
	for _, u := range units {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}
