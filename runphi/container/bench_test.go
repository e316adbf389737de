package container

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// vmRSS returns a process's resident set size in KiB.
func vmRSS(pid int) (int, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, os.ErrNotExist
}

// BenchmarkZICLifecycle measures create, start and delete of a ZIC against
// the fake hypervisor, in process, monitor spawn included. It also reports
// the RSS of a running monitor (this test binary in the monitor role,
// which is larger than runphi itself).
func BenchmarkZICLifecycle(b *testing.B) {
	// Production state lives on tmpfs (/run); so does the benchmark's,
	// when /dev/shm exists, so that it measures runphi and not the disk.
	dir := b.TempDir()
	if shm, err := os.MkdirTemp("/dev/shm", "runphi-bench-"); err == nil {
		b.Cleanup(func() { os.RemoveAll(shm) })
		dir = shm
	}
	e := newEnvIn(b, dir)
	opts := make([]CreateOpts, b.N)
	for i := range b.N {
		id := "bench-" + strconv.Itoa(i)
		opts[i] = e.opts(id, e.bundle(id, bundleOpts{desc: `{"net":false}`}))
	}
	rss := 0
	b.ResetTimer()
	for i := range b.N {
		o := opts[i]
		if err := e.m.Create(context.Background(), o); err != nil {
			b.Fatal(err)
		}
		if err := e.m.Start(o.ID); err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.StopTimer()
			s, err := e.m.State(o.ID)
			if err != nil {
				b.Fatal(err)
			}
			if rss, err = vmRSS(s.Pid); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		if err := e.m.Kill(o.ID, unix.SIGKILL, false); err != nil {
			b.Fatal(err)
		}
		if err := e.m.Delete(o.ID, false); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rss), "monitor-RSS-KiB")
}
