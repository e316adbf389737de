package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runphi-go/runphi/internal/atomicfile"

	"github.com/runphi-go/runphi/cellgen/cell"
)

const (
	boardDir   = "../boards/qemu-arm64"
	systemJSON = boardDir + "/system.json"
	inmateJSON = boardDir + "/demos/inmate-demo.json"
	linuxJSON  = boardDir + "/demos/linux-demo.json"
	zephyrJSON = boardDir + "/demos/zephyr-demo.json"
)

type result struct {
	code           int
	stdout, stderr string
}

// cellgen runs the CLI in-process, as main does, with buffers for the
// standard streams.
func cellgen(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: bytes.NewReader(stdin), stdout: &out, stderr: &errb}
	code := a.exit(a.run(args))
	return result{code, out.String(), errb.String()}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encoded returns the encoder's bytes for a configuration file.
func encoded(t *testing.T, path string) []byte {
	t.Helper()
	f, err := cell.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncodeAcceptanceVector pins the encoder through the CLI to the
// upstream build of qemu-arm64.cell (ABI reference §1.12).
func TestEncodeAcceptanceVector(t *testing.T) {
	out := filepath.Join(t.TempDir(), "qemu-arm64.cell")
	r := cellgen(t, nil, "encode", systemJSON, "-o", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	sum := sha256.Sum256(readFile(t, out))
	const want = "5618a9ea73b60d48bfbc608e04e2ec0f094021d1e70d515d747412aa8e7f1cb6"
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("sha256 = %s, want %s", got, want)
	}
}

func TestCommandsSucceed(t *testing.T) {
	dir := t.TempDir()
	systemCell := filepath.Join(dir, "system.cell")
	if err := os.WriteFile(systemCell, encoded(t, systemJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	inmateCell := filepath.Join(dir, "inmate.cell")
	if err := os.WriteFile(inmateCell, encoded(t, inmateJSON), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		stdin []byte
		args  []string
		// check inspects the result of a successful run.
		check func(t *testing.T, r result)
	}{
		{
			name: "encode cell JSON",
			args: []string{"encode", inmateJSON, "-o", filepath.Join(dir, "a.cell")},
			check: func(t *testing.T, r result) {
				if got := readFile(t, filepath.Join(dir, "a.cell")); !bytes.Equal(got, encoded(t, inmateJSON)) {
					t.Error("encoded cell differs from the encoder's bytes")
				}
			},
		},
		{
			name: "encode binary input",
			args: []string{"encode", "--output", filepath.Join(dir, "b.cell"), systemCell},
			check: func(t *testing.T, r result) {
				if !bytes.Equal(readFile(t, filepath.Join(dir, "b.cell")), readFile(t, systemCell)) {
					t.Error("re-encoding a binary file changed it")
				}
			},
		},
		{
			name:  "encode stdin to stdout",
			stdin: readFile(t, linuxJSON),
			args:  []string{"encode", "-", "-o", "-"},
			check: func(t *testing.T, r result) {
				if r.stdout != string(encoded(t, linuxJSON)) {
					t.Error("stdout is not the encoded cell")
				}
			},
		},
		{
			name: "decode binary system",
			args: []string{"decode", systemCell},
			check: func(t *testing.T, r result) {
				f, err := cell.Decode([]byte(r.stdout))
				if err != nil {
					t.Fatalf("output does not decode: %v\n%s", err, r.stdout)
				}
				if b, _ := marshal(f); !bytes.Equal(b, readFile(t, systemCell)) {
					t.Error("decoded JSON does not encode back to the input")
				}
				if !strings.HasPrefix(r.stdout, "{") {
					t.Errorf("output is not JSON: %.40q", r.stdout)
				}
			},
		},
		{
			name: "decode JSON is canonical",
			args: []string{"decode", inmateCell},
			check: func(t *testing.T, r result) {
				again := cellgen(t, []byte(r.stdout), "decode", "-")
				if again.code != 0 || again.stdout != r.stdout {
					t.Errorf("decoding the JSON again gives exit %d and different text:\n%s", again.code, again.stdout)
				}
			},
		},
		{
			name: "check compatible cells",
			args: []string{"check", systemJSON, inmateCell, linuxJSON},
			check: func(t *testing.T, r result) {
				lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
				if last := lines[len(lines)-1]; !strings.HasPrefix(last, "ok") {
					t.Errorf("last line %q, want an ok summary", last)
				}
				if strings.Contains(r.stdout, "error:") {
					t.Errorf("error findings in a passing check:\n%s", r.stdout)
				}
			},
		},
		{
			name: "c source of a system",
			args: []string{"c", systemJSON},
			check: func(t *testing.T, r result) {
				for _, want := range []string{"struct jailhouse_system header;", ".name = \"qemu-arm64\"", "JAILHOUSE_CON_TYPE_PL011"} {
					if !strings.Contains(r.stdout, want) {
						t.Errorf("C source lacks %q", want)
					}
				}
			},
		},
		{
			name: "c source to a file",
			args: []string{"c", inmateCell, "-o", filepath.Join(dir, "inmate.c")},
			check: func(t *testing.T, r result) {
				if src := readFile(t, filepath.Join(dir, "inmate.c")); !bytes.Contains(src, []byte("struct jailhouse_cell_desc cell;")) {
					t.Errorf("file is not a cell's C source:\n%s", src)
				}
				if r.stdout != "" {
					t.Errorf("stdout = %q, want nothing", r.stdout)
				}
			},
		},
		{
			name: "version",
			args: []string{"version"},
			check: func(t *testing.T, r result) {
				if !strings.HasPrefix(r.stdout, "cellgen ") || !strings.Contains(r.stdout, "revision 14") {
					t.Errorf("version output %q", r.stdout)
				}
			},
		},
		{
			name: "help",
			args: []string{"--help"},
			check: func(t *testing.T, r result) {
				for _, c := range commands() {
					if !strings.Contains(r.stdout, "  "+c.name+" ") {
						t.Errorf("usage does not list %q:\n%s", c.name, r.stdout)
					}
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cellgen(t, tc.stdin, tc.args...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
			tc.check(t, r)
		})
	}
}

// TestHelpEverywhere: every command takes -h and --help, prints its usage
// on stdout and succeeds, whatever else is on the command line.
func TestHelpEverywhere(t *testing.T) {
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}, {c.name, "--help", "extra", "args"}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				r := cellgen(t, nil, args...)
				if r.code != 0 {
					t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
				}
				if !strings.HasPrefix(r.stdout, "Usage: cellgen "+c.name) || !strings.Contains(r.stdout, "--help") {
					t.Errorf("stdout is not %s's usage:\n%s", c.name, r.stdout)
				}
			})
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "no command given"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown global flag", []string{"--frob", "encode"}, "unknown flag: --frob"},
		{"unknown flag", []string{"decode", "--frob", systemJSON}, "unknown flag: --frob"},
		{"encode without -o", []string{"encode", systemJSON}, "-o/--output is required"},
		{"encode without input", []string{"encode", "-o", "x.cell"}, "usage: cellgen encode IN -o OUT.cell"},
		{"encode two inputs", []string{"encode", systemJSON, inmateJSON, "-o", "x.cell"}, "wrong number of arguments (2)"},
		{"-o without value", []string{"encode", systemJSON, "-o"}, "needs an argument"},
		{"decode without input", []string{"decode"}, "usage: cellgen decode IN"},
		{"check without system", []string{"check"}, "usage: cellgen check SYSTEM [CELL...]"},
		{"c with two inputs", []string{"c", systemJSON, inmateJSON}, "wrong number of arguments (2)"},
		{"version with argument", []string{"version", "x"}, "wrong number of arguments (1)"},
		{"help for unknown command", []string{"help", "frob"}, `unknown command "frob"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cellgen(t, nil, tc.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "--help' for usage") {
				t.Errorf("stderr = %q, want %q and a pointer to --help", r.stderr, tc.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

// badJSON is the inmate demo with an unknown flag in memory region 1.
func badJSON(t *testing.T) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFile(t, inmateJSON), &m); err != nil {
		t.Fatal(err)
	}
	regions := m["memory_regions"].([]any)
	regions[1].(map[string]any)["flags"] = []string{"read", "no_such_flag"}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFailures(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, badJSON(t), 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.cell")
	if err := os.WriteFile(truncated, encoded(t, inmateJSON)[:100], 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		args []string
		want []string // in stderr
	}{
		{"encode missing file", []string{"encode", missing, "-o", filepath.Join(dir, "out.cell")}, []string{missing, "no such file"}},
		{"decode missing file", []string{"decode", missing}, []string{missing}},
		{"c missing file", []string{"c", missing}, []string{missing}},
		{"check missing cell", []string{"check", systemJSON, missing}, []string{missing}},
		{"encode bad JSON names the field", []string{"encode", bad, "-o", filepath.Join(dir, "out.cell")}, []string{bad, "memory_regions[1].flags", "no_such_flag"}},
		{"decode truncated binary", []string{"decode", truncated}, []string{truncated, "truncated"}},
		{"check with a cell first", []string{"check", inmateJSON}, []string{inmateJSON, "want a system configuration"}},
		{"check with a system as cell", []string{"check", systemJSON, systemJSON}, []string{"want a cell configuration"}},
		{"check finds conflicts", []string{"check", systemJSON, linuxJSON, zephyrJSON}, []string{"check: ", "errors"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cellgen(t, nil, tc.args...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr = %q, want it to mention %q", r.stderr, w)
				}
			}
		})
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); n != "bad.json" && n != "truncated.cell" {
			t.Errorf("failed runs left %s behind", n)
		}
	}
}

func TestCheckPrintsFindings(t *testing.T) {
	r := cellgen(t, nil, "check", systemJSON, linuxJSON, zephyrJSON)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, "error: ") && !strings.HasPrefix(l, "warning: ") {
			t.Errorf("line %q is not a finding", l)
		}
	}
	// linux-demo and zephyr-demo use the same RAM.
	if !strings.Contains(r.stdout, "overlaps") {
		t.Errorf("no overlap reported:\n%s", r.stdout)
	}
}

// TestEncodeFailureKeepsOldOutput: a failed encode leaves an existing
// output file as it was, and leaves no temporary file.
func TestEncodeFailureKeepsOldOutput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "cell.cell")
	old := encoded(t, inmateJSON)
	if err := os.WriteFile(out, old, 0o644); err != nil {
		t.Fatal(err)
	}
	r := cellgen(t, badJSON(t), "encode", "-", "-o", out)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	if !bytes.Equal(readFile(t, out), old) {
		t.Error("failed encode changed the output file")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the old output", len(entries))
	}

	// A successful encode replaces it.
	r = cellgen(t, nil, "encode", linuxJSON, "-o", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !bytes.Equal(readFile(t, out), encoded(t, linuxJSON)) {
		t.Error("output not replaced")
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("output mode = %v, %v; want 0644", fi.Mode(), err)
	}
}

func TestWriteFileAtomicIntoMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "x.cell")
	err := atomicfile.WriteFile(path, []byte("x"), 0o644)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error = %v, want one naming %s", err, path)
	}
}
