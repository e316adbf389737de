package cell

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// addSeeds seeds a fuzz target with every test model's encoding, the golden
// file in testdata (synthetic, covering every x86 field) and a few
// hand-made near misses. The upstream acceptance vectors are pinned by
// hash only, never kept as files. Both targets get both
// kinds, so the signature checks are exercised too.
func addSeeds(f *testing.F) {
	f.Helper()
	for _, tc := range codecCases() {
		b, err := tc.marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	golden, err := filepath.Glob(filepath.Join("testdata", "*.cell"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range golden {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte("JHCLL\x02\x0e\x00"))
	f.Add([]byte("JHSYS\x02\x0e\x00"))
	f.Add([]byte("JHCELL\x0c\x00"))
}

// checkDecoded enforces the codec's contract for one fuzz input: decoding
// either fails with a *FormatError or yields a model that encodes back to
// exactly the input and decodes again to the same model.
func checkDecoded[M interface{ Marshal() ([]byte, error) }](t *testing.T, data []byte, m M, err error, decode func([]byte) (M, error)) {
	if err != nil {
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("error %q is not a *FormatError", err)
		}
		if fe.Offset < 0 || fe.Offset > len(data) {
			t.Fatalf("error offset %d outside the %d-byte input: %v", fe.Offset, len(data), err)
		}
		return
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatalf("decoded model does not encode: %v", err)
	}
	if !bytes.Equal(out, data) {
		t.Fatalf("re-encoding changed the bytes:\n in % x\nout % x", data, out)
	}
	again, err := decode(out)
	if err != nil {
		t.Fatalf("re-encoded bytes do not decode: %v", err)
	}
	if diff := cmp.Diff(m, again); diff != "" {
		t.Fatalf("decode-encode-decode is not stable (-first +second):\n%s", diff)
	}
}

func FuzzUnmarshalCell(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := UnmarshalCell(data)
		checkDecoded(t, data, c, err, UnmarshalCell)
	})
}

func FuzzUnmarshalSystem(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := UnmarshalSystem(data)
		checkDecoded(t, data, s, err, UnmarshalSystem)
	})
}
