package alloc

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/runphi-go/runphi/cellgen/board"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

const mib = 1 << 20

// testPool has a 48 MiB and a 16 MiB block, four loader slots and two
// ivshmem-net slots.
func testPool() *board.Pool {
	return &board.Pool{
		Board:     "test",
		CPUs:      cpuset.Range(1, 15),
		Alignment: 2 * mib,
		Memory:    []board.Range{{Start: 0x70000000, Size: 48 * mib}, {Start: 0x78000000, Size: 16 * mib}},
		Loader:    board.LoaderArea{Range: board.Range{Start: 0x7f600000, Size: 0x40000}, SlotSize: 0x10000},
		Net: []board.NetSlot{
			{BDF: 0x08, Window: 0x7fb00000, VPCIIrqBase: 116, INTx: 149, RootINTx: 129},
			{BDF: 0x10, Window: 0x7f700000, VPCIIrqBase: 116, INTx: 150, RootINTx: 130},
		},
	}
}

func req(cpus int, mem uint64, net bool) Request {
	return Request{CPUCount: cpus, Memory: mem, Net: net}
}

func TestAllocate(t *testing.T) {
	pool := testPool()
	slot0, slot1 := pool.Net[0], pool.Net[1]
	tests := []struct {
		name    string
		before  []Request // granted first, to "z0", "z1", ...
		req     Request
		want    Grant // Name is always "new"
		wantErr error
		msg     string // exact error message
	}{
		{name: "best fit picks the smaller block",
			req:  req(1, 8*mib, false),
			want: Grant{CPUs: cpuset.Of(1), RAM: board.Range{Start: 0x78000000, Size: 8 * mib}, Loader: board.Range{Start: 0x7f600000, Size: 0x10000}}},
		{name: "round up to the alignment",
			req:  req(2, 3*mib+1, false),
			want: Grant{CPUs: cpuset.Of(1, 2), RAM: board.Range{Start: 0x78000000, Size: 4 * mib}, Loader: board.Range{Start: 0x7f600000, Size: 0x10000}}},
		{name: "too big for the small block",
			req:  req(1, 20*mib, true),
			want: Grant{CPUs: cpuset.Of(1), RAM: board.Range{Start: 0x70000000, Size: 20 * mib}, Loader: board.Range{Start: 0x7f600000, Size: 0x10000}, Net: &slot0}},
		{name: "fills after earlier grants",
			before: []Request{req(1, 16*mib, true), req(2, 10*mib, false)},
			req:    req(1, 2*mib, true),
			want: Grant{CPUs: cpuset.Of(4), RAM: board.Range{Start: 0x70a00000, Size: 2 * mib},
				Loader: board.Range{Start: 0x7f620000, Size: 0x10000}, Net: &slot1}},
		{name: "explicit CPUs",
			before: []Request{req(3, 2*mib, false)},
			req:    Request{CPUs: cpuset.Of(4, 9), Memory: 2 * mib},
			want:   Grant{CPUs: cpuset.Of(4, 9), RAM: board.Range{Start: 0x78200000, Size: 2 * mib}, Loader: board.Range{Start: 0x7f610000, Size: 0x10000}}},
		{name: "explicit CPU taken",
			before:  []Request{req(3, 2*mib, false)},
			req:     Request{CPUs: cpuset.Of(3, 4), Memory: 2 * mib},
			wantErr: ErrNoCPU, msg: `CPUs 3-4 requested, CPU 3 granted to "z0"`},
		{name: "explicit CPU outside the pool",
			req:     Request{CPUs: cpuset.Of(0, 1), Memory: 2 * mib},
			wantErr: ErrBadRequest, msg: "invalid allocation request: CPUs 0 are not in pool 1-15"},
		{name: "explicit CPUs and a different count",
			req:     Request{CPUs: cpuset.Of(1, 2), CPUCount: 1, Memory: 2 * mib},
			wantErr: ErrBadRequest},
		{name: "all CPUs taken",
			before:  []Request{req(15, 2*mib, false)},
			req:     req(1, 2*mib, false),
			wantErr: ErrNoCPU, msg: "no free CPU: pool 1-15, all taken"},
		{name: "not enough CPUs",
			before:  []Request{req(13, 2*mib, false)},
			req:     req(3, 2*mib, false),
			wantErr: ErrNoCPU, msg: "3 CPUs requested, 2 free (14-15) in pool 1-15"},
		{name: "no block big enough",
			req:     req(1, 64*mib, false),
			wantErr: ErrNoMemory, msg: "64 MiB requested, largest free block 48 MiB"},
		{name: "rounded request too big",
			req:     req(1, 48*mib+1, false),
			wantErr: ErrNoMemory, msg: "50331649 B requested (rounded up to 50 MiB), largest free block 48 MiB"},
		{name: "memory all taken",
			before:  []Request{req(1, 48*mib, false), req(1, 16*mib, false)},
			req:     req(1, 2*mib, false),
			wantErr: ErrNoMemory, msg: "2 MiB requested, no free memory left"},
		{name: "no net slot",
			before:  []Request{req(1, 2*mib, true), req(1, 2*mib, true)},
			req:     req(1, 2*mib, true),
			wantErr: ErrNoNet, msg: "no free ivshmem-net slot: 2 of 2 in use"},
		{name: "no loader slot",
			before:  []Request{req(1, 2*mib, false), req(1, 2*mib, false), req(1, 2*mib, false), req(1, 2*mib, false)},
			req:     req(1, 2*mib, false),
			wantErr: ErrNoLoader, msg: "no free loader slot: 4 of 4 in use"},
		{name: "zero memory", req: req(1, 0, false), wantErr: ErrBadRequest},
		{name: "zero CPUs", req: req(0, 2*mib, false), wantErr: ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState()
			for i, r := range tt.before {
				if _, err := s.Allocate(pool, "z"+string(rune('0'+i)), r); err != nil {
					t.Fatalf("setup %d: %v", i, err)
				}
			}
			before := clone(s)
			g, err := s.Allocate(pool, "new", tt.req)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				if tt.msg != "" && err.Error() != tt.msg {
					t.Errorf("message %q, want %q", err.Error(), tt.msg)
				}
				if !reflect.DeepEqual(s, before) {
					t.Error("a failed request changed the table")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Name = "new"
			if !reflect.DeepEqual(g, tt.want) {
				t.Errorf("grant %+v\nwant  %+v", g, tt.want)
			}
			if !reflect.DeepEqual(s.Grants["new"], g) {
				t.Error("grant not recorded")
			}
			if err := s.check(); err != nil {
				t.Error(err)
			}
		})
	}
}

func clone(s *State) *State {
	c := NewState()
	for k, v := range s.Grants {
		c.Grants[k] = v
	}
	return c
}

func TestAllocateSameNameTwice(t *testing.T) {
	s := NewState()
	if _, err := s.Allocate(testPool(), "a", req(1, 2*mib, false)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Allocate(testPool(), "a", req(1, 2*mib, false)); !errors.Is(err, ErrExists) {
		t.Fatalf("second grant for the same name: %v", err)
	}
	for _, name := range []string{"", strings.Repeat("x", MaxNameLen+1), "\xff"} {
		if _, err := s.Allocate(testPool(), name, req(1, 2*mib, false)); !errors.Is(err, ErrBadRequest) {
			t.Errorf("name %q: %v", name, err)
		}
	}
}

// Releasing a grant gives back exactly its resources: the next identical
// request gets the same grant.
func TestReleaseFreesExactly(t *testing.T) {
	pool := testPool()
	s := NewState()
	var gs []Grant
	for i, r := range []Request{req(2, 6*mib, true), req(1, 10*mib, true), req(3, 4*mib, false)} {
		g, err := s.Allocate(pool, string(rune('a'+i)), r)
		if err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	freeBefore := s.FreeMemory(pool)
	if !s.Release("b") || s.Release("b") {
		t.Fatal("Release should report the grant once")
	}
	g, err := s.Allocate(pool, "b", req(1, 10*mib, true))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, gs[1]) {
		t.Errorf("after release: %+v, before: %+v", g, gs[1])
	}
	if !reflect.DeepEqual(s.FreeMemory(pool), freeBefore) {
		t.Error("free memory differs")
	}
}

func TestFreeMemoryMerges(t *testing.T) {
	pool := testPool()
	s := NewState()
	for _, n := range []string{"a", "b", "c"} {
		if _, err := s.Allocate(pool, n, req(1, 16*mib, false)); err != nil {
			t.Fatal(err)
		}
	}
	// a took the 16 MiB block, b and c the start of the 48 MiB one.
	s.Release("b")
	want := []board.Range{{Start: 0x70000000, Size: 16 * mib}, {Start: 0x72000000, Size: 16 * mib}}
	if got := s.FreeMemory(pool); !reflect.DeepEqual(got, want) {
		t.Fatalf("free %v, want %v", got, want)
	}
	s.Release("c")
	want = []board.Range{{Start: 0x70000000, Size: 48 * mib}}
	if got := s.FreeMemory(pool); !reflect.DeepEqual(got, want) {
		t.Fatalf("free %v, want %v", got, want)
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 1000: "1000 B", 4096: "4 KiB", 64 * mib: "64 MiB", 48*mib + 4096: "49156 KiB", 1 << 30: "1 GiB",
	} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
