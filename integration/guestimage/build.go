package guestimage

import (
	"bytes"
	"context"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Binary is one of our commands that goes into the guest.
type Binary struct {
	Name string   // file name in the guest's /usr/bin ("init" becomes /init)
	Dir  string   // package directory relative to the module root
	Tags []string // build tags
}

// Binaries lists our commands. runphi is the production build (no
// runphi_emu tag): in the guest it drives /dev/jailhouse through the jhctl
// library, served by jhemu in the emulated tier and by the real driver in
// the real tier, so the tested binary is the one users install.
func Binaries() []Binary {
	return []Binary{
		{Name: "init", Dir: "integration/guest/init"},
		{Name: "runphi", Dir: "runphi"},
		{Name: "jhctl", Dir: "jhctl"},
		{Name: "cellgen", Dir: "cellgen"},
		{Name: "jhemu", Dir: "integration/jhemu"},
	}
}

// Built is the outcome of Build.
type Built struct {
	Paths   map[string]string // name → host path of the arm64 binary
	Missing map[string]string // name → why there is no binary
	Failed  map[string]string // name → compiler output, for binaries whose package exists
}

// hasMain reports whether dir holds a non-test Go file of package main.
func hasMain(dir string) bool {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return false
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.PackageClauseOnly)
		if err == nil && af.Name.Name == "main" {
			return true
		}
	}
	return false
}

// Build compiles each binary whose main package exists as a static
// linux/arm64 executable into outDir. A package that does not exist yet is
// Missing; one that fails to compile is Failed (and Missing, so that the
// scenarios needing it skip with the reason).
func Build(ctx context.Context, goBin, modRoot, outDir string, bins []Binary) Built {
	b := Built{Paths: map[string]string{}, Missing: map[string]string{}, Failed: map[string]string{}}
	for _, bin := range bins {
		dir := filepath.Join(modRoot, bin.Dir)
		if !hasMain(dir) {
			b.Missing[bin.Name] = "no main package in " + bin.Dir + " yet"
			continue
		}
		out := filepath.Join(outDir, bin.Name)
		args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", out}
		if len(bin.Tags) > 0 {
			args = append(args, "-tags", strings.Join(bin.Tags, ","))
		}
		args = append(args, "./"+bin.Dir)
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = modRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
		var msg bytes.Buffer
		cmd.Stdout, cmd.Stderr = &msg, &msg
		if err := cmd.Run(); err != nil {
			b.Failed[bin.Name] = fmt.Sprintf("go %s: %v\n%s", strings.Join(args, " "), err, msg.String())
			b.Missing[bin.Name] = "build of " + bin.Dir + " failed (see the host test log)"
			continue
		}
		b.Paths[bin.Name] = out
	}
	return b
}
