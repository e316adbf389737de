package emu

import (
	"fmt"
	"syscall"
)

// consoleRing is the hypervisor's console page: a 2 KiB ring and the count
// of bytes ever written (wrapping at 2^32, like the hypervisor's tail).
type consoleRing struct {
	Tail    uint32 `json:"tail"`
	Content []byte `json:"content"`
}

func (r *consoleRing) init() {
	r.Tail = 0
	r.Content = make([]byte, consoleSize)
}

func (r *consoleRing) write(s string) {
	for i := 0; i < len(s); i++ {
		r.Content[r.Tail%consoleSize] = s[i]
		r.Tail++
	}
}

// delta returns what a reader at head has not seen yet and how many bytes
// it missed because the ring overflowed (the driver's dump_delta; the
// unsigned arithmetic may wrap on purpose).
func (r *consoleRing) delta(head uint32) ([]byte, uint32) {
	delta := r.Tail - head
	var missed uint32
	if delta > consoleSize {
		missed = delta - consoleSize
		head = r.Tail - consoleSize
		delta = consoleSize
	}
	out := make([]byte, 0, delta)
	for i := range delta {
		out = append(out, r.Content[(head+i)%consoleSize])
	}
	return out, missed
}

// lastConsole is the console of the previous run, which the driver keeps
// readable after a disable (or a failed enable).
type lastConsole struct {
	Valid   bool        `json:"valid"`
	ID      uint32      `json:"id"`
	Console consoleRing `json:"console"`
}

// ConsoleCursor is one open file's position in the console stream, as the
// driver keeps it per open file. The zero value is a fresh open.
type ConsoleCursor struct {
	Head   uint32 `json:"head"`
	LastID uint32 `json:"last_id"`
}

// print writes a hypervisor message to the console page, which the
// hypervisor does only with the virtual debug console flag.
func (h *Hypervisor) print(format string, args ...any) {
	if h.st.sys == nil || h.st.sys.flags&sysVirtualDebugConsole == 0 {
		return
	}
	h.st.Console.write(fmt.Sprintf(format, args...))
}

func (h *Hypervisor) consoleAvailable() bool {
	return h.st.sys != nil && h.st.sys.flags&sysVirtualDebugConsole != 0
}

// ReadConsole is one pass of the driver's read() on /dev/jailhouse: it
// fills p from the stream at cur and advances cur. With nonblock it returns
// 0 when there is nothing new. Without, wait reports that the driver would
// sleep 100 ms and try again (no new data, or Jailhouse disabled); the caller
// then waits and calls again. Errors are EAGAIN (non-blocking, Jailhouse not
// enabled and no log of a previous run left to read) and EPERM (the system
// configuration lacks the virtual debug console).
func (h *Hypervisor) ReadConsole(cur *ConsoleCursor, p []byte, nonblock bool) (n int, wait bool, err error) {
	var data []byte
	var missed uint32
	last := &h.st.Last
	if last.ID != cur.LastID && last.Valid {
		data, missed = last.Console.delta(cur.Head)
		if len(data) == 0 {
			cur.LastID = last.ID
		}
	} else {
		switch {
		case !h.st.Enabled:
			err = syscall.EAGAIN
		case !h.consoleAvailable():
			return 0, false, syscall.EPERM
		case h.st.Console.Tail != cur.Head:
			data, missed = h.st.Console.delta(cur.Head)
		}
	}
	if len(data) == 0 {
		if nonblock {
			return 0, false, err
		}
		if err != nil {
			// Jailhouse may be enabled again while the file stays open.
			cur.Head = 0
		}
		return 0, true, nil
	}
	if missed > 0 {
		msg := fmt.Sprintf("<missed %d bytes of console log>\n", missed)
		cur.Head += missed
		return copy(p, msg), false, nil
	}
	n = copy(p, data)
	cur.Head += uint32(n)
	return n, false, nil
}

// ConsoleSnapshot returns what sysfs "console" shows: the whole current
// ring while enabled, nothing while disabled, EPERM without the virtual
// debug console flag.
func (h *Hypervisor) ConsoleSnapshot() ([]byte, error) {
	if !h.st.Enabled {
		return nil, nil
	}
	if !h.consoleAvailable() {
		return nil, syscall.EPERM
	}
	data, _ := h.st.Console.delta(0)
	return data, nil
}
