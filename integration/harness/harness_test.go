package harness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runphi-go/runphi/integration/marker"
)

func TestCmdline(t *testing.T) {
	base := []Option{WithKernel("/k/Image"), WithInitramfs("/i.cpio")}
	tests := []struct {
		name string
		env  map[string]string
		opts []Option
		want []string
		err  error
	}{
		{
			name: "defaults",
			opts: base,
			want: []string{
				"qemu-system-aarch64", "-machine", "virt,gic-version=3,virtualization=on", "-cpu", "cortex-a57",
				"-smp", "2", "-m", "1G", "-nographic", "-no-reboot", "-nic", "none",
				"-kernel", "/k/Image", "-initrd", "/i.cpio", "-append", "console=ttyAMA0 panic=-1 quiet",
			},
		},
		{
			name: "real tier",
			opts: append(base, WithMachine("virt,gic-version=3,virtualization=on,its=off"), WithSMP(16),
				WithAppendKernel("mem=768M", "runphi.run=boot"), WithArgs("-device", "virtio-rng-pci")),
			want: []string{
				"qemu-system-aarch64", "-machine", "virt,gic-version=3,virtualization=on,its=off", "-cpu", "cortex-a57",
				"-smp", "16", "-m", "1G", "-nographic", "-no-reboot", "-nic", "none",
				"-kernel", "/k/Image", "-initrd", "/i.cpio", "-append", "console=ttyAMA0 panic=-1 quiet mem=768M runphi.run=boot",
				"-device", "virtio-rng-pci",
			},
		},
		{
			name: "environment",
			env:  map[string]string{"RUNPHI_QEMU": "/opt/qemu/bin/qemu-system-aarch64"},
			opts: append(base, FromEnv(), WithMemory("2G"), WithCPU("max,pauth-impdef=on")),
			want: []string{
				"/opt/qemu/bin/qemu-system-aarch64", "-machine", "virt,gic-version=3,virtualization=on", "-cpu", "max,pauth-impdef=on",
				"-smp", "2", "-m", "2G", "-nographic", "-no-reboot", "-nic", "none",
				"-kernel", "/k/Image", "-initrd", "/i.cpio", "-append", "console=ttyAMA0 panic=-1 quiet",
			},
		},
		{name: "no kernel", opts: []Option{WithInitramfs("/i")}, err: ErrNoKernel},
		{name: "no initramfs", opts: []Option{WithKernel("/k")}, err: ErrNoInitramfs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("RUNPHI_QEMU", "")
			t.Setenv("RUNPHI_VM_TIMEOUT", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			o, err := New(tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := o.Cmdline()
			if !errors.Is(err, tt.err) {
				t.Fatalf("Cmdline error = %v, want %v", err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Cmdline mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		env  string
		opt  Option
	}{
		{"zero vCPUs", "", WithSMP(0)},
		{"kernel word with space", "", WithAppendKernel("a b")},
		{"empty kernel word", "", WithAppendKernel("")},
		{"negative timeout", "", WithTimeout(-time.Second)},
		{"empty qemu", "", WithQEMU("")},
		{"bad timeout env", "soon", FromEnv()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("RUNPHI_VM_TIMEOUT", tt.env)
			if _, err := New(tt.opt); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

func TestTimeoutFromEnv(t *testing.T) {
	t.Setenv("RUNPHI_VM_TIMEOUT", "90s")
	o, err := New(FromEnv())
	if err != nil {
		t.Fatal(err)
	}
	if o.Timeout != 90*time.Second {
		t.Errorf("Timeout = %v, want 90s", o.Timeout)
	}
}

func TestQuoted(t *testing.T) {
	got := Quoted([]string{"qemu", "-append", "console=ttyAMA0 quiet", "it's", ""})
	want := `qemu -append 'console=ttyAMA0 quiet' 'it'\''s' ''`
	if got != want {
		t.Errorf("Quoted = %s, want %s", got, want)
	}
}

// fakeQEMU writes a shell script standing in for QEMU and returns options
// that run it.
func fakeQEMU(t *testing.T, script string, timeout time.Duration) *Options {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "qemu")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	k, i := filepath.Join(dir, "Image"), filepath.Join(dir, "initramfs")
	for _, p := range []string{k, i} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o, err := New(WithQEMU(bin), WithKernel(k), WithInitramfs(i), WithTimeout(timeout))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestRunStreamsLines(t *testing.T) {
	o := fakeQEMU(t, `printf 'Booting\r\nRUNPHI-BOOT 1.5\r\n'; echo oops >&2; printf 'RUNPHI-DONE'`, time.Minute)
	var lines []string
	var last time.Duration
	res, err := Run(context.Background(), o, func(l marker.Line) {
		if l.At < last {
			t.Errorf("line %q at %v, before the previous line at %v", l.Text, l.At, last)
		}
		last = l.At
		lines = append(lines, l.Text)
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"Booting", "RUNPHI-BOOT 1.5", "oops", "RUNPHI-DONE"}, lines); diff != "" {
		t.Errorf("lines mismatch (-want +got):\n%s", diff)
	}
	if res.TimedOut || res.ExitErr != nil {
		t.Errorf("result = %+v, want a clean exit", res)
	}
	if res.Argv[0] != o.QEMU {
		t.Errorf("Argv[0] = %q, want %q", res.Argv[0], o.QEMU)
	}
}

func TestRunKillsHungGuest(t *testing.T) {
	o := fakeQEMU(t, "echo started; exec sleep 60", 300*time.Millisecond)
	var lines []string
	res, err := Run(context.Background(), o, func(l marker.Line) { lines = append(lines, l.Text) })
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.ExitErr == nil {
		t.Errorf("result = %+v, want TimedOut with an exit error", res)
	}
	if res.Duration > 30*time.Second {
		t.Errorf("took %v to kill the guest", res.Duration)
	}
	if len(lines) != 1 || lines[0] != "started" {
		t.Errorf("lines = %q, want [started]", lines)
	}
}

func TestRunExitStatus(t *testing.T) {
	o := fakeQEMU(t, "echo 'qemu-system-aarch64: failed to find romfile'; exit 1", time.Minute)
	res, err := Run(context.Background(), o, func(marker.Line) {})
	if err != nil {
		t.Fatal(err)
	}
	if res.TimedOut || res.ExitErr == nil || !strings.Contains(res.ExitErr.Error(), "exit status 1") {
		t.Errorf("result = %+v, want exit status 1 without timeout", res)
	}
}

func TestRunMissingFiles(t *testing.T) {
	o, err := New(WithKernel(filepath.Join(t.TempDir(), "nope")), WithInitramfs("/dev/null"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), o, func(marker.Line) {}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Run with a missing kernel: %v, want ErrNotExist", err)
	}
}

func TestReadLinesSplitsLongLines(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	var got []int
	readLines(strings.NewReader(long+"\nend"), func(s string) { got = append(got, len(s)) })
	if len(got) < 2 || got[len(got)-1] != 3 {
		t.Fatalf("line lengths = %v, want the long line split and a final 3-byte line", got)
	}
	total := 0
	for _, n := range got[:len(got)-1] {
		total += n
	}
	if total != len(long) {
		t.Errorf("long line pieces sum to %d bytes, want %d", total, len(long))
	}
}
