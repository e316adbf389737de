package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestValidateID(t *testing.T) {
	long := strings.Repeat("a", MaxIDLen)
	tests := []struct {
		id string
		ok bool
	}{
		{"abc", true},
		{"a_b-c.d+e", true},
		{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true},
		{".hidden", true},
		{long, true},
		{long + "a", false},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"a b", false},
		{"a:b", false},
		{"ä", false},
		{"a\x00", false},
	}
	for _, tc := range tests {
		err := ValidateID(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidID) {
			t.Errorf("ValidateID(%q) = %v, not ErrInvalidID", tc.id, err)
		}
	}
}

func TestCellName(t *testing.T) {
	id64 := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	sum := sha256.Sum256([]byte(id64))
	tests := []struct {
		id, want string
	}{
		{"zic", "zic"},
		{strings.Repeat("x", 31), strings.Repeat("x", 31)},
		// The documented derivation: 22 bytes, "-", 8 hex digits of
		// the id's SHA-256.
		{id64, id64[:22] + "-" + hex.EncodeToString(sum[:])[:8]},
	}
	for _, tc := range tests {
		if got := CellName(tc.id); got != tc.want {
			t.Errorf("CellName(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
	// Long ids that share the kept prefix still get distinct names, and
	// the name depends on the id only.
	a, b := CellName(id64), CellName(id64[:63]+"0")
	if a == b {
		t.Errorf("ids differing in the last byte share cell name %q", a)
	}
	if len(a) != MaxCellNameLen {
		t.Errorf("derived name %q has %d bytes, want %d", a, len(a), MaxCellNameLen)
	}
	if CellName(id64) != a {
		t.Error("CellName is not deterministic")
	}
	if CellName(strings.Repeat("x", 32)) == strings.Repeat("x", 31) {
		t.Error("a 32-byte id was truncated to its first 31 bytes")
	}
}

func TestParseStat(t *testing.T) {
	tail := " 1 1 0 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 100"
	tests := []struct {
		name  string
		data  string
		state byte
		start uint64
		bad   bool
	}{
		{"plain", "42 (sleep) S" + tail, 'S', 123456, false},
		{"spaces and parens in comm", "42 (a) b (c)) Z" + tail, 'Z', 123456, false},
		{"no comm", "42 sleep S" + tail, 0, 0, true},
		{"short", "42 (sleep) S 1 2", 0, 0, true},
		{"bad start", "42 (x) S 1 1 0 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 x 1000 100", 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := parseStat([]byte(tc.data))
			if (err != nil) != tc.bad {
				t.Fatalf("parseStat = %+v, %v", st, err)
			}
			if !tc.bad && (st.State != tc.state || st.StartTime != tc.start) {
				t.Errorf("parseStat = %+v, want state %c start %d", st, tc.state, tc.start)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (sleep) S 1 1 0 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 100"))
	f.Add([]byte("1 ()) R"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseStat(data)
		if err == nil && !(st.State >= 'A' && st.State <= 'Z' || st.State >= 'a' && st.State <= 'z') {
			t.Errorf("parseStat(%q) accepted state %q", data, st.State)
		}
	})
}

func TestProcessAliveAndSignal(t *testing.T) {
	self, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if !self.Alive() {
		t.Error("this process is not alive")
	}
	if (Process{PID: self.PID, StartTime: self.StartTime + 1}).Alive() {
		t.Error("a different start time (pid reuse) counts as alive")
	}

	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	p, err := ProcessOf(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Alive() {
		t.Fatal("child not alive")
	}
	if err := (Process{PID: p.PID, StartTime: p.StartTime + 1}).Signal(unix.SIGKILL); !errors.Is(err, ErrNoProcess) {
		t.Errorf("signalling a recycled pid = %v, want ErrNoProcess", err)
	}
	if err := p.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Killed but not reaped: a zombie, which is not alive.
	deadline := time.Now().Add(5 * time.Second)
	for p.Alive() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if p.Alive() {
		t.Error("zombie counts as alive")
	}
	cmd.Wait()
	if err := p.Signal(unix.SIGTERM); !errors.Is(err, ErrNoProcess) {
		t.Errorf("signalling a reaped process = %v, want ErrNoProcess", err)
	}
	if _, err := ProcessOf(p.PID); !errors.Is(err, ErrNoProcess) {
		t.Errorf("ProcessOf(reaped) = %v, want ErrNoProcess", err)
	}
}

func TestDerive(t *testing.T) {
	creating := &Container{Phase: PhaseCreating}
	created := &Container{Phase: PhaseCreated}
	tests := []struct {
		name string
		c    *Container
		f    Facts
		want specs.ContainerState
	}{
		{"create in progress", creating, Facts{CreatorAlive: true}, specs.StateCreating},
		{"create died", creating, Facts{}, specs.StateStopped},
		{"create died after starting the monitor", creating, Facts{MonitorAlive: true, FifoExists: true}, specs.StateStopped},
		{"waiting for start", created, Facts{MonitorAlive: true, FifoExists: true}, specs.StateCreated},
		{"running", created, Facts{MonitorAlive: true, Cell: CellRunning}, specs.StateRunning},
		{"cell shut down, monitor exiting", created, Facts{MonitorAlive: true, Cell: CellStopped}, specs.StateStopped},
		{"cell gone", created, Facts{MonitorAlive: true, Cell: CellMissing}, specs.StateStopped},
		{"monitor dead, cell running", created, Facts{Cell: CellRunning}, specs.StateStopped},
		{"monitor dead before start", created, Facts{FifoExists: true}, specs.StateStopped},
	}
	for _, tc := range tests {
		if got := Derive(tc.c, tc.f); got != tc.want {
			t.Errorf("%s: Derive = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func sample() *Container {
	return &Container{
		Version:     Version,
		OCIVersion:  "1.2.0",
		ID:          "zic-a",
		Bundle:      "/run/containerd/io.containerd.runtime.v2.task/k8s.io/zic-a",
		Rootfs:      "/run/containerd/io.containerd.runtime.v2.task/k8s.io/zic-a/rootfs",
		Created:     time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		Annotations: map[string]string{"org.runphi.runtime": "zic"},
		Phase:       PhaseCreated,
		Creator:     Process{PID: 100, StartTime: 5000},
		Monitor:     &Process{PID: 101, StartTime: 5001},
		Cell:        Cell{Name: "zic-a", ID: 1},
		OS:          "zephyr",
		Console:     "uart",
		Cgroup:      &Cgroup{Path: "/system.slice/runphi-zic-a.scope", Created: true},
		PidFile:     "/run/containerd/io.containerd.runtime.v2.task/k8s.io/zic-a/init.pid",
	}
}

func TestStateFileGolden(t *testing.T) {
	data, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "state.json")
	if *update {
		if err := os.WriteFile(golden, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, want) {
		t.Errorf("state.json =\n%s\nwant\n%s", data, want)
	}
	back, err := Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Encode(back)
	if !bytes.Equal(again, want) {
		t.Errorf("round trip changed state.json:\n%s", again)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := Encode(sample())
	tests := map[string]string{
		"unknown key":   strings.Replace(string(good), `"owner"`, `"ownr"`, 1),
		"version":       strings.Replace(string(good), `"version": 1`, `"version": 2`, 1),
		"phase":         strings.Replace(string(good), `"phase": "created"`, `"phase": "running"`, 1),
		"bad id":        strings.Replace(string(good), `"id": "zic-a"`, `"id": "../x"`, 1),
		"long cell":     strings.Replace(string(good), `"name": "zic-a"`, `"name": "`+strings.Repeat("n", 32)+`"`, 1),
		"trailing data": string(good) + "{}",
		"not json":      "state",
	}
	for name, data := range tests {
		if _, err := Decode([]byte(data)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Decode = %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := Encode(sample())
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			return
		}
		if ValidateID(c.ID) != nil || len(c.Cell.Name) > MaxCellNameLen {
			t.Errorf("Decode accepted %+v", c)
		}
	})
}

func TestStore(t *testing.T) {
	s, err := NewStore(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("../x"); !errors.Is(err, ErrInvalidID) {
		t.Errorf("Create(../x) = %v", err)
	}
	h, err := s.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("a"); !errors.Is(err, ErrExist) {
		t.Errorf("second Create = %v, want ErrExist", err)
	}
	if !s.Exists("a") || s.Exists("b") {
		t.Error("Exists is wrong")
	}
	if _, err := s.Read("a"); !errors.Is(err, ErrNotExist) || !errors.Is(err, ErrNoState) {
		t.Errorf("Read before Save = %v, want ErrNotExist and ErrNoState", err)
	}
	c := sample()
	c.ID = "a"
	if err := h.Save(c); err != nil {
		t.Fatal(err)
	}
	got, err := s.Read("a")
	if err != nil || got.Cell != c.Cell {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	if _, err := s.Read("b"); !errors.Is(err, ErrNotExist) || errors.Is(err, ErrNoState) {
		t.Errorf("Read(b) = %v, want ErrNotExist only", err)
	}
	ids, err := s.IDs()
	if err != nil || len(ids) != 1 || ids[0] != "a" {
		t.Errorf("IDs = %v, %v", ids, err)
	}

	// A verb waiting for the lock while the holder deletes the
	// container finds it gone.
	got2 := make(chan error, 1)
	go func() {
		h2, err := s.Lock("a")
		if err == nil {
			h2.Unlock()
		}
		got2 <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := h.Remove(); err != nil {
		t.Fatal(err)
	}
	h.Unlock()
	if err := <-got2; !errors.Is(err, ErrNotExist) {
		t.Errorf("Lock after removal = %v, want ErrNotExist", err)
	}
	if _, err := s.Lock("a"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Lock(removed) = %v", err)
	}
	if s.Exists("a") {
		t.Error("removed container exists")
	}
}

func TestLockSerialises(t *testing.T) {
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	h.Unlock()
	var mu sync.Mutex
	inside := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := s.Lock("a")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			if inside != 1 {
				t.Error("two holders of one container lock")
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			h.Unlock()
		}()
	}
	wg.Wait()
}
