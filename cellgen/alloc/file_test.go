package alloc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/cellgen/board"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// Child processes: the test binary re-executed with childEnv set runs one
// allocator operation instead of the tests.
const (
	childEnv   = "ALLOC_TEST_CHILD"
	childState = "ALLOC_TEST_STATE"
	childName  = "ALLOC_TEST_NAME"
)

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "allocate":
		os.Exit(childAllocate())
	case "crash":
		os.Exit(childCrash())
	default:
		fmt.Fprintln(os.Stderr, "unknown child mode")
		os.Exit(2)
	}
}

// concurrentPool has memory for exactly 20 ZICs of 2 MiB and 8 net links;
// CPUs and loader slots are plenty.
func concurrentPool() *board.Pool {
	p := &board.Pool{
		Board:     "concurrent",
		CPUs:      cpuset.Range(1, 70),
		Alignment: 2 * mib,
		Memory:    []board.Range{{Start: 0x40000000, Size: 20 * 2 * mib}},
		Loader:    board.LoaderArea{Range: board.Range{Start: 0x50000000, Size: 80 * 0x10000}, SlotSize: 0x10000},
	}
	for i := range 8 {
		bdf := uint16(i+1) << 3
		p.Net = append(p.Net, board.NetSlot{BDF: bdf, Window: 0x60000000 + uint64(i)*board.NetWindowSize,
			VPCIIrqBase: 120, INTx: board.INTx(120, bdf), RootINTx: board.INTx(96, bdf)})
	}
	return p
}

type childResult struct {
	Name  string
	Err   string
	Grant *Grant
}

// childAllocate waits until its stdin closes, so all children start
// together, then allocates once and prints the result as JSON.
func childAllocate() int {
	io.Copy(io.Discard, os.Stdin)
	name := os.Getenv(childName)
	i, _ := strconv.Atoi(strings.TrimPrefix(name, "zic-"))
	g, err := Open(os.Getenv(childState), concurrentPool()).Allocate(name, req(1, 2*mib, i%2 == 0))
	res := childResult{Name: name}
	if err != nil {
		res.Err = err.Error()
	} else {
		res.Grant = &g
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 1
	}
	return 0
}

// childCrash dies in the middle of writing the state: the temporary file
// holds half a table when the process exits.
func childCrash() int {
	a := Open(os.Getenv(childState), concurrentPool())
	a.beforeRename = func(tmp string) error {
		data, _ := os.ReadFile(tmp)
		os.WriteFile(tmp, data[:len(data)/2], 0o600)
		os.Exit(3)
		return nil
	}
	a.Allocate(os.Getenv(childName), req(1, 2*mib, true))
	return 0
}

func child(t *testing.T, mode, state, name string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childState+"="+state, childName+"="+name)
	cmd.Stderr = os.Stderr
	return cmd
}

// 64 processes allocate at once from a pool with room for 20: exactly 20
// succeed, and no CPU, memory, loader slot or link is granted twice.
func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 64 processes")
	}
	const n = 64
	state := filepath.Join(t.TempDir(), "state.json")
	type proc struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   bytes.Buffer
	}
	procs := make([]*proc, n)
	for i := range procs {
		p := &proc{cmd: child(t, "allocate", state, fmt.Sprintf("zic-%d", i))}
		p.cmd.Stdout = &p.out
		var err error
		if p.stdin, err = p.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = p
	}
	for _, p := range procs {
		p.stdin.Close() // go
	}
	var granted []Grant
	for _, p := range procs {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
		var res childResult
		if err := json.Unmarshal(p.out.Bytes(), &res); err != nil {
			t.Fatalf("child output %q: %v", p.out.String(), err)
		}
		switch {
		case res.Grant != nil:
			granted = append(granted, *res.Grant)
		case !strings.Contains(res.Err, "no free memory left") && !strings.Contains(res.Err, "no free ivshmem-net slot: 8 of 8 in use"):
			t.Errorf("%s: unexpected error %q", res.Name, res.Err)
		}
	}
	capacity := int(concurrentPool().Memory[0].Size / (2 * mib))
	if len(granted) != capacity {
		t.Errorf("%d grants, capacity %d", len(granted), capacity)
	}
	s := &State{Grants: map[string]Grant{}}
	nets := 0
	for _, g := range granted {
		s.Grants[g.Name] = g
		if g.Net != nil {
			nets++
		}
	}
	if err := s.check(); err != nil {
		t.Errorf("double allocation: %v", err)
	}
	if nets > 8 {
		t.Errorf("%d net links granted, 8 exist", nets)
	}
	onDisk, err := Open(state, concurrentPool()).Grants()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(onDisk, s.Grants) {
		t.Errorf("state file holds %d grants, children reported %d", len(onDisk), len(s.Grants))
	}
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func newAllocator(t *testing.T) *Allocator {
	t.Helper()
	a := Open(filepath.Join(t.TempDir(), "state.json"), testPool())
	for _, r := range []struct {
		name string
		req  Request
	}{{"first", req(2, 8*mib, true)}, {"second", req(1, 20*mib, false)}} {
		if _, err := a.Allocate(r.name, r.req); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// A request that cannot be met leaves the state file byte for byte as it
// was.
func TestFailureChangesNothing(t *testing.T) {
	for _, tt := range []struct {
		name string
		fill []Request // granted first, beside "first" and "second"
		as   string
		req  Request
		want error
	}{
		{"memory", nil, "third", req(1, 64*mib, false), ErrNoMemory},
		{"CPUs", nil, "third", req(14, 2*mib, false), ErrNoCPU},
		{"taken CPU", nil, "third", Request{CPUs: cpuset.Of(2), Memory: 2 * mib}, ErrNoCPU},
		{"net", []Request{req(1, 2*mib, true)}, "fourth", req(1, 2*mib, true), ErrNoNet},
		{"bad request", nil, "third", req(1, 0, false), ErrBadRequest},
		{"existing name", nil, "first", req(1, 2*mib, false), ErrExists},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t)
			for i, r := range tt.fill {
				if _, err := a.Allocate(fmt.Sprintf("fill-%d", i), r); err != nil {
					t.Fatal(err)
				}
			}
			before := readBytes(t, a.Path())
			if _, err := a.Allocate(tt.as, tt.req); !errors.Is(err, tt.want) {
				t.Fatalf("Allocate: %v, want %v", err, tt.want)
			}
			if r, err := a.Reserve(tt.as, tt.req); !errors.Is(err, tt.want) || r != nil {
				t.Fatalf("Reserve: %v, want %v", err, tt.want)
			}
			if after := readBytes(t, a.Path()); !bytes.Equal(before, after) {
				t.Errorf("state changed:\n%s\n->\n%s", before, after)
			}
		})
	}
}

func TestReleaseRestoresFile(t *testing.T) {
	a := newAllocator(t)
	before := readBytes(t, a.Path())
	g, err := a.Allocate("third", req(3, 6*mib, true))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Release("third"); err != nil {
		t.Fatal(err)
	}
	if after := readBytes(t, a.Path()); !bytes.Equal(before, after) {
		t.Errorf("allocate+release changed the state:\n%s\n->\n%s", before, after)
	}
	if err := a.Release("third"); err != nil {
		t.Errorf("second release: %v", err)
	}
	again, err := a.Allocate("third", req(3, 6*mib, true))
	if err != nil || !reflect.DeepEqual(again, g) {
		t.Errorf("after release: %+v, %v; before: %+v", again, err, g)
	}
}

func TestReservation(t *testing.T) {
	a := newAllocator(t)
	before := readBytes(t, a.Path())

	r, err := a.Reserve("third", req(1, 2*mib, false))
	if err != nil {
		t.Fatal(err)
	}
	// The state stays locked while the cell is being created.
	lf, err := os.Open(a.Path() + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_SH|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("lock during a reservation: %v, want EWOULDBLOCK", err)
	}
	if !bytes.Contains(readBytes(t, a.Path()), []byte(`"reserved"`)) {
		t.Error("reserved grant not on disk")
	}
	if err := r.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(); !errors.Is(err, ErrDone) {
		t.Errorf("commit after rollback: %v", err)
	}
	if after := readBytes(t, a.Path()); !bytes.Equal(before, after) {
		t.Errorf("reserve+rollback changed the state:\n%s\n->\n%s", before, after)
	}

	r, err = a.Reserve("third", req(1, 2*mib, false))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	gs, err := a.Grants()
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := gs["third"]; !ok || g.Reserved || !reflect.DeepEqual(g.CPUs, r.Grant().CPUs) {
		t.Errorf("after commit: %+v", gs["third"])
	}
}

func TestReconcile(t *testing.T) {
	a := newAllocator(t)
	// "third" was reserved by a process that died after creating its
	// cell, "fourth" by one that died before.
	for _, name := range []string{"third", "fourth"} {
		r, err := a.Reserve(name, req(1, 2*mib, false))
		if err != nil {
			t.Fatal(err)
		}
		// Drop the lock as a dying process would, without finishing.
		unix.Close(r.lock)
	}
	released, err := a.Reconcile([]string{"first", "third", "not-allocated"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"fourth", "second"}; !reflect.DeepEqual(released, want) {
		t.Errorf("released %v, want %v", released, want)
	}
	gs, err := a.Grants()
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 2 || gs["third"].Reserved || gs["first"].Name != "first" {
		t.Errorf("after reconcile: %+v", gs)
	}
	before := readBytes(t, a.Path())
	if released, err := a.Reconcile([]string{"first", "third"}); err != nil || len(released) != 0 {
		t.Errorf("second reconcile: %v, %v", released, err)
	}
	if !bytes.Equal(before, readBytes(t, a.Path())) {
		t.Error("a reconcile without changes rewrote the state")
	}
}

// A writer that fails or dies before the rename leaves the old state.
func TestInterruptedWrite(t *testing.T) {
	t.Run("error before rename", func(t *testing.T) {
		a := newAllocator(t)
		before := readBytes(t, a.Path())
		a.beforeRename = func(string) error { return errors.New("disk full") }
		if _, err := a.Allocate("third", req(1, 2*mib, false)); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("Allocate: %v", err)
		}
		if !bytes.Equal(before, readBytes(t, a.Path())) {
			t.Error("state changed")
		}
		if _, err := os.Stat(a.Path() + ".tmp"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("temporary file left: %v", err)
		}
	})
	t.Run("process dies mid-write", func(t *testing.T) {
		state := filepath.Join(t.TempDir(), "state.json")
		a := Open(state, concurrentPool())
		if _, err := a.Allocate("first", req(1, 2*mib, true)); err != nil {
			t.Fatal(err)
		}
		before := readBytes(t, state)
		err := child(t, "crash", state, "second").Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 {
			t.Fatalf("child: %v, want exit status 3", err)
		}
		tmp := readBytes(t, state+".tmp")
		if json.Valid(tmp) || len(tmp) == 0 {
			t.Fatalf("the child should leave a truncated temporary file, left %q", tmp)
		}
		if !bytes.Equal(before, readBytes(t, state)) {
			t.Fatal("state changed")
		}
		// The dead child's lock is gone, its half file is ignored.
		gs, err := a.Grants()
		if err != nil || len(gs) != 1 {
			t.Fatalf("Grants: %v, %v", gs, err)
		}
		if _, err := a.Allocate("second", req(1, 2*mib, true)); err != nil {
			t.Fatal(err)
		}
		if gs, err := a.Grants(); err != nil || len(gs) != 2 {
			t.Fatalf("Grants: %v, %v", gs, err)
		}
	})
}

func TestCorruptState(t *testing.T) {
	valid := func(t *testing.T) string {
		a := newAllocator(t)
		return string(readBytes(t, a.Path()))
	}(t)
	tests := []struct {
		name, old, new, want string
	}{
		{"truncated", "", "", "unexpected EOF"},
		{"version", `"version": 1`, `"version": 2`, "version 2"},
		{"unknown key", `"version": 1`, `"version": 1, "extra": 0`, `unknown field "extra"`},
		{"state", `"committed"`, `"maybe"`, `"maybe" is neither`},
		{"address", `"start": "0x78000000"`, `"start": "78000000"`, "ram:"},
		{"double CPU", `"cpus": "3"`, `"cpus": "1"`, `CPUs 1 granted to both "first" and "second"`},
		{"double memory", `"start": "0x70000000"`, `"start": "0x78000000"`, `memory granted to both`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := valid[:len(valid)/2]
			if tt.old != "" {
				if !strings.Contains(valid, tt.old) {
					t.Fatalf("%q not in %s", tt.old, valid)
				}
				data = strings.Replace(valid, tt.old, tt.new, 1)
			}
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			a := Open(path, testPool())
			_, err := a.Grants()
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Grants: %v, want ErrCorrupt with %q", err, tt.want)
			}
			if _, err := a.Allocate("x", req(1, 2*mib, false)); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Allocate on a corrupt state: %v", err)
			}
			if got := readBytes(t, path); string(got) != data {
				t.Error("corrupt state was overwritten")
			}
		})
	}
}

func FuzzDecodeState(f *testing.F) {
	s := NewState()
	pool := testPool()
	s.Allocate(pool, "a", req(2, 8*mib, true))
	s.Allocate(pool, "b", Request{CPUs: cpuset.Of(7), Memory: 2 * mib})
	g := s.Grants["b"]
	g.Reserved = true
	s.Grants["b"] = g
	data, err := encodeState(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"version":1,"grants":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeState(data)
		if err != nil {
			return
		}
		out, err := encodeState(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeState(out)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("round trip changed the state")
		}
	})
}
