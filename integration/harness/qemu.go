// Package harness boots an arm64 Linux guest under qemu-system-aarch64 and
// streams its serial console line by line. The command line is built from
// functional options and checked as data (Options.Cmdline); Run starts QEMU,
// hands every console line to a callback with its time since start, and
// kills QEMU when the context or the VM timeout ends.
//
// Environment overrides, applied by FromEnv:
//
//	RUNPHI_QEMU         QEMU binary (default qemu-system-aarch64)
//	RUNPHI_VM_TIMEOUT   Go duration bounding one VM run (default 5m)
package harness

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults for the emulated tier (qemu-arm64-testing.md §3): GICv3 with the
// CPUs starting at EL2, as Jailhouse needs, and a PL011 console.
const (
	DefaultQEMU    = "qemu-system-aarch64"
	DefaultMachine = "virt,gic-version=3,virtualization=on"
	DefaultCPU     = "cortex-a57"
	DefaultSMP     = 2
	DefaultMemory  = "1G"
	DefaultTimeout = 5 * time.Minute
)

// DefaultAppend returns the kernel command line every VM starts with:
// console on the PL011, a panic ends QEMU (with -no-reboot) instead of a
// reboot loop, and quiet saves about a second of emulated UART output.
func DefaultAppend() []string { return []string{"console=ttyAMA0", "panic=-1", "quiet"} }

// Options is the evaluated VM configuration.
type Options struct {
	QEMU      string
	Machine   string
	CPU       string
	SMP       int
	Memory    string
	Kernel    string
	Initramfs string
	Append    []string // kernel command line words
	Args      []string // extra QEMU arguments
	Timeout   time.Duration
}

// Option changes Options; it fails on values that can never work.
type Option func(*Options) error

// Errors from Cmdline.
var (
	ErrNoKernel    = errors.New("harness: no kernel image given")
	ErrNoInitramfs = errors.New("harness: no initramfs given")
)

// New applies opts over the defaults.
func New(opts ...Option) (*Options, error) {
	o := &Options{
		QEMU:    DefaultQEMU,
		Machine: DefaultMachine,
		CPU:     DefaultCPU,
		SMP:     DefaultSMP,
		Memory:  DefaultMemory,
		Append:  DefaultAppend(),
		Timeout: DefaultTimeout,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithQEMU sets the QEMU binary.
func WithQEMU(bin string) Option {
	return func(o *Options) error {
		if bin == "" {
			return errors.New("harness: empty QEMU binary")
		}
		o.QEMU = bin
		return nil
	}
}

// WithKernel sets the kernel image (an arm64 Image).
func WithKernel(path string) Option {
	return func(o *Options) error { o.Kernel = path; return nil }
}

// WithInitramfs sets the initramfs (cpio, optionally compressed).
func WithInitramfs(path string) Option {
	return func(o *Options) error { o.Initramfs = path; return nil }
}

// WithAppendKernel adds words to the kernel command line.
func WithAppendKernel(words ...string) Option {
	return func(o *Options) error {
		for _, w := range words {
			if w == "" || strings.ContainsAny(w, " \t\n") {
				return fmt.Errorf("harness: kernel argument %q must be one non-empty word", w)
			}
		}
		o.Append = append(o.Append, words...)
		return nil
	}
}

// WithMachine sets the -machine value.
func WithMachine(m string) Option {
	return func(o *Options) error { o.Machine = m; return nil }
}

// WithCPU sets the -cpu model.
func WithCPU(cpu string) Option {
	return func(o *Options) error { o.CPU = cpu; return nil }
}

// WithSMP sets the number of virtual CPUs.
func WithSMP(n int) Option {
	return func(o *Options) error {
		if n < 1 || n > 512 {
			return fmt.Errorf("harness: %d vCPUs out of range 1..512", n)
		}
		o.SMP = n
		return nil
	}
}

// WithMemory sets -m (for example "1G").
func WithMemory(m string) Option {
	return func(o *Options) error { o.Memory = m; return nil }
}

// WithArgs adds raw QEMU arguments.
func WithArgs(args ...string) Option {
	return func(o *Options) error { o.Args = append(o.Args, args...); return nil }
}

// WithTimeout bounds one VM run; QEMU is killed when it passes.
func WithTimeout(d time.Duration) Option {
	return func(o *Options) error {
		if d <= 0 {
			return fmt.Errorf("harness: VM timeout %v must be positive", d)
		}
		o.Timeout = d
		return nil
	}
}

// FromEnv applies the RUNPHI_QEMU and RUNPHI_VM_TIMEOUT overrides.
func FromEnv() Option {
	return func(o *Options) error {
		if q := os.Getenv("RUNPHI_QEMU"); q != "" {
			o.QEMU = q
		}
		if s := os.Getenv("RUNPHI_VM_TIMEOUT"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				return fmt.Errorf("harness: RUNPHI_VM_TIMEOUT=%q: want a positive Go duration", s)
			}
			o.Timeout = d
		}
		return nil
	}
}

// Cmdline returns QEMU's argv (argv[0] is the binary). The guest gets no
// network card (-nic none avoids the iPXE ROM lookup) and no graphics; the
// PL011 console is QEMU's stdio.
func (o *Options) Cmdline() ([]string, error) {
	if o.Kernel == "" {
		return nil, ErrNoKernel
	}
	if o.Initramfs == "" {
		return nil, ErrNoInitramfs
	}
	if o.SMP < 1 {
		return nil, fmt.Errorf("harness: %d vCPUs", o.SMP)
	}
	args := []string{
		o.QEMU,
		"-machine", o.Machine,
		"-cpu", o.CPU,
		"-smp", strconv.Itoa(o.SMP),
		"-m", o.Memory,
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", o.Kernel,
		"-initrd", o.Initramfs,
		"-append", strings.Join(o.Append, " "),
	}
	return append(args, o.Args...), nil
}

// Quoted returns argv as a shell command line, for reproducing a run.
func Quoted(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
