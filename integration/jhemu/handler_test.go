//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
	"github.com/runphi-go/runphi/integration/cuse"
	"github.com/runphi-go/runphi/integration/cuse/cusetest"
	"github.com/runphi-go/runphi/jhctl/emu"
)

var le = binary.LittleEndian

func config(t *testing.T, rel string) []byte {
	t.Helper()
	f, err := cell.ReadFile(filepath.Join("../../boards/qemu-arm64", rel))
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	if f.System != nil {
		data, err = f.System.Marshal()
	} else {
		data, err = f.Cell.Marshal()
	}
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// process is a caller of the device: its memory and open file.
type process struct {
	t   *testing.T
	k   *cusetest.Kernel
	mem emu.Space
	fh  uint64
}

// start serves the device on a fake kernel, as jhemu does on /dev/cuse.
func start(t *testing.T) (*process, string) {
	t.Helper()
	sysfs := filepath.Join(t.TempDir(), "sysfs")
	engine, err := emu.NewShared(emu.New(emu.Options{CPUs: cpuset.Range(0, 15)}), sysfs)
	if err != nil {
		t.Fatal(err)
	}
	k := cusetest.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		done <- cuse.ServeConn(ctx, k.Conn(), cuse.Config{DevName: "jailhouse"}, newDevice(engine, log))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	if _, err := k.Init(); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, k: k}
	if p.fh, err = k.Open(2); err != nil {
		t.Fatal(err)
	}
	return p, sysfs
}

func (p *process) ioctl(req uint32, rec []byte) error {
	var arg uint64
	if rec != nil {
		arg = p.mem.Map(rec)
	}
	_, err := p.k.Ioctl(p.fh, req, arg, &p.mem)
	return err
}

func (p *process) create(cfg []byte) error {
	rec := le.AppendUint64(nil, p.mem.Map(cfg))
	rec = le.AppendUint32(rec, uint32(len(cfg)))
	return p.ioctl(emu.ReqCellCreate, le.AppendUint32(rec, 0))
}

func idRecord(id int32, name string) []byte {
	rec := make([]byte, 40)
	le.PutUint32(rec, uint32(id))
	copy(rec[8:39], name)
	return rec
}

func (p *process) load(id int32, images map[uint64][]byte) error {
	rec := append(idRecord(id, ""), make([]byte, 8)...)
	le.PutUint32(rec[40:], uint32(len(images)))
	for addr, data := range images {
		img := le.AppendUint64(nil, p.mem.Map(data))
		img = le.AppendUint64(img, uint64(len(data)))
		img = le.AppendUint64(img, addr)
		rec = append(rec, le.AppendUint64(img, 0)...)
	}
	return p.ioctl(emu.ReqCellLoad, rec)
}

func (p *process) console(nonblock bool) string {
	p.t.Helper()
	var out []byte
	for {
		data, err := p.k.Read(context.Background(), p.fh, 128, nonblock)
		if err != nil {
			p.t.Fatalf("console read: %v", err)
		}
		if len(data) == 0 {
			return string(out)
		}
		out = append(out, data...)
		if !nonblock {
			return string(out)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestDemoOverCUSE runs the demo flow with raw records through the CUSE
// protocol.
func TestDemoOverCUSE(t *testing.T) {
	p, sysfs := start(t)
	if err := p.ioctl(emu.ReqEnable, config(t, "system.json")); err != nil {
		t.Fatalf("enable: %v", err)
	}
	if err := p.create(config(t, "demos/inmate-demo.json")); err != nil {
		t.Fatalf("create: %v", err)
	}
	if got := readFile(t, filepath.Join(sysfs, "cells/0/cpus_assigned_list")); got != "0,2-15\n" {
		t.Errorf("root CPUs = %q", got)
	}
	image := make([]byte, 0xc000)
	for i := range image {
		image[i] = byte(i)
	}
	if err := p.load(1, map[uint64][]byte{0x1000: image}); err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := p.ioctl(emu.ReqCellStart, idRecord(-1, "inmate-demo")); err != nil {
		t.Fatalf("start: %v", err)
	}
	sum := sha256.Sum256(image)
	log := p.console(true)
	want := `emu: cell "inmate-demo" (id 1) region 6 at 0x1000: 49152 bytes sha256 ` + hex.EncodeToString(sum[:])
	if !strings.Contains(log, "Started cell \"inmate-demo\"\n"+want+"\n") {
		t.Errorf("console:\n%s", log)
	}
	if got := readFile(t, filepath.Join(sysfs, "cells/1/state")); got != "running\n" {
		t.Errorf("state = %q", got)
	}
	if err := p.load(1, nil); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := p.ioctl(emu.ReqCellDestroy, idRecord(1, "")); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if err := p.ioctl(emu.ReqDisable, nil); err != nil {
		t.Fatalf("disable: %v", err)
	}
	if got := readFile(t, filepath.Join(sysfs, "enabled")); got != "0\n" {
		t.Errorf("enabled = %q", got)
	}
}

func TestErrorsOverCUSE(t *testing.T) {
	p, _ := start(t)
	if err := p.ioctl(emu.ReqCellStart, idRecord(1, "")); err != syscall.EINVAL {
		t.Errorf("start while disabled: %v, want EINVAL", err)
	}
	if err := p.ioctl(emu.ReqEnable, config(t, "system.json")); err != nil {
		t.Fatal(err)
	}
	inmate := config(t, "demos/inmate-demo.json")
	tests := []struct {
		name string
		run  func() error
		want syscall.Errno
	}{
		{"enable twice", func() error { return p.ioctl(emu.ReqEnable, config(t, "system.json")) }, syscall.EBUSY},
		{"create", func() error { return p.create(inmate) }, 0},
		{"duplicate", func() error { return p.create(inmate) }, syscall.EEXIST},
		{"overlapping CPUs", func() error { return p.create(config(t, "demos/zephyr-demo.json")) }, syscall.EBUSY},
		{"unknown name", func() error { return p.ioctl(emu.ReqCellStart, idRecord(-1, "nope")) }, syscall.ENOENT},
		{"root cell", func() error { return p.ioctl(emu.ReqCellDestroy, idRecord(0, "")) }, syscall.EINVAL},
		{"image does not fit", func() error { return p.load(1, map[uint64][]byte{0xffff: {1, 2}}) }, syscall.EINVAL},
		{"unknown request", func() error { return p.ioctl(0x40040000, make([]byte, 8)) }, syscall.EINVAL},
		{"record at an unmapped address", func() error {
			_, err := p.k.Ioctl(p.fh, emu.ReqCellStart, 0x7fff0000, &p.mem)
			return err
		}, syscall.EFAULT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if tt.want == 0 && err != nil || tt.want != 0 && err != tt.want {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestConsoleReads(t *testing.T) {
	p, _ := start(t)
	if _, err := p.k.Read(context.Background(), p.fh, 128, true); err != syscall.EAGAIN {
		t.Errorf("read before enable: %v, want EAGAIN", err)
	}
	// A blocking read waits until the hypervisor prints.
	got := make(chan string, 1)
	go func() { got <- p.console(false) }()
	time.Sleep(50 * time.Millisecond)
	if err := p.ioctl(emu.ReqEnable, config(t, "system.json")); err != nil {
		t.Fatal(err)
	}
	select {
	case first := <-got:
		if !strings.HasPrefix(first, "\nInitializing Jailhouse hypervisor") || len(first) > 128 {
			t.Errorf("blocking read: %q", first)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking read did not return")
	}
	// A caught-up blocking read ends with EINTR when interrupted.
	p.console(true)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, err := p.k.Read(ctx, p.fh, 128, false); err != syscall.EINTR {
		t.Errorf("interrupted read: %v, want EINTR", err)
	}
	// Each open file has its own position.
	other, err := p.k.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	data, err := p.k.Read(context.Background(), other, 16, true)
	if err != nil || string(data) != "\nInitializing Ja" {
		t.Errorf("second file reads %q, %v", data, err)
	}
	if err := p.k.Release(other); err != nil {
		t.Fatal(err)
	}
	if _, err := p.k.Read(context.Background(), other, 16, true); !errors.Is(err, syscall.EBADF) {
		t.Errorf("read after release: %v, want EBADF", err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		args    []string
		sysfs   string
		wantErr bool
	}{
		{nil, "/run/jhemu/sysfs", false},
		{[]string{"--sysfs", "/tmp/x"}, "/tmp/x", false},
		{[]string{"--state", "/tmp/s"}, "", false},
		{[]string{"--state", "/tmp/s", "--sysfs", "/tmp/x"}, "", true},
		{[]string{"extra"}, "", true},
		{[]string{"--bogus"}, "", true},
	}
	for _, tt := range tests {
		o, err := parse(tt.args, io.Discard)
		if (err != nil) != tt.wantErr || !tt.wantErr && o.sysfs != tt.sysfs {
			t.Errorf("parse(%q) = %+v, %v", tt.args, o, err)
		}
	}
	for _, args := range [][]string{{"--cpus", "x"}, {"--log-level", "loud"}} {
		if err := run(context.Background(), args, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

func TestStateDirShared(t *testing.T) {
	dir := t.TempDir()
	e, sysfs, err := newEngine(options{state: dir}, emu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Update(func(h *emu.Hypervisor) error { return h.Enable(config(t, "system.json")) }); err != nil {
		t.Fatal(err)
	}
	// A second jhemu (or an emu.Opener user) sees the same hypervisor.
	again, _, err := newEngine(options{state: dir}, emu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var on bool
	_ = again.View(func(h *emu.Hypervisor) error { on = h.Enabled(); return nil })
	if !on || readFile(t, filepath.Join(sysfs, "enabled")) != "1\n" {
		t.Errorf("state not shared (enabled %v)", on)
	}
	if !bytes.HasPrefix([]byte(sysfs), []byte(dir)) {
		t.Errorf("sysfs %s outside the state directory", sysfs)
	}
}

// TestLargeImageOverCUSE loads an image larger than one ioctl retry can
// carry (32 pages): the server fetches it over several rounds.
func TestLargeImageOverCUSE(t *testing.T) {
	p, _ := start(t)
	if err := p.ioctl(emu.ReqEnable, config(t, "system.json")); err != nil {
		t.Fatal(err)
	}
	if err := p.create(config(t, "demos/linux-demo.json")); err != nil {
		t.Fatal(err)
	}
	kernel := bytes.Repeat([]byte("arm64 Image "), 100<<10) // 1.2 MB
	before := p.k.Sent(cuse.OpIoctl)
	if err := p.load(1, map[uint64][]byte{0x70000000: kernel}); err != nil {
		t.Fatalf("load: %v", err)
	}
	// Header, image record, then 10 rounds of at most 128 KiB.
	if rounds := p.k.Sent(cuse.OpIoctl) - before; rounds != 1+2+10 {
		t.Errorf("%d ioctl rounds", rounds)
	}
	if err := p.ioctl(emu.ReqCellStart, idRecord(1, "")); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(kernel)
	if log := p.console(true); !strings.Contains(log, "region 11 at 0x70000000: 1228800 bytes sha256 "+hex.EncodeToString(sum[:])) {
		t.Errorf("console:\n%s", log)
	}
}
