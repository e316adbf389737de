package monitor

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// sampleSmaps is a shortened /proc/<pid>/smaps of a monitor: the binary's
// code, constant data, a RELRO page a loader relocated, its data segment,
// an anonymous mapping, a file whose name has spaces and a replaced one.
const sampleSmaps = `00400000-005f0000 r-xp 00000000 fe:00 1234                               /usr/bin/runphi
Size:               1984 kB
Rss:                1216 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
005f0000-00821000 r--p 001f0000 fe:00 1234                               /usr/bin/runphi
Rss:                 896 kB
Anonymous:             0 kB
00821000-00822000 r--p 00421000 fe:00 1234                               /usr/bin/runphi
Rss:                   4 kB
Anonymous:             4 kB
00822000-00838000 rw-p 00422000 fe:00 1234                               /usr/bin/runphi
Rss:                  92 kB
Anonymous:            28 kB
00838000-0286f000 rw-p 00000000 00:00 0 
Rss:                  84 kB
Anonymous:            84 kB
7f0000000000-7f0000010000 r--p 00000000 fe:00 99                         /tmp/a file (x)
Rss:                  64 kB
Anonymous:             0 kB
7f0000010000-7f0000020000 r-xp 00000000 fe:00 1234                       /usr/bin/runphi (deleted)
Rss:                  64 kB
Anonymous:             0 kB
`

func TestParseSmaps(t *testing.T) {
	got, err := parseSmaps([]byte(sampleSmaps))
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{
		{start: 0x400000, end: 0x5f0000, perms: "r-xp", inode: 1234, path: "/usr/bin/runphi", rssKiB: 1216},
		{start: 0x5f0000, end: 0x821000, perms: "r--p", inode: 1234, path: "/usr/bin/runphi", rssKiB: 896},
		{start: 0x821000, end: 0x822000, perms: "r--p", inode: 1234, path: "/usr/bin/runphi", rssKiB: 4, anonKiB: 4},
		{start: 0x822000, end: 0x838000, perms: "rw-p", inode: 1234, path: "/usr/bin/runphi", rssKiB: 92, anonKiB: 28},
		{start: 0x838000, end: 0x286f000, perms: "rw-p", rssKiB: 84, anonKiB: 84},
		{start: 0x7f0000000000, end: 0x7f0000010000, perms: "r--p", inode: 99, path: "/tmp/a file (x)", rssKiB: 64},
		{start: 0x7f0000010000, end: 0x7f0000020000, perms: "r-xp", inode: 1234, path: "/usr/bin/runphi (deleted)", rssKiB: 64},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(mapping{})); diff != "" {
		t.Errorf("parseSmaps (-want +got):\n%s", diff)
	}
}

func TestParseSmapsErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"field first", "Rss: 4 kB\n", "before the first mapping"},
		{"bad range", "0040000g-005f0000 r-xp 00000000 fe:00 1 /x\n", "malformed"},
		{"reversed range", "005f0000-00400000 r-xp 00000000 fe:00 1 /x\n", "malformed"},
		{"bad inode", "00400000-005f0000 r-xp 00000000 fe:00 x /x\n", "malformed"},
		{"short line", "00400000-005f0000 r-xp\n", "malformed"},
		{"bad figure", "00400000-005f0000 r-xp 00000000 fe:00 1 /x\nRss: many kB\n", "Rss"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSmaps([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseSmaps = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestExecutableRanges(t *testing.T) {
	maps, err := parseSmaps([]byte(sampleSmaps))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		exe   string
		ino   uint64
		wantS []uint64 // start addresses
	}{
		// Not the RELRO page, not the data segment.
		{"code and constant data", "/usr/bin/runphi", 1234, []uint64{0x400000, 0x5f0000}},
		{"another file of that name", "/usr/bin/runphi", 1235, nil},
		{"replaced binary", "/usr/bin/runphi (deleted)", 1234, []uint64{0x7f0000010000}},
		{"path with spaces", "/tmp/a file (x)", 99, []uint64{0x7f0000000000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []uint64
			for _, m := range executableRanges(maps, tc.exe, tc.ino) {
				got = append(got, m.start)
			}
			if diff := cmp.Diff(tc.wantS, got); diff != "" {
				t.Errorf("executableRanges (-want +got):\n%s", diff)
			}
		})
	}
}

// exeRSS returns the resident KiB of this process's droppable mappings of
// its executable.
func exeRSS(t *testing.T) uint64 {
	t.Helper()
	exe, err := os.Readlink(selfExe)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(selfExe, &st); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(selfSmaps)
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	maps, err := parseSmaps(data)
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, m := range executableRanges(maps, exe, st.Ino) {
		sum += m.rssKiB
	}
	return sum
}

// TestDropExecutable drops the test binary's own code mappings: fewer of
// its pages are resident afterwards, and the program keeps running.
func TestDropExecutable(t *testing.T) {
	before := exeRSS(t)
	if before == 0 {
		t.Skip("no resident pages of the test binary found")
	}
	if err := dropExecutable(selfSmaps, selfExe); err != nil {
		t.Fatal(err)
	}
	after := exeRSS(t)
	t.Logf("test binary resident: %d KiB before, %d KiB after", before, after)
	if after >= before {
		t.Errorf("resident KiB of the executable = %d after the drop, %d before", after, before)
	}
	// Everything still runs, code and data alike.
	if got := strings.Repeat("ab", 3); got != "ababab" {
		t.Errorf("Repeat = %q", got)
	}
}

func TestDropExecutableErrors(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/smaps"
	if err := os.WriteFile(bad, []byte("Rss: 4 kB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, smaps, exe, want string
	}{
		{"no executable link", selfSmaps, dir + "/none", "executable"},
		{"no smaps", dir + "/none", selfExe, "memory maps"},
		{"bad smaps", bad, selfExe, "memory maps"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := dropExecutable(tc.smaps, tc.exe)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("dropExecutable = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
