// Package cuse serves a character device from user space through Linux's
// CUSE (/dev/cuse, module cuse.ko), in pure Go without libfuse or cgo.
//
// The server answers CUSE_INIT with a device name (the kernel then creates
// /dev/NAME) and dispatches open, read, ioctl and release to a Handler. It
// asks for unrestricted ioctls, so any request number works and the handler
// reads the caller's memory at the addresses it finds in the records:
// Memory.Read reports a range it does not have yet with ErrNeedMemory, the
// handler returns that error, and the server replies FUSE_IOCTL_RETRY with
// iovecs for the missing bytes. The kernel copies them from the caller and
// sends the ioctl again, and the handler runs again from the start with
// everything it asked for so far. Ranges larger than one retry can carry
// (32 pages) are fetched over several retries without running the handler
// in between. A handler must therefore finish all its memory reads before
// it changes anything.
//
// ServeConn runs the protocol over any message transport, which lets tests
// stand in for the kernel (see package cusetest).
package cuse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
)

// Caller identifies the process behind a request.
type Caller struct {
	PID, UID, GID uint32
}

// Handler implements the device. Errors are syscall.Errno values for the
// caller; any other error becomes EIO (and is logged).
type Handler interface {
	// Open is called for every open(2) and returns a handle for the file.
	Open(c Caller, flags uint32) (fh uint64, err error)
	// Read reads at most size bytes. ctx is cancelled when the caller is
	// interrupted by a signal or the server stops; a blocking read should
	// then return EINTR.
	Read(ctx context.Context, c Caller, fh uint64, size uint32, nonblock bool) ([]byte, error)
	// Ioctl handles request cmd with argument arg, reading the caller's
	// memory through mem. See the package comment for ErrNeedMemory.
	Ioctl(c Caller, fh uint64, cmd uint32, arg uint64, mem *Memory) error
	// Release is called when the last descriptor of the file is closed.
	Release(fh uint64)
}

// Conn is the channel to the kernel: every Read returns exactly one
// request, every Write sends exactly one reply. An *os.File of /dev/cuse is
// one.
type Conn interface {
	io.ReadWriteCloser
}

// Config configures a server.
type Config struct {
	// DevName names the device: /dev/DevName.
	DevName string
	// DevMajor and DevMinor request a device number; major 0 lets the
	// kernel choose.
	DevMajor, DevMinor uint32
	// MaxRead is the largest read request the kernel sends (default 64 KiB).
	MaxRead uint32
	// MaxIoctlData bounds the caller memory fetched per ioctl retry; the
	// kernel fails the ioctl with ENOMEM above 32 pages (the default).
	MaxIoctlData int
	// Logger receives protocol problems; nil discards them.
	Logger *slog.Logger
	// Ready is called once the kernel has been told the device's name.
	Ready func()
}

// Defaults.
const (
	defaultMaxRead = 64 << 10
	// The kernel caps an ioctl's data at fc->max_pages pages, 32 for CUSE.
	defaultMaxPages = 32
	// maxPending bounds the ioctls waiting for a retry; entries left by
	// callers that died mid-ioctl are dropped beyond it.
	maxPending = 1024
)

// Server is a running CUSE device.
type Server struct {
	cfg  Config
	h    Handler
	conn Conn
	log  *slog.Logger

	writeMu sync.Mutex

	mu       sync.Mutex
	inflight map[uint64]context.CancelFunc // unique → cancel of a blocking request
	pending  map[ioctlKey]*pendingIoctl
	wg       sync.WaitGroup
}

// ServeConn serves the device over conn until ctx is cancelled (then it
// returns nil) or the connection fails. It closes conn when it returns.
func ServeConn(ctx context.Context, conn Conn, cfg Config, h Handler) error {
	if cfg.DevName == "" {
		return errors.New("cuse: no device name")
	}
	if cfg.MaxRead == 0 {
		cfg.MaxRead = defaultMaxRead
	}
	if cfg.MaxIoctlData <= 0 {
		cfg.MaxIoctlData = defaultMaxPages * os.Getpagesize()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, h: h, conn: conn, log: log,
		inflight: map[uint64]context.CancelFunc{}, pending: map[ioctlKey]*pendingIoctl{}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		conn.Close() // unblocks the read loop
	}()
	err := s.loop(ctx)
	cancel()
	s.wg.Wait()
	return err
}

func (s *Server) loop(ctx context.Context) error {
	// A request holds at most the header, fuse_ioctl_in and the fetched
	// memory; the kernel fails requests larger than the buffer.
	buf := make([]byte, InHeaderSize+IoctlInSize+s.cfg.MaxIoctlData+os.Getpagesize())
	initDone := false
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The kernel reports a request that vanished before it was
			// read as ENOENT, and EINTR/EAGAIN mean nothing to read yet.
			if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) {
				continue
			}
			if errors.Is(err, syscall.ENODEV) || errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
				return fmt.Errorf("cuse: connection closed: %w", err)
			}
			return fmt.Errorf("cuse: reading a request: %w", err)
		}
		msg := buf[:n]
		hdr, err := ParseInHeader(msg)
		if err != nil {
			s.log.Warn("bad request", "err", err)
			if len(msg) >= InHeaderSize {
				s.send(reply(hdr.Unique, -int32(syscall.EIO)))
			}
			continue
		}
		body := msg[InHeaderSize:]
		if !initDone {
			if hdr.Opcode != OpCuseInit {
				s.send(reply(hdr.Unique, -int32(syscall.EIO)))
				continue
			}
			if err := s.init(hdr, body); err != nil {
				return err
			}
			initDone = true
			continue
		}
		s.dispatch(ctx, hdr, body)
	}
}

// init answers CUSE_INIT.
func (s *Server) init(hdr InHeader, body []byte) error {
	if len(body) < cuseInitInSize {
		s.send(reply(hdr.Unique, -int32(syscall.EIO)))
		return fmt.Errorf("cuse: CUSE_INIT of %d bytes", len(body))
	}
	major, minor := le.Uint32(body[0:]), le.Uint32(body[4:])
	if major != KernelVersion || minor < MinMinor {
		s.send(reply(hdr.Unique, -int32(syscall.EPROTO)))
		return fmt.Errorf("cuse: kernel speaks FUSE %d.%d, need %d.%d or later", major, minor, KernelVersion, MinMinor)
	}
	out := InitOut{
		Major: KernelVersion, Minor: min(minor, MaxMinor), Flags: CuseUnrestrictedIoctl,
		MaxRead: s.cfg.MaxRead, MaxWrite: 4096, DevMajor: s.cfg.DevMajor, DevMinor: s.cfg.DevMinor,
	}
	info := []byte("DEVNAME=" + s.cfg.DevName + "\x00")
	if len(info) > InitInfoMax {
		return errors.New("cuse: device name too long")
	}
	if err := s.send(reply(hdr.Unique, 0, out.append(nil), info)); err != nil {
		return fmt.Errorf("cuse: CUSE_INIT reply: %w", err)
	}
	s.log.Debug("device registered", "name", s.cfg.DevName, "fuse", fmt.Sprintf("%d.%d", major, out.Minor))
	if s.cfg.Ready != nil {
		s.cfg.Ready()
	}
	return nil
}

func callerOf(h InHeader) Caller { return Caller{PID: h.PID, UID: h.UID, GID: h.GID} }

func (s *Server) dispatch(ctx context.Context, hdr InHeader, body []byte) {
	errReply := func(errno syscall.Errno) { s.send(reply(hdr.Unique, -int32(errno))) }
	switch hdr.Opcode {
	case OpOpen:
		if len(body) < openInSize {
			errReply(syscall.EIO)
			return
		}
		fh, err := s.h.Open(callerOf(hdr), le.Uint32(body[0:]))
		if err != nil {
			errReply(s.errno("open", err))
			return
		}
		out := le.AppendUint64(nil, fh)
		out = le.AppendUint64(out, 0) // open_flags, padding
		s.send(reply(hdr.Unique, 0, out))
	case OpRead:
		if len(body) < readInSize {
			errReply(syscall.EIO)
			return
		}
		fh, size, flags := le.Uint64(body[0:]), le.Uint32(body[16:]), le.Uint32(body[32:])
		size = min(size, s.cfg.MaxRead)
		rctx, cancel := context.WithCancel(ctx)
		s.mu.Lock()
		s.inflight[hdr.Unique] = cancel
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.inflight, hdr.Unique)
				s.mu.Unlock()
				cancel()
			}()
			data, err := s.h.Read(rctx, callerOf(hdr), fh, size, flags&oNonblock != 0)
			if err != nil {
				errReply(s.errno("read", err))
				return
			}
			if uint32(len(data)) > size {
				data = data[:size]
			}
			s.send(reply(hdr.Unique, 0, data))
		})
	case OpIoctl:
		if len(body) < IoctlInSize {
			errReply(syscall.EIO)
			return
		}
		in := parseIoctlIn(body)
		data := body[IoctlInSize:]
		if uint64(len(data)) != uint64(in.InSize) {
			errReply(syscall.EIO)
			return
		}
		data = append([]byte(nil), data...) // the read buffer is reused
		s.wg.Go(func() { s.ioctl(hdr, in, data) })
	case OpRelease:
		if len(body) < releaseInSize {
			errReply(syscall.EIO)
			return
		}
		fh := le.Uint64(body[0:])
		s.dropPending(fh)
		s.h.Release(fh)
		s.send(reply(hdr.Unique, 0))
	case OpInterrupt:
		// No reply: the interrupted request itself is answered (EINTR).
		if len(body) < interruptInSize {
			return
		}
		s.mu.Lock()
		cancel := s.inflight[le.Uint64(body[0:])]
		s.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	case OpWrite:
		errReply(syscall.EINVAL) // like a character device without write
	default:
		// ENOSYS makes the kernel stop sending FUSE_POLL, FLUSH and the like.
		errReply(syscall.ENOSYS)
	}
}

// errno maps a handler error to the errno for the caller.
func (s *Server) errno(op string, err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) && e != 0 {
		return e
	}
	s.log.Error("handler failed", "op", op, "err", err)
	return syscall.EIO
}

// send writes one reply. The kernel answers a reply to a request that is
// gone (interrupted, aborted) with ENOENT, which is not an error here.
func (s *Server) send(msg []byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_, err := s.conn.Write(msg)
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		s.log.Warn("writing a reply", "err", err)
		return err
	}
	return nil
}
