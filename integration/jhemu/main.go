//go:build linux

// Command jhemu emulates the Jailhouse driver and hypervisor without
// hardware: it serves /dev/jailhouse through CUSE (modules fuse and cuse)
// and renders the driver's sysfs tree into a directory, so that jhctl,
// runphi or the upstream tools (pointed at that directory) can be tried on
// configurations. Every ioctl is checked as the real driver and hypervisor
// check it, with the same errno; see package jhctl/emu.
//
//	jhemu [--device-name jailhouse] [--sysfs DIR | --state DIR] [--cpus LIST]
//
// With --state the emulated hypervisor lives in DIR (state, lock and
// DIR/sysfs), shared with processes using emu.Opener(DIR); otherwise it is
// kept in memory. jhemu runs until SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/runphi-go/runphi/cellgen/cpuset"
	"github.com/runphi-go/runphi/integration/cuse"
	"github.com/runphi-go/runphi/jhctl/emu"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "jhemu:", err)
			stop()
			os.Exit(1)
		}
	}
}

// options are the command line.
type options struct {
	devName  string
	sysfs    string
	state    string
	cpus     string
	noFW     bool
	maxImage uint64
	ready    string
	logLevel string
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := pflag.NewFlagSet("jhemu", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.devName, "device-name", "jailhouse", "device name: /dev/NAME")
	fs.StringVar(&o.sysfs, "sysfs", "", "directory for the sysfs tree (default /run/jhemu/sysfs, or STATE/sysfs with --state)")
	fs.StringVar(&o.state, "state", "", "keep the emulated hypervisor in this directory, shared with emu.Opener users")
	fs.StringVar(&o.cpus, "cpus", "", "the machine's online CPUs, e.g. 0-15 (default: whatever the root cell names)")
	fs.BoolVar(&o.noFW, "no-firmware", false, "simulate a missing jailhouse.bin (enable fails with ENOENT)")
	fs.Uint64Var(&o.maxImage, "max-image", 0, "largest preload image in bytes (default 1 GiB)")
	fs.StringVar(&o.ready, "ready-file", "", "create this file once the device exists")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug (every ioctl), info, warn or error")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.state != "" && o.sysfs != "" {
		return o, errors.New("--sysfs and --state exclude each other (the tree is STATE/sysfs)")
	}
	if o.state == "" && o.sysfs == "" {
		o.sysfs = "/run/jhemu/sysfs"
	}
	return o, nil
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts := emu.Options{NoFirmware: o.noFW, MaxImage: o.maxImage}
	if o.cpus != "" {
		if opts.CPUs, err = cpuset.Parse(o.cpus); err != nil {
			return fmt.Errorf("--cpus: %w", err)
		}
	}
	engine, sysfs, err := newEngine(o, opts)
	if err != nil {
		return err
	}
	cfg := cuse.Config{
		DevName: o.devName,
		Logger:  log,
		Ready: func() {
			log.Info("serving", "device", "/dev/"+o.devName, "sysfs", sysfs)
			if o.ready != "" {
				if err := os.WriteFile(o.ready, nil, 0o644); err != nil {
					log.Error("ready file", "err", err)
				}
			}
		},
	}
	return cuse.Serve(ctx, cfg, newDevice(engine, log))
}

// newEngine keeps the hypervisor in memory or, with --state, in a
// directory (reusing its state if it has one).
func newEngine(o options, opts emu.Options) (emu.Engine, string, error) {
	if o.state == "" {
		e, err := emu.NewShared(emu.New(opts), o.sysfs)
		return e, o.sysfs, err
	}
	d, err := emu.OpenDir(o.state)
	if err != nil {
		d, err = emu.InitDir(o.state, opts)
	}
	if err != nil {
		return nil, "", err
	}
	return d, d.Sysfs(), nil
}
