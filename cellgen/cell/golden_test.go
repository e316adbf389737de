package cell

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// boardsDir is the repository's board data, relative to this package.
const boardsDir = "../../boards"

// goldenFiles are the board files with the size and SHA-256 of the binary
// configuration upstream Jailhouse builds from the same config (master
// e57d1eff).
//
// The qemu-arm64 values are the acceptance vectors of jailhouse-abi.md
// §1.12. Upstream publishes none for the ZCU102; those values were measured
// by compiling configs/arm64/zynqmp-zcu102*.c of e57d1eff as upstream's
// build does (host gcc -Werror -Wall -Wextra -D__LINUX_COMPILER_TYPES_H
// with -I hypervisor/arch/arm64/include -I hypervisor/include -I include,
// then objcopy -O binary --remove-section=.note.gnu.property); the same
// procedure reproduced the four qemu-arm64 vectors exactly.
var goldenFiles = []struct {
	path     string // under boardsDir
	upstream string // upstream file name, for TestUpstreamCells
	size     int
	sha256   string
}{
	{"qemu-arm64/system.json", "qemu-arm64.cell", 1024,
		"5618a9ea73b60d48bfbc608e04e2ec0f094021d1e70d515d747412aa8e7f1cb6"},
	{"qemu-arm64/demos/inmate-demo.json", "qemu-arm64-inmate-demo.cell", 484,
		"408ed108b5ed17669c40d2685497f4d5af01f6e923f869ce4254078203255cff"},
	{"qemu-arm64/demos/linux-demo.json", "qemu-arm64-linux-demo.cell", 700,
		"571a35bbe11b6f6ebf1ccdf84ca16aa8eee49057b5892204bf915d3df7a6ce38"},
	{"qemu-arm64/demos/zephyr-demo.json", "qemu-arm64-zephyr-demo.cell", 700,
		"e0ac3d7af8ac46155bf83ff38338d366b9641fa16b18e153309df07593b8b1ff"},
	{"zcu102/system.json", "zynqmp-zcu102.cell", 1036,
		"43f3275fde0a2b194716fccf973cc00130177157a782fa39ecffec101c0de3bb"},
	{"zcu102/demos/inmate-demo.json", "zynqmp-zcu102-inmate-demo.cell", 236,
		"06cd0a510d5db425a1dd389af0df7b4247d951868f2df3776e8c627bd0fb41ca"},
	{"zcu102/demos/linux-demo.json", "zynqmp-zcu102-linux-demo.cell", 668,
		"f00df7bd56da73ae05ed0a315a667272c7e7fb337ad271043dc02e9cb4a43947"},
	{"zcu102/demos/linux-demo-2.json", "zynqmp-zcu102-linux-demo-2.cell", 636,
		"ac0e7f84b898fc47ab7cd188389bbf6a49461fb2f5b2aea8eda40f9f29b5a5a7"},
}

// cpusetEqual lets go-cmp compare models, whose CPU sets have unexported
// fields.
var cpusetEqual = cmp.Comparer(func(a, b cpuset.Set) bool { return a.Equal(b) })

// marshalFile encodes whichever configuration f holds.
func marshalFile(t *testing.T, f *File) []byte {
	t.Helper()
	var (
		b   []byte
		err error
	)
	switch {
	case f.System != nil:
		b, err = f.System.Marshal()
	case f.Cell != nil:
		b, err = f.Cell.Marshal()
	default:
		t.Fatal("File holds neither a system nor a cell configuration")
	}
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return b
}

// fileJSON returns the JSON form of whichever configuration f holds.
func fileJSON(t *testing.T, f *File) []byte {
	t.Helper()
	var (
		b   []byte
		err error
	)
	if f.System != nil {
		b, err = SystemJSON(f.System)
	} else {
		b, err = CellJSON(f.Cell)
	}
	if err != nil {
		t.Fatalf("JSON form: %v", err)
	}
	return b
}

// TestGoldenBoardFiles encodes every board file and compares the result
// with the bytes upstream Jailhouse builds.
func TestGoldenBoardFiles(t *testing.T) {
	for _, g := range goldenFiles {
		t.Run(g.path, func(t *testing.T) {
			f, err := ReadFile(filepath.Join(boardsDir, g.path))
			if err != nil {
				t.Fatal(err)
			}
			bin := marshalFile(t, f)
			sum := sha256.Sum256(bin)
			if len(bin) != g.size || hex.EncodeToString(sum[:]) != g.sha256 {
				t.Errorf("encoded %d bytes, sha256 %x; upstream has %d bytes, sha256 %s",
					len(bin), sum, g.size, g.sha256)
			}
		})
	}
}

// TestBinaryJSONBinary checks binary -> model -> JSON -> model -> binary
// gives the identical bytes.
func TestBinaryJSONBinary(t *testing.T) {
	for _, g := range goldenFiles {
		t.Run(g.path, func(t *testing.T) {
			f, err := ReadFile(filepath.Join(boardsDir, g.path))
			if err != nil {
				t.Fatal(err)
			}
			bin := marshalFile(t, f)
			fromBin, err := Decode(bin)
			if err != nil {
				t.Fatalf("Decode(binary): %v", err)
			}
			if diff := cmp.Diff(f, fromBin, cpusetEqual); diff != "" {
				t.Errorf("binary decodes to another model (-json +binary):\n%s", diff)
			}
			again, err := Decode(fileJSON(t, fromBin))
			if err != nil {
				t.Fatalf("Decode(JSON): %v", err)
			}
			if out := marshalFile(t, again); !bytes.Equal(out, bin) {
				t.Errorf("binary -> JSON -> binary changed the bytes")
			}
		})
	}
}

// TestUpstreamCells decodes .cell files built from upstream's configs (see
// goldenFiles) and compares them with the board files' models. Set
// RUNPHI_UPSTREAM_CELLS to the directory holding them; the files are not
// part of the repository.
func TestUpstreamCells(t *testing.T) {
	dir := os.Getenv("RUNPHI_UPSTREAM_CELLS")
	if dir == "" {
		t.Skip("RUNPHI_UPSTREAM_CELLS not set")
	}
	for _, g := range goldenFiles {
		t.Run(g.upstream, func(t *testing.T) {
			up, err := ReadFile(filepath.Join(dir, g.upstream))
			if err != nil {
				t.Fatal(err)
			}
			ours, err := ReadFile(filepath.Join(boardsDir, g.path))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(up, ours, cpusetEqual); diff != "" {
				t.Errorf("model differs (-upstream +board file):\n%s", diff)
			}
		})
	}
}
