// Package ociimage writes small container images as OCI image layout tar
// archives, the format `ctr image import` reads: oci-layout, index.json and
// blobs/sha256/ holding one gzip-compressed layer, the image configuration
// and the manifest. The scenarios build their test images with it in the
// guest (a ZIC image is a /boot/config.json and an inmate; a busybox image
// is the static busybox and its links), so no registry is needed.
//
// The output is deterministic: entries are sorted, parent directories are
// added, and every timestamp and owner is zero, so the same Image always
// has the same digests.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/runphi-go/runphi/internal/atomicfile"
)

// Media types and annotations of the OCI image specification, and the
// annotation containerd reads for an imported image's full name.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"

	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationImageName is the name `ctr image import` gives the image.
	AnnotationImageName = "io.containerd.image.name"

	// LayoutVersion is the content of the oci-layout file.
	LayoutVersion = "1.0.0"
)

// epoch is the modification time of every archive entry; a fixed time
// keeps digests stable.
var epoch = time.Unix(0, 0).UTC()

// Entry is one file system object of the image's layer.
type Entry struct {
	// Path inside the image, absolute or relative to its root
	// ("/boot/config.json"); cleaned, and it must not contain "..".
	Path string
	// Mode holds the permission bits, plus fs.ModeDir for a directory or
	// fs.ModeSymlink for a symbolic link.
	Mode fs.FileMode
	// Data is a regular file's content.
	Data []byte
	// Link is a symbolic link's target, written as given: tests use it
	// to build images whose links point outside the image.
	Link string
}

// File returns a regular file entry.
func File(p string, data []byte, perm fs.FileMode) Entry {
	return Entry{Path: p, Mode: perm.Perm(), Data: data}
}

// Dir returns a directory entry with mode 0755.
func Dir(p string) Entry { return Entry{Path: p, Mode: fs.ModeDir | 0o755} }

// Symlink returns a symbolic link entry.
func Symlink(p, target string) Entry {
	return Entry{Path: p, Mode: fs.ModeSymlink | 0o777, Link: target}
}

// Config is the part of the image configuration a runtime turns into the
// container's process (the "config" object of the OCI image config).
type Config struct {
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

// Image is what Write puts into the archive.
type Image struct {
	// Name is the full reference containerd stores the image under, e.g.
	// "docker.io/runphi/zic-demo:latest". Its tag (default "latest") is
	// the OCI ref.name.
	Name string
	// OS defaults to "linux"; Architecture is required ("arm64").
	OS           string
	Architecture string
	Config       Config
	Entries      []Entry
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Manifest is an OCI image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Index is an OCI image index (index.json).
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// ImageConfig is the OCI image configuration blob.
type ImageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       Config `json:"config"`
	RootFS       RootFS `json:"rootfs"`
}

// RootFS lists the uncompressed layer digests.
type RootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// Digest returns the "sha256:<hex>" digest of data.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Tag returns the tag of a reference: what follows the last ":" after
// the last "/", or "latest".
func Tag(ref string) string {
	name := ref[strings.LastIndexByte(ref, '/')+1:]
	if i := strings.LastIndexByte(name, ':'); i >= 0 && i < len(name)-1 {
		return name[i+1:]
	}
	return "latest"
}

// Layer returns the image's layer as an uncompressed tar, with the
// entries sorted by path and missing parent directories added.
func (img *Image) Layer() ([]byte, error) {
	entries, err := normalize(img.Entries)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.Path, Mode: int64(e.Mode.Perm()), ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case e.Mode.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.Path+"/"
		case e.Mode&fs.ModeSymlink != 0:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Link
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.Path, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.Data); err != nil {
				return nil, fmt.Errorf("layer entry %s: %w", e.Path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

// normalize checks and cleans the entries, adds missing parents and sorts
// them so that a directory precedes its contents.
func normalize(in []Entry) ([]Entry, error) {
	byPath := map[string]Entry{}
	for i, e := range in {
		p, err := cleanPath(e.Path)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		e.Path = p
		switch {
		case e.Mode&fs.ModeSymlink != 0:
			if e.Link == "" {
				return nil, fmt.Errorf("entry %s: symbolic link without a target", p)
			}
		case e.Mode.IsDir(), e.Mode.IsRegular():
		default:
			return nil, fmt.Errorf("entry %s: unsupported type %v", p, e.Mode.Type())
		}
		if _, dup := byPath[p]; dup {
			return nil, fmt.Errorf("entry %s: given twice", p)
		}
		byPath[p] = e
	}
	for p := range byPath {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			prev, ok := byPath[d]
			switch {
			case !ok:
				byPath[d] = Dir(d)
			case !prev.Mode.IsDir():
				return nil, fmt.Errorf("entry %s: parent %s is not a directory", p, d)
			}
		}
	}
	out := make([]Entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	// A parent is a prefix of its children's paths, so it sorts first.
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// cleanPath returns p relative to the image root, without "." or "..".
func cleanPath(p string) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("path %q contains NUL", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("path %q contains ..", p)
		}
	}
	c := strings.TrimPrefix(path.Clean("/"+p), "/")
	if c == "" {
		return "", fmt.Errorf("path %q names the image root", p)
	}
	return c, nil
}

// Write writes img to w as an OCI image layout tar archive and returns the
// manifest's descriptor.
func (img *Image) Write(w io.Writer) (Descriptor, error) {
	if img.Name == "" {
		return Descriptor{}, errors.New("image: no name")
	}
	if img.Architecture == "" {
		return Descriptor{}, fmt.Errorf("image %s: no architecture", img.Name)
	}
	osName := img.OS
	if osName == "" {
		osName = "linux"
	}
	layer, err := img.Layer()
	if err != nil {
		return Descriptor{}, fmt.Errorf("image %s: %w", img.Name, err)
	}
	var gz bytes.Buffer
	// Test images are built in an emulated guest: speed over size.
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return Descriptor{}, err
	}
	if _, err := zw.Write(layer); err != nil {
		return Descriptor{}, fmt.Errorf("image %s: layer: %w", img.Name, err)
	}
	if err := zw.Close(); err != nil {
		return Descriptor{}, fmt.Errorf("image %s: layer: %w", img.Name, err)
	}
	cfg, err := json.Marshal(ImageConfig{
		Architecture: img.Architecture,
		OS:           osName,
		Config:       img.Config,
		RootFS:       RootFS{Type: "layers", DiffIDs: []string{Digest(layer)}},
	})
	if err != nil {
		return Descriptor{}, fmt.Errorf("image %s: config: %w", img.Name, err)
	}
	man, err := json.Marshal(Manifest{
		SchemaVersion: 2,
		MediaType:     MediaTypeManifest,
		Config:        Descriptor{MediaType: MediaTypeConfig, Digest: Digest(cfg), Size: int64(len(cfg))},
		Layers:        []Descriptor{{MediaType: MediaTypeLayer, Digest: Digest(gz.Bytes()), Size: int64(gz.Len())}},
	})
	if err != nil {
		return Descriptor{}, fmt.Errorf("image %s: manifest: %w", img.Name, err)
	}
	desc := Descriptor{
		MediaType: MediaTypeManifest, Digest: Digest(man), Size: int64(len(man)),
		Annotations: map[string]string{AnnotationImageName: img.Name, AnnotationRefName: Tag(img.Name)},
	}
	index, err := json.Marshal(Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{desc}})
	if err != nil {
		return Descriptor{}, fmt.Errorf("image %s: index: %w", img.Name, err)
	}

	tw := tar.NewWriter(w)
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"` + LayoutVersion + `"}`)},
		{"index.json", index},
		{blobPath(Digest(gz.Bytes())), gz.Bytes()},
		{blobPath(Digest(cfg)), cfg},
		{blobPath(Digest(man)), man},
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return Descriptor{}, fmt.Errorf("image %s: %w", img.Name, err)
		}
	}
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return Descriptor{}, fmt.Errorf("image %s: %s: %w", img.Name, f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return Descriptor{}, fmt.Errorf("image %s: %s: %w", img.Name, f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return Descriptor{}, fmt.Errorf("image %s: %w", img.Name, err)
	}
	return desc, nil
}

// WriteFile writes img as an OCI image layout tar archive to path,
// atomically.
func (img *Image) WriteFile(path string) (Descriptor, error) {
	var buf bytes.Buffer
	desc, err := img.Write(&buf)
	if err != nil {
		return Descriptor{}, err
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return Descriptor{}, fmt.Errorf("image %s: %w", img.Name, err)
	}
	return desc, nil
}

// blobPath is where a blob lives in the layout.
func blobPath(digest string) string {
	return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:")
}

// ReadLayout reads an OCI layout tar archive back into its files (name →
// content, directories omitted); tests and the scenarios use it to check
// what they wrote.
func ReadLayout(r io.Reader) (map[string][]byte, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("layout: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("layout %s: %w", hdr.Name, err)
		}
		files[hdr.Name] = data
	}
}
