// Package route decides whether runphi runs a container as a ZIC (a
// Jailhouse cell) or forwards it to runc.
//
// The decision is taken once, at create, from the bundle (Decide):
//
//  1. the annotation org.runphi.runtime: "runphi" makes a ZIC, "runc"
//     forwards; any other value is an error rather than a guess;
//  2. a CRI sandbox (pause) container is forwarded:
//     io.kubernetes.cri.container-type=sandbox (containerd) or
//     io.kubernetes.cri-o.ContainerType=sandbox (CRI-O);
//  3. otherwise the container is a ZIC if and only if its root
//     filesystem holds /boot/config.json (root.path is resolved against
//     the bundle when relative).
//
// The decision is recorded by where the container's state lives: a ZIC has
// a directory under runphi's state root, a forwarded container has none.
// Every later verb asks only that (Owned), which costs one stat, so calls
// for runc's containers reach runc with almost no delay.
//
// runphi's state is kept apart from runc's --root (runc's list complains
// about directories it does not understand), but keyed by it: containerd
// runs one runc root per namespace and ids may repeat across namespaces.
// A ZIC's directory is therefore <state_root>/<Namespace(runc root)>/<id>.
package route

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/runphi-go/runphi/cellgen/descriptor"
)

// Annotation keys read at create.
const (
	// AnnotationRuntime forces the decision: ValueRunphi or ValueRunc.
	AnnotationRuntime = "org.runphi.runtime"
	ValueRunphi       = "runphi"
	ValueRunc         = "runc"

	AnnotationCRIContainerType  = "io.kubernetes.cri.container-type"
	AnnotationCRIOContainerType = "io.kubernetes.cri-o.ContainerType"
	ContainerTypeSandbox        = "sandbox"
)

// Decision is the outcome of Decide.
type Decision struct {
	ZIC bool
	// Reason says why, for the debug log.
	Reason string
}

// Bundle is the part of an OCI config.json the decision reads. Decoding
// only these fields keeps forwarded creates cheap.
type Bundle struct {
	Dir         string            `json:"-"` // absolute bundle directory
	Root        *Root             `json:"root"`
	Annotations map[string]string `json:"annotations"`
}

// Root is the spec's root section.
type Root struct {
	Path string `json:"path"`
}

// ReadBundle reads the decision inputs from dir/config.json. dir must be
// absolute.
func ReadBundle(dir string) (*Bundle, error) {
	p := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("bundle config: %w", err)
	}
	b := &Bundle{Dir: dir}
	if err := json.Unmarshal(data, b); err != nil {
		return nil, fmt.Errorf("bundle config %s: %w", p, err)
	}
	return b, nil
}

// Rootfs returns the host path of the container's root filesystem.
func (b *Bundle) Rootfs() (string, error) {
	if b.Root == nil || b.Root.Path == "" {
		return "", errors.New("bundle config: root.path is not set")
	}
	if filepath.IsAbs(b.Root.Path) {
		return filepath.Clean(b.Root.Path), nil
	}
	return filepath.Join(b.Dir, b.Root.Path), nil
}

// Decide applies the rules in the package comment.
func Decide(b *Bundle) (Decision, error) {
	if v, ok := b.Annotations[AnnotationRuntime]; ok {
		switch v {
		case ValueRunphi:
			return Decision{ZIC: true, Reason: AnnotationRuntime + "=" + v}, nil
		case ValueRunc:
			return Decision{ZIC: false, Reason: AnnotationRuntime + "=" + v}, nil
		}
		return Decision{}, fmt.Errorf("annotation %s: unknown value %q (want %q or %q)", AnnotationRuntime, v, ValueRunphi, ValueRunc)
	}
	for _, k := range []string{AnnotationCRIContainerType, AnnotationCRIOContainerType} {
		if b.Annotations[k] == ContainerTypeSandbox {
			return Decision{ZIC: false, Reason: k + "=" + ContainerTypeSandbox}, nil
		}
	}
	rootfs, err := b.Rootfs()
	if err != nil {
		return Decision{}, err
	}
	zic, err := descriptor.IsZIC(rootfs)
	if err != nil {
		return Decision{}, err
	}
	if zic {
		return Decision{ZIC: true, Reason: "rootfs has " + descriptor.DescriptorPath}, nil
	}
	return Decision{ZIC: false, Reason: "rootfs has no " + descriptor.DescriptorPath}, nil
}

// DefaultRuncRoot is runc's --root when none is given and runc does not
// use $XDG_RUNTIME_DIR.
const DefaultRuncRoot = "/run/runc"

// RuncRoot returns the state directory runc uses for this call, as runc
// computes it: the --root value made absolute if given (set), else
// $XDG_RUNTIME_DIR/runc for a non-root user with that variable set, else
// /run/runc. (runc also honours $XDG_RUNTIME_DIR for uid 0 inside a user
// namespace; runphi, which needs real root for Jailhouse, does not.)
func RuncRoot(flag string, set bool, euid int, xdgRuntimeDir string) (string, error) {
	if !set {
		if euid != 0 && xdgRuntimeDir != "" {
			return filepath.Join(xdgRuntimeDir, "runc"), nil
		}
		return DefaultRuncRoot, nil
	}
	root, err := filepath.Abs(flag)
	if err != nil {
		return "", fmt.Errorf("--root %q: %w", flag, err)
	}
	if root == "/" {
		return "", errors.New("option --root argument should not be set to /")
	}
	return root, nil
}

// maxName is the longest directory name Namespace produces before it
// falls back to a digest (NAME_MAX is 255).
const maxName = 200

// Namespace turns a runc root (absolute) into one directory name,
// readable and injective in the systemd-escape style: the leading slash is
// dropped, "/" becomes "-", and bytes other than letters, digits, "_" and
// a "." that does not start a component become \xNN ("-" included, so no
// two roots share a name). A name longer than maxName is replaced by "="
// and the SHA-256 of the path; escaping never emits "=", so the two forms
// cannot collide.
func Namespace(runcRoot string) string {
	p := strings.TrimPrefix(filepath.Clean(runcRoot), "/")
	if p == "" {
		return "-"
	}
	var sb strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			sb.WriteByte('-')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
			sb.WriteByte(c)
		case c == '.' && i > 0 && p[i-1] != '/':
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, `\x%02x`, c)
		}
	}
	if sb.Len() > maxName {
		return digestName(p)
	}
	return sb.String()
}

// Dir returns the state directory holding runphi's ZICs for one runc root.
func Dir(stateRoot, runcRoot string) string {
	return filepath.Join(stateRoot, Namespace(runcRoot))
}

// PlausibleID reports whether id can name a state directory at all:
// non-empty, no "/", not "." or "..", no NUL. An implausible id is never
// runphi's, so its call goes to runc, which reports the error. The full
// validation (runc's character set) happens at create.
func PlausibleID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/\x00")
}

// Owned reports whether runphi holds state for id in dir (a Dir result):
// one stat. Any failure to see the directory means "not ours"; runc then
// reports its own error for the id.
func Owned(dir, id string) bool {
	if !PlausibleID(id) {
		return false
	}
	fi, err := os.Stat(dir + "/" + id)
	return err == nil && fi.IsDir()
}

// HasAny reports whether dir exists, i.e. runphi may hold ZICs under that
// runc root (list only merges when it does).
func HasAny(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}

func digestName(p string) string {
	sum := sha256.Sum256([]byte(p))
	return "=" + hex.EncodeToString(sum[:])
}
