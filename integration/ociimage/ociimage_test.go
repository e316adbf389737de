package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func zicImage() *Image {
	return &Image{
		Name:         "docker.io/runphi/zic-test:v1",
		Architecture: "arm64",
		Config:       Config{Cmd: []string{"/boot/boot.bin"}, Env: []string{"PATH=/bin"}},
		Entries: []Entry{
			File("/boot/config.json", []byte(`{"os_var":"baremetal"}`), 0o644),
			File("boot/boot.bin", []byte("inmate"), 0o755),
			Symlink("/bin/sh", "busybox"),
			Dir("/tmp"),
		},
	}
}

// layerEntry is what a layer holds for one path.
type layerEntry struct {
	Type byte
	Mode int64
	Data string
	Link string
}

// readImage reads a layout archive back and checks every reference in it:
// blobs named by their digest, the index naming the manifest, the manifest
// naming config and layer, the config naming the layer's uncompressed
// digest. It returns the config and the layer's entries.
func readImage(t *testing.T, archive []byte, wantName string) (ImageConfig, map[string]layerEntry) {
	t.Helper()
	files, err := ReadLayout(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %q", got)
	}
	for name, data := range files {
		if strings.HasPrefix(name, "blobs/sha256/") && "sha256:"+strings.TrimPrefix(name, "blobs/sha256/") != Digest(data) {
			t.Errorf("blob %s holds content of digest %s", name, Digest(data))
		}
	}
	blob := func(d Descriptor) []byte {
		data, ok := files[blobPath(d.Digest)]
		if !ok {
			t.Fatalf("blob %s (%s) missing", d.Digest, d.MediaType)
		}
		if int64(len(data)) != d.Size {
			t.Fatalf("blob %s: %d bytes, descriptor says %d", d.Digest, len(data), d.Size)
		}
		return data
	}
	var idx Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != MediaTypeIndex || len(idx.Manifests) != 1 {
		t.Fatalf("index = %+v", idx)
	}
	md := idx.Manifests[0]
	if md.Annotations[AnnotationImageName] != wantName || md.Annotations[AnnotationRefName] != Tag(wantName) {
		t.Errorf("manifest annotations = %v", md.Annotations)
	}
	var man Manifest
	if err := json.Unmarshal(blob(md), &man); err != nil {
		t.Fatal(err)
	}
	if man.MediaType != MediaTypeManifest || len(man.Layers) != 1 || man.Layers[0].MediaType != MediaTypeLayer {
		t.Fatalf("manifest = %+v", man)
	}
	var cfg ImageConfig
	if err := json.Unmarshal(blob(man.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(man.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{Digest(layer)}, cfg.RootFS.DiffIDs); diff != "" {
		t.Errorf("diff_ids do not name the uncompressed layer (-want +got):\n%s", diff)
	}
	entries := map[string]layerEntry{}
	tr := tar.NewReader(bytes.NewReader(layer))
	var order []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		name := strings.TrimSuffix(hdr.Name, "/")
		order = append(order, name)
		entries[name] = layerEntry{Type: hdr.Typeflag, Mode: hdr.Mode, Data: string(data), Link: hdr.Linkname}
	}
	// A directory must precede what it contains.
	seen := map[string]bool{}
	for _, n := range order {
		if d := filepath.Dir(n); d != "." && !seen[d] {
			t.Errorf("layer entry %s comes before its directory %s", n, d)
		}
		seen[n] = true
	}
	return cfg, entries
}

func TestWrite(t *testing.T) {
	img := zicImage()
	var buf bytes.Buffer
	desc, err := img.Write(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != MediaTypeManifest || desc.Annotations[AnnotationImageName] != img.Name {
		t.Errorf("descriptor = %+v", desc)
	}
	cfg, entries := readImage(t, buf.Bytes(), img.Name)
	if cfg.Architecture != "arm64" || cfg.OS != "linux" {
		t.Errorf("platform %s/%s, want linux/arm64", cfg.OS, cfg.Architecture)
	}
	if diff := cmp.Diff(img.Config, cfg.Config); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
	want := map[string]layerEntry{
		"bin":              {Type: tar.TypeDir, Mode: 0o755},
		"bin/sh":           {Type: tar.TypeSymlink, Mode: 0o777, Link: "busybox"},
		"boot":             {Type: tar.TypeDir, Mode: 0o755},
		"boot/boot.bin":    {Type: tar.TypeReg, Mode: 0o755, Data: "inmate"},
		"boot/config.json": {Type: tar.TypeReg, Mode: 0o644, Data: `{"os_var":"baremetal"}`},
		"tmp":              {Type: tar.TypeDir, Mode: 0o755},
	}
	if diff := cmp.Diff(want, entries); diff != "" {
		t.Errorf("layer mismatch (-want +got):\n%s", diff)
	}
}

func TestWriteDeterministic(t *testing.T) {
	a, b := zicImage(), zicImage()
	// The same entries in another order make the same image.
	b.Entries[0], b.Entries[3] = b.Entries[3], b.Entries[0]
	var ba, bb bytes.Buffer
	da, err := a.Write(&ba)
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.Write(&bb)
	if err != nil {
		t.Fatal(err)
	}
	if da.Digest != db.Digest || !bytes.Equal(ba.Bytes(), bb.Bytes()) {
		t.Errorf("digests %s and %s: the same image written twice differs", da.Digest, db.Digest)
	}
	b.Entries[1].Data = []byte("other inmate")
	bb.Reset()
	if db, err = b.Write(&bb); err != nil {
		t.Fatal(err)
	}
	if da.Digest == db.Digest {
		t.Error("different content, same manifest digest")
	}
}

func TestWriteRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Image)
		want string
	}{
		{"no name", func(i *Image) { i.Name = "" }, "no name"},
		{"no arch", func(i *Image) { i.Architecture = "" }, "no architecture"},
		{"dotdot", func(i *Image) { i.Entries = append(i.Entries, File("/boot/../../etc/x", nil, 0o644)) }, "contains .."},
		{"root", func(i *Image) { i.Entries = append(i.Entries, Dir("/")) }, "image root"},
		{"duplicate", func(i *Image) { i.Entries = append(i.Entries, File("boot/config.json", nil, 0o644)) }, "given twice"},
		{"link without target", func(i *Image) { i.Entries = append(i.Entries, Symlink("/x", "")) }, "without a target"},
		{"file as parent", func(i *Image) { i.Entries = append(i.Entries, File("/boot/boot.bin/x", nil, 0o644)) }, "not a directory"},
		{"device", func(i *Image) { i.Entries = append(i.Entries, Entry{Path: "/dev/null", Mode: fs.ModeDevice}) }, "unsupported type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := zicImage()
			tt.edit(img)
			_, err := img.Write(io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Write error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestHostileLinksKept(t *testing.T) {
	// Test images must be able to carry links that leave the image: the
	// runtime, not the image builder, has to refuse them.
	img := zicImage()
	img.Entries = append(img.Entries, Symlink("/boot/abs.bin", "/etc/passwd"), Symlink("/boot/rel.bin", "../../../etc/passwd"))
	var buf bytes.Buffer
	if _, err := img.Write(&buf); err != nil {
		t.Fatal(err)
	}
	_, entries := readImage(t, buf.Bytes(), img.Name)
	for p, target := range map[string]string{"boot/abs.bin": "/etc/passwd", "boot/rel.bin": "../../../etc/passwd"} {
		if e := entries[p]; e.Type != tar.TypeSymlink || e.Link != target {
			t.Errorf("%s = %+v, want a link to %s", p, e, target)
		}
	}
}

func TestWriteFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "img.tar")
	desc, err := zicImage().WriteFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	files, err := ReadLayout(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files[blobPath(desc.Digest)]; !ok {
		t.Errorf("file lacks the manifest blob %s", desc.Digest)
	}
}

func TestTag(t *testing.T) {
	for ref, want := range map[string]string{
		"docker.io/runphi/zic:v1":    "v1",
		"docker.io/runphi/zic":       "latest",
		"localhost:5000/zic":         "latest",
		"localhost:5000/zic:2.0":     "2.0",
		"zic:":                       "latest",
		"registry.example.com/a/b:c": "c",
	} {
		if got := Tag(ref); got != want {
			t.Errorf("Tag(%q) = %q, want %q", ref, got, want)
		}
	}
}
