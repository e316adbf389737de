// Package forward hands a call over to the stock runc: it replaces the
// runphi process with runc (execve), keeping the argv after argv[0], the
// environment and the open file descriptors. runc's stdio, signal handling
// and exit status are therefore exactly runc's own; runphi never waits for
// it and never sees its result.
//
// Resolve finds the runc binary and refuses runphi itself, so a
// configuration mistake cannot make runphi exec itself in a loop.
package forward

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// SelfExe is the path the kernel keeps pointing at the running executable,
// even when the binary was reached through a symlink or renamed.
const SelfExe = "/proc/self/exe"

// ErrSelf means the configured runc is runphi's own binary.
var ErrSelf = errors.New("is runphi itself")

// Resolver finds the runc binary. Self is the running executable
// (SelfExe) and Path the search path ($PATH); both are fields so tests can
// point them elsewhere.
type Resolver struct {
	Self string
	Path string
}

// Resolve returns the absolute path of runc. A name containing a slash is
// used as it is and is an error if it is runphi's own binary. A bare name
// is searched for in r.Path like exec.LookPath does, except that entries
// which are runphi itself are skipped: runphi may be installed as "runc"
// ahead of the real one. Relative directories in the search path are
// ignored, as exec.LookPath refuses them too.
func (r Resolver) Resolve(name string) (string, error) {
	if name == "" {
		return "", errors.New("runc path is empty")
	}
	if strings.ContainsRune(name, '/') {
		self, err := r.isSelf(name)
		switch {
		case err != nil:
			return "", fmt.Errorf("runc path %s: %w", name, err)
		case self:
			return "", fmt.Errorf("runc path %s %w", name, ErrSelf)
		}
		return name, nil
	}
	skipped := ""
	for _, dir := range filepath.SplitList(r.Path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		self, err := r.isSelf(p)
		switch {
		case err != nil:
			continue
		case self:
			skipped = p
			continue
		}
		return p, nil
	}
	if skipped != "" {
		return "", fmt.Errorf("runc %q: the only match in $PATH, %s, %w; set \"runc\" in the runphi config or RUNPHI_RUNC", name, skipped, ErrSelf)
	}
	return "", fmt.Errorf("runc %q: executable file not found in $PATH", name)
}

// isSelf stats p, checks that it is an executable file and reports
// whether it is the running binary.
func (r Resolver) isSelf(p string) (bool, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return false, fmt.Errorf("not an executable file: %w", fs.ErrPermission)
	}
	self, err := os.Stat(r.Self)
	if err != nil {
		// Without /proc the check cannot be made; runc is still usable.
		return false, nil
	}
	return os.SameFile(fi, self), nil
}

// Exec replaces the process with the runc at path, giving it argv
// [path, args...] and env. It returns only on failure.
func Exec(path string, args, env []string) error {
	argv := make([]string, 0, len(args)+1)
	argv = append(argv, path)
	argv = append(argv, args...)
	if err := unix.Exec(path, argv, env); err != nil {
		return fmt.Errorf("exec runc %s: %w", path, err)
	}
	return nil
}
