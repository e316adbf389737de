package jailhouse

import (
	"errors"
	"io"
	"testing"

	"golang.org/x/sys/unix"
)

func TestConsole(t *testing.T) {
	t.Run("snapshot", func(t *testing.T) {
		c, f := newTestClient(t, newSysfs(t).enabled("0-15"))
		f.reads = [][]byte{[]byte("Initializing Jailhouse hypervisor\n"), []byte("<missed 12 bytes of console log>\n")}
		r, err := c.Console(false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if want := "Initializing Jailhouse hypervisor\n<missed 12 bytes of console log>\n"; string(got) != want {
			t.Errorf("read %q, want %q", got, want)
		}
		if !f.nonblock {
			t.Error("a snapshot must read with O_NONBLOCK")
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("follow", func(t *testing.T) {
		c, f := newTestClient(t, newSysfs(t).enabled("0-15"))
		f.reads = [][]byte{[]byte("a"), {}, []byte("b")}
		f.readErr = unix.EIO
		r, err := c.Console(true)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if f.nonblock {
			t.Error("follow must block")
		}
		buf := make([]byte, 128)
		var got []byte
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				if !errors.Is(err, unix.EIO) {
					t.Errorf("read error %v, want EIO", err)
				}
				break
			}
		}
		// An empty read in follow mode does not end the stream.
		if string(got) != "ab" {
			t.Errorf("read %q, want %q", got, "ab")
		}
	})
	tests := []struct {
		errno unix.Errno
		msg   string
		kind  error
	}{
		{unix.EPERM, "console: the system configuration does not permit reading the hypervisor console", ErrConsoleDenied},
		{unix.EAGAIN, "console: jailhouse has not been enabled since boot", ErrNeverEnabled},
	}
	for _, tt := range tests {
		t.Run(errnoName(tt.errno), func(t *testing.T) {
			c, f := newTestClient(t, newSysfs(t).disabled())
			f.readErr = tt.errno
			r, err := c.Console(false)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = io.ReadAll(r)
			wantError(t, err, tt.msg, tt.errno, tt.kind)
		})
	}
}

func TestConsoleSnapshot(t *testing.T) {
	s := newSysfs(t).enabled("0-15")
	s.write("console", "Initializing Jailhouse hypervisor v0.12\n")
	c, _ := newTestClient(t, s)
	got, err := c.ConsoleSnapshot()
	if err != nil || string(got) != "Initializing Jailhouse hypervisor v0.12\n" {
		t.Errorf("ConsoleSnapshot() = %q, %v", got, err)
	}
}
