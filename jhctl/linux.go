package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/jhctl/celllinux"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

// defaultLoader is where distributions install the arm64 linux-loader.
const defaultLoader = "/usr/libexec/jailhouse/linux-loader.bin"

const linuxSynopsis = "cell linux CELLCONFIG KERNEL [-d DTB] [-i INITRD] [-c CMDLINE] [-k FACTOR] [-w OUTFILE] [--loader PATH]"

// cellLinux boots an arm64 Linux kernel in a new cell: create the cell,
// load the loader, kernel, edited device tree, initrd and loader parameters
// one image at a time, and start it. With -w it only writes the device tree
// and prints equivalent jhctl commands.
func (a *app) cellLinux(args []string) error {
	fs := a.flagSet("cell linux", linuxSynopsis)
	dtbPath := fs.StringP("dtb", "d", "", "device tree for the kernel (required)")
	initrdPath := fs.StringP("initrd", "i", "", "initrd or initramfs for the kernel")
	cmdline := fs.StringP("cmdline", "c", "", "kernel command line")
	factor := fs.IntP("kernel-decomp-factor", "k", 0, "space left between kernel and initrd, in kernel sizes (default 1)")
	outPath := fs.StringP("write-params", "w", "", "only write the edited device tree to `OUTFILE` and print the commands that boot Linux")
	loaderPath := fs.String("loader", defaultLoader, "the linux-loader inmate image")
	arch := fs.StringP("arch", "a", "arm64", "target architecture; only arm64 is supported")
	if err := parse(fs, args); err != nil {
		return helpDone(err)
	}
	if fs.NArg() != 2 {
		return usagef("cell linux: expected CELLCONFIG and KERNEL, got %d arguments", fs.NArg())
	}
	if *arch != "arm64" {
		return usagef("cell linux: architecture %q is not supported, only arm64", *arch)
	}
	if *dtbPath == "" {
		return usagef("cell linux: no device tree specified (-d DTB)")
	}
	if *factor < 0 {
		return usagef("cell linux: -k %d: the factor must not be negative", *factor)
	}
	configPath, kernelPath := fs.Arg(0), fs.Arg(1)

	cfg, cfgBytes, err := readCellConfig(configPath)
	if err != nil {
		return err
	}
	kernel, err := readFile(kernelPath)
	if err != nil {
		return err
	}
	dtb, err := readFile(*dtbPath)
	if err != nil {
		return err
	}
	var initrd []byte
	if fs.Changed("initrd") {
		if initrd, err = readFile(*initrdPath); err != nil {
			return err
		}
	}
	layout, err := celllinux.Plan(cfg, kernel, dtb, initrd, *cmdline, *factor)
	if err != nil {
		return fmt.Errorf("cell linux: %s: %w", configPath, err)
	}

	if fs.Changed("write-params") {
		if err := os.WriteFile(*outPath, layout.DTB, 0o644); err != nil {
			return fmt.Errorf("cell linux: writing the device tree: %w", err)
		}
		return writeLinuxCommands(a.stdout, linuxFiles{
			Config: configPath, Kernel: kernelPath, Initrd: *initrdPath, DTB: *outPath, Loader: *loaderPath,
		}, cfg.Name, layout)
	}

	loader, err := readFile(*loaderPath)
	if err != nil {
		return fmt.Errorf("cell linux: loader: %w", err)
	}
	return bootLinux(a.client(), cfg, cfgBytes, layout, loader)
}

// bootLinux creates (or reuses) the cell, loads each image with its own
// CELL_LOAD, in upstream's order, and starts the cell.
func bootLinux(c *jailhouse.Client, cfg *cell.Cell, cfgBytes []byte, l *celllinux.Layout, loader []byte) error {
	if _, err := c.CreateCell(cfgBytes); err != nil {
		if !errors.Is(err, jailhouse.ErrCellExists) {
			return err
		}
		// Reusing the existing cell, as upstream does; tell the client its
		// configuration so it can check the images against it.
		c.AddCellConfig(cfg)
	}
	ref, err := jailhouse.ByName(cfg.Name)
	if err != nil {
		return err
	}
	for _, img := range l.Images(loader) {
		if err := c.LoadCell(ref, jailhouse.Image{Data: img.Data, Address: img.Address}); err != nil {
			return fmt.Errorf("loading the %s at %#x: %w", img.Name, img.Address, err)
		}
	}
	return c.StartCell(ref)
}

// linuxFiles are the paths the printed commands refer to.
type linuxFiles struct {
	Config, Kernel, Initrd, DTB, Loader string
}

// writeLinuxCommands prints the jhctl commands that do what cell linux
// would have done, loading the device tree from files.DTB.
func writeLinuxCommands(w io.Writer, files linuxFiles, name string, l *celllinux.Layout) error {
	kernel := files.Kernel
	if l.KernelGzip {
		kernel += "-unzipped"
	}
	cellArg := shellQuote(name)
	if ref, err := jailhouse.ParseCellRef(name); err != nil || ref.ID >= 0 {
		// A name that reads as a number would address a cell id.
		cellArg = "--name " + cellArg
	}
	var b strings.Builder
	b.WriteString("Modified device tree written. Start Linux with the following commands (adjusting paths as needed):\n\n")
	fmt.Fprintf(&b, "jhctl cell create %s\n", shellQuote(files.Config))
	fmt.Fprintf(&b, "jhctl cell load %s %s -a 0x%x -s \"%s\" -a 0x%x %s -a 0x%x ",
		cellArg, shellQuote(files.Loader), l.LoaderAddr, l.Params, l.ParamsAddr, shellQuote(kernel), l.KernelAddr)
	if l.Initrd != nil {
		fmt.Fprintf(&b, "%s -a 0x%x ", shellQuote(files.Initrd), l.RamdiskAddr)
	}
	fmt.Fprintf(&b, "%s -a 0x%x\n", shellQuote(files.DTB), l.DTBAddr)
	fmt.Fprintf(&b, "jhctl cell start %s\n", cellArg)
	if l.KernelGzip {
		fmt.Fprintf(&b, "\nNote that %s is zipped and requires decompression first.\n", files.Kernel)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// shellQuote quotes s for a POSIX shell unless it needs no quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=@%+,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
