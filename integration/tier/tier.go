// Package tier prepares one tier of the QEMU integration run, the emulated
// Jailhouse (jhemu) or the real one (RUNPHI_JAILHOUSE_IMAGE): it builds our
// arm64 binaries, composes the guest's initramfs for the tier and returns
// the QEMU options that boot it with the chosen scenarios. The Go test
// (integration_test.go) and the narrated demo (Demo, integration/cmd/demo)
// boot the same guest through it.
package tier

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/runphi-go/runphi/integration/guestimage"
	"github.com/runphi-go/runphi/integration/harness"
	"github.com/runphi-go/runphi/integration/initramfs"
	"github.com/runphi-go/runphi/integration/scenarios"
)

// ImageEnv names the directory of the real tier (Image and rootfs.cpio).
const ImageEnv = "RUNPHI_JAILHOUSE_IMAGE"

// Tier is one way of booting the guest.
type Tier struct {
	Mode scenarios.Mode
	Spec guestimage.Spec
	// Base is the real tier's rootfs.cpio, which our archive is appended
	// to; empty for the emulated tier.
	Base string
	QEMU []harness.Option
}

// GoBinary returns the go command to build with.
func GoBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// ModRoot returns the module root: the nearest directory at or above dir
// holding go.mod.
func ModRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod at or above %s", dir)
		}
		d = parent
	}
}

// Build compiles the guest's binaries (guestimage.Binaries) into outDir.
func Build(ctx context.Context, modRoot, outDir string) guestimage.Built {
	return guestimage.Build(ctx, GoBinary(), modRoot, outDir, guestimage.Binaries())
}

// Emulated returns the emulated tier: the cached (or RUNPHI_TEST_KERNEL)
// kernel, jhemu serving /dev/jailhouse, two vCPUs.
func Emulated(modRoot string, built guestimage.Built, in guestimage.Inputs) *Tier {
	all, req := guestimage.EmulatedModules()
	return &Tier{
		Mode: scenarios.Emulated,
		Spec: guestimage.Spec{
			Mode: scenarios.Emulated, Binaries: built, Inputs: in, Modules: all, Required: req,
			BoardsDir: filepath.Join(modRoot, "boards"),
		},
		QEMU: []harness.Option{harness.WithSMP(2)},
	}
}

// Real returns the real tier for imageDir, which holds a Jailhouse-capable
// Image and a rootfs.cpio with the driver, firmware and demo inmates.
func Real(modRoot, imageDir string, built guestimage.Built, in guestimage.Inputs) *Tier {
	all, req := guestimage.RealModules()
	in.Kernel, in.Modules, in.Release = filepath.Join(imageDir, "Image"), "", ""
	return &Tier{
		Mode: scenarios.Real,
		Spec: guestimage.Spec{
			Mode: scenarios.Real, Binaries: built, Inputs: in, Modules: all, Required: req,
			BoardsDir: filepath.Join(modRoot, "boards"),
		},
		Base: filepath.Join(imageDir, "rootfs.cpio"),
		// jailhouse-abi.md §10: 16 CPUs (the root cell's CPU set), 1 GiB
		// with Linux kept below 768 MiB, no ITS.
		QEMU: []harness.Option{
			harness.WithMachine("virt,gic-version=3,virtualization=on,its=off"),
			harness.WithSMP(16), harness.WithAppendKernel("mem=768M"),
		},
	}
}

// Image is a composed initramfs.
type Image struct {
	Path    string
	Size    int64
	Entries int
	Took    time.Duration
	// Lacks lists what the real tier's rootfs.cpio is missing; the
	// scenarios that need it will fail.
	Lacks []string
}

// Compose writes the tier's initramfs into dir: appended to Base in the
// real tier, gzip-compressed if gzip is set (emulated tier only).
func (t *Tier) Compose(dir string, gzip bool) (*Image, error) {
	start := time.Now()
	spec := t.Spec
	img := &Image{Path: filepath.Join(dir, "initramfs.cpio")}
	if t.Base != "" {
		idx, err := initramfs.Index(t.Base)
		if err != nil {
			return nil, err
		}
		spec.Base = idx
		img.Lacks = lacks(idx)
	}
	a, err := guestimage.Compose(spec)
	if err != nil {
		return nil, err
	}
	compression := initramfs.None
	if gzip && t.Base == "" {
		compression, img.Path = initramfs.Gzip, img.Path+".gz"
	}
	if t.Base != "" {
		err = initramfs.Append(img.Path, t.Base, a)
	} else {
		err = a.WriteFile(img.Path, compression)
	}
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(img.Path)
	if err != nil {
		return nil, err
	}
	img.Size, img.Entries, img.Took = fi.Size(), len(a.Names()), time.Since(start)
	return img, nil
}

// lacks reports what a real tier's rootfs is missing.
func lacks(idx map[string]os.FileMode) []string {
	var missing []string
	hasModule := false
	for name := range idx {
		if strings.HasPrefix(name, "lib/modules/") && filepath.Base(name) == "jailhouse.ko" {
			hasModule = true
		}
	}
	if !hasModule {
		missing = append(missing, "jailhouse.ko under lib/modules")
	}
	for _, p := range []string{"lib/firmware/jailhouse.bin", "usr/libexec/jailhouse/linux-loader.bin"} {
		if _, ok := idx[p]; !ok {
			missing = append(missing, p)
		}
	}
	return missing
}

// Options returns the QEMU options that boot initramfs with the scenarios
// named (the kernel argument runphi.run), after the RUNPHI_QEMU and
// RUNPHI_VM_TIMEOUT overrides. A selection equal to the default set passes
// no names.
func (t *Tier) Options(initramfs string, names []string) (*harness.Options, error) {
	opts := append([]harness.Option{harness.WithKernel(t.Spec.Inputs.Kernel), harness.WithInitramfs(initramfs)}, t.QEMU...)
	defaults := scenarios.Names(scenarios.Defaults(scenarios.All()))
	if len(names) > 0 && !slices.Equal(names, defaults) {
		opts = append(opts, harness.WithAppendKernel(scenarios.KernelArgRun+"="+strings.Join(names, ",")))
	}
	opts = append(opts, harness.FromEnv())
	return harness.New(opts...)
}
