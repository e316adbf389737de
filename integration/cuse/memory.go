package cuse

import (
	"errors"
	"syscall"
)

// ErrNeedMemory is returned by Memory.Read for a range the server still has
// to fetch from the caller. The handler must return it (wrapped or not)
// without having changed anything; it is called again once the memory is
// there.
var ErrNeedMemory = errors.New("cuse: caller memory must be fetched first")

// Memory is the caller's memory during one unrestricted ioctl: the ranges
// fetched so far.
type Memory struct {
	p *pendingIoctl
}

// Read returns a copy of the n bytes at addr, or ErrNeedMemory if they have
// not been fetched yet. A range the kernel cannot read fails the whole
// ioctl with EFAULT before the handler runs again.
func (m *Memory) Read(addr, n uint64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if addr+n < addr {
		return nil, syscall.EFAULT
	}
	for _, r := range m.p.have {
		if addr >= r.addr && addr-r.addr <= uint64(len(r.data)) && n <= uint64(len(r.data))-(addr-r.addr) {
			off := addr - r.addr
			return append([]byte(nil), r.data[off:off+n]...), nil
		}
	}
	m.p.want = append(m.p.want, &fetch{addr: addr, data: make([]byte, 0, n), size: n})
	return nil, ErrNeedMemory
}

// ioctlKey identifies one ioctl across its retries: a thread is in at most
// one system call, and the kernel repeats fh, cmd and arg.
type ioctlKey struct {
	fh  uint64
	pid uint32
	cmd uint32
	arg uint64
}

type fetched struct {
	addr uint64
	data []byte
}

// fetch is a range being fetched, possibly over several retries.
type fetch struct {
	addr uint64
	size uint64
	data []byte // filled so far
}

// piece is the part of a fetch one retry asks for.
type piece struct {
	f   *fetch
	len uint64
}

// pendingIoctl is the state of an ioctl between retries.
type pendingIoctl struct {
	have   []fetched
	want   []*fetch
	asked  []piece // what the last retry asked for, in order
	askedN uint64
}

// accept takes the data the kernel fetched for the last retry.
func (p *pendingIoctl) accept(data []byte) bool {
	if uint64(len(data)) != p.askedN {
		return false
	}
	for _, pc := range p.asked {
		pc.f.data = append(pc.f.data, data[:pc.len]...)
		data = data[pc.len:]
	}
	p.asked, p.askedN = nil, 0
	keep := p.want[:0]
	for _, f := range p.want {
		if uint64(len(f.data)) == f.size {
			p.have = append(p.have, fetched{addr: f.addr, data: f.data})
		} else {
			keep = append(keep, f)
		}
	}
	p.want = keep
	return true
}

// next plans the next retry: iovecs for the missing bytes, within the
// kernel's limits on count and total size. It returns nil when nothing is
// missing.
func (p *pendingIoctl) next(budget uint64) []Iovec {
	var iovs []Iovec
	for _, f := range p.want {
		for got := uint64(len(f.data)); got < f.size && budget > 0 && len(iovs) < IoctlMaxIovecs; {
			n := min(f.size-got, budget)
			iovs = append(iovs, Iovec{Base: f.addr + got, Len: n})
			p.asked = append(p.asked, piece{f: f, len: n})
			p.askedN += n
			budget -= n
			got += n
		}
	}
	return iovs
}

// ioctl runs one FUSE_IOCTL request through the retry protocol.
func (s *Server) ioctl(hdr InHeader, in IoctlIn, data []byte) {
	key := ioctlKey{fh: in.FH, pid: hdr.PID, cmd: in.Cmd, arg: in.Arg}
	s.mu.Lock()
	p := s.pending[key]
	if in.InSize == 0 || p == nil || !p.accept(data) {
		// A new ioctl (or one whose retry state was lost: start over).
		p = &pendingIoctl{}
	}
	delete(s.pending, key)
	s.mu.Unlock()

	if len(p.want) == 0 {
		err := s.h.Ioctl(callerOf(hdr), in.FH, in.Cmd, in.Arg, &Memory{p: p})
		if !errors.Is(err, ErrNeedMemory) {
			if err != nil {
				s.send(reply(hdr.Unique, -int32(s.errno("ioctl", err))))
				return
			}
			s.send(reply(hdr.Unique, 0, IoctlOut{}.encode()))
			return
		}
		if len(p.want) == 0 {
			s.log.Error("handler asked for memory without reading any", "cmd", in.Cmd)
			s.send(reply(hdr.Unique, -int32(syscall.EIO)))
			return
		}
	}
	iovs := p.next(uint64(s.cfg.MaxIoctlData))
	s.mu.Lock()
	if len(s.pending) >= maxPending {
		for k := range s.pending {
			delete(s.pending, k)
			break
		}
	}
	s.pending[key] = p
	s.mu.Unlock()
	s.send(reply(hdr.Unique, 0, IoctlOut{Flags: IoctlRetry, InIovs: iovs}.encode()))
}

// dropPending forgets the retry state of a released file.
func (s *Server) dropPending(fh uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.pending {
		if k.fh == fh {
			delete(s.pending, k)
		}
	}
}
