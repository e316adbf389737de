package packaging

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// containerdMajor returns the path and major version of the containerd
// binary, skipping the test when there is none.
func containerdMajor(t *testing.T) (string, int) {
	t.Helper()
	bin, err := exec.LookPath("containerd")
	if err != nil {
		t.Skip("containerd not installed (Debian: apt-get install containerd); the documented snippets are not checked against containerd's parser")
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("containerd --version: %v", err)
	}
	m := regexp.MustCompile(`\sv?(\d+)\.\d+\.\d+`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("containerd --version: no version in %q", out)
	}
	major, _ := strconv.Atoi(string(m[1]))
	return bin, major
}

// configDump runs "containerd --config file config dump", which loads
// the file and its imports through containerd's own code and prints the
// merged configuration.
func configDump(t *testing.T, bin, file string) tomlTables {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config", file, "config", "dump")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("containerd --config %s config dump: %v\n%s", file, err, stderr.Bytes())
	}
	return parseTOMLTables(string(out))
}

// TestContainerdLoadsSnippet drives the containerd snippet for the
// installed containerd's major version through containerd, both as the
// whole configuration and imported into a minimal config.toml as the
// docs describe, and checks that the merged configuration has the runphi
// handler with its binary, and still the runc handler CRI defaults to.
func TestContainerdLoadsSnippet(t *testing.T) {
	bin, major := containerdMajor(t)
	var snippet, cri string
	switch major {
	case 1:
		snippet, cri = "containerd-runphi.toml", `plugins."io.containerd.grpc.v1.cri".containerd`
	case 2:
		snippet, cri = "containerd2-runphi.toml", `plugins."io.containerd.cri.v1.runtime".containerd`
	default:
		t.Skipf("containerd %d.x: no snippet for this major version", major)
	}
	src, err := filepath.Abs(filepath.Join(repoRoot, "packaging", snippet))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	main := filepath.Join(dir, "config.toml")
	version := parseTOMLTables(readRepoFile(t, "packaging/"+snippet))[""]["version"]
	minimal := "version = " + version + "\nimports = [\"" + src + "\"]\n"
	if err := os.WriteFile(main, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, file string }{
		{"alone", src},
		{"imported", main},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dump := configDump(t, bin, tc.file)
			checks := []struct{ table, key, want string }{
				{cri + ".runtimes.runphi", "runtime_type", `"io.containerd.runc.v2"`},
				{cri + ".runtimes.runphi", "pod_annotations", `["org.runphi.*"]`},
				{cri + ".runtimes.runphi", "container_annotations", `["org.runphi.*"]`},
				{cri + ".runtimes.runphi.options", "BinaryName", `"/usr/bin/runphi"`},
				{cri + ".runtimes.runc", "runtime_type", `"io.containerd.runc.v2"`},
				{cri, "default_runtime_name", `"runc"`},
			}
			for _, c := range checks {
				if got := dump[c.table][c.key]; got != c.want {
					t.Errorf("[%s] %s = %q, want %s", c.table, c.key, got, c.want)
				}
			}
		})
	}
}
