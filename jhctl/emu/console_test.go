package emu

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/runphi-go/runphi/cellgen/cell"
)

// readAll drains a cursor in non-blocking mode with reads of size n.
func readAll(t *testing.T, h *Hypervisor, cur *ConsoleCursor, n int) (string, error) {
	t.Helper()
	var out strings.Builder
	buf := make([]byte, n)
	for {
		got, wait, err := h.ReadConsole(cur, buf, true)
		if wait {
			t.Fatal("non-blocking read asked to wait")
		}
		out.Write(buf[:got])
		if got == 0 || err != nil {
			return out.String(), err
		}
	}
}

func TestConsoleNeverEnabled(t *testing.T) {
	h := New(Options{})
	var cur ConsoleCursor
	n, wait, err := h.ReadConsole(&cur, make([]byte, 128), true)
	if n != 0 || wait || err != syscall.EAGAIN {
		t.Errorf("non-blocking read before enable = %d, %v, %v; want EAGAIN", n, wait, err)
	}
	n, wait, err = h.ReadConsole(&cur, make([]byte, 128), false)
	if n != 0 || !wait || err != nil {
		t.Errorf("blocking read before enable = %d, %v, %v; want to wait", n, wait, err)
	}
	if snap, err := h.ConsoleSnapshot(); len(snap) != 0 || err != nil {
		t.Errorf("snapshot before enable = %q, %v", snap, err)
	}
}

func TestConsoleNotPermitted(t *testing.T) {
	h := New(Options{})
	if err := h.Enable(qemuSystem(t, func(s *cell.System) { s.Flags = 0 })); err != nil {
		t.Fatal(err)
	}
	var cur ConsoleCursor
	for _, nonblock := range []bool{true, false} {
		if _, _, err := h.ReadConsole(&cur, make([]byte, 8), nonblock); err != syscall.EPERM {
			t.Errorf("read (nonblock %v) = %v, want EPERM", nonblock, err)
		}
	}
	if _, err := h.ConsoleSnapshot(); err != syscall.EPERM {
		t.Errorf("snapshot = %v, want EPERM", err)
	}
}

func TestConsoleReaders(t *testing.T) {
	h := enabled(t)
	var a, b ConsoleCursor
	first, err := readAll(t, h, &a, 128)
	if err != nil || !strings.HasPrefix(first, "\nInitializing Jailhouse hypervisor") {
		t.Fatalf("first read: %q, %v", first, err)
	}
	createOK("inmate-demo")(t, h)
	more, _ := readAll(t, h, &a, 7)
	if !strings.HasPrefix(more, "Adding virtual PCI device 00:00.0 to cell \"inmate-demo\"\n") {
		t.Errorf("reader a continues with %q", more)
	}
	// Another reader starts at the beginning of the ring.
	all, _ := readAll(t, h, &b, 4096)
	if all != first+more {
		t.Errorf("reader b:\n%q\nwant\n%q", all, first+more)
	}
	snap, _ := h.ConsoleSnapshot()
	if string(snap) != all {
		t.Errorf("snapshot differs from the stream")
	}
}

func TestConsoleOverflow(t *testing.T) {
	h := enabled(t)
	createOK("linux-demo")(t, h) // its console flags allow printing
	var cur ConsoleCursor
	before := h.st.Console.Tail
	line := strings.Repeat("x", 99) + "\n"
	for range 30 {
		if err := h.CellPrint(1, line); err != nil {
			t.Fatal(err)
		}
	}
	total := before + 3000
	buf := make([]byte, 4096)
	n, _, err := h.ReadConsole(&cur, buf, true)
	want := fmt.Sprintf("<missed %d bytes of console log>\n", total-consoleSize)
	if err != nil || string(buf[:n]) != want {
		t.Fatalf("first read after overflow = %q, %v; want %q", buf[:n], err, want)
	}
	rest, _ := readAll(t, h, &cur, 4096)
	if len(rest) != consoleSize || !strings.HasSuffix(rest, line) {
		t.Errorf("after the notice: %d bytes", len(rest))
	}
	// A short buffer truncates the notice, as the driver does.
	var short ConsoleCursor
	n, _, _ = h.ReadConsole(&short, buf[:5], true)
	if string(buf[:n]) != "<miss" {
		t.Errorf("short read = %q", buf[:n])
	}
}

func TestConsoleAfterDisable(t *testing.T) {
	h := enabled(t)
	var open ConsoleCursor // open during the whole run
	if _, err := readAll(t, h, &open, 4096); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "disable", h.Disable(), 0)
	if snap, _ := h.ConsoleSnapshot(); len(snap) != 0 {
		t.Errorf("sysfs console after disable = %q, want empty", snap)
	}
	// A new reader gets the kept log, then 0, then EAGAIN.
	var fresh ConsoleCursor
	kept, err := readAll(t, h, &fresh, 4096)
	if err != nil || !strings.HasSuffix(kept, "Releasing CPU 15\n") || !strings.HasPrefix(kept, "\nInitializing") {
		t.Errorf("kept log: %q, %v", kept, err)
	}
	if _, _, err := h.ReadConsole(&fresh, make([]byte, 8), true); err != syscall.EAGAIN {
		t.Errorf("after the kept log: %v, want EAGAIN", err)
	}
	// The reader that was open sees only the messages it missed.
	tail, _ := readAll(t, h, &open, 4096)
	if !strings.HasPrefix(tail, "Shutting down hypervisor\n") {
		t.Errorf("open reader after disable: %q", tail)
	}
	// Enabling again drops the kept log.
	wantErrno(t, "enable", h.Enable(qemuSystem(t, nil)), 0)
	var again ConsoleCursor
	log, _ := readAll(t, h, &again, 4096)
	if strings.Contains(log, "Shutting down") {
		t.Errorf("new run shows the old log: %q", log)
	}
}
