package monitor

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultTrimInterval is how often a waiting monitor gives memory back
// (releaseMemory).
const DefaultTrimInterval = 10 * time.Second

// gcPercent bounds the heap growth between collections. The wait loops
// keep almost nothing but allocate a few KiB per poll (sysfs reads), so
// with Go's default (a 4 MiB minimum heap goal) the heap, and the resident
// set with it, would creep up by megabytes before each collection. A
// collection of a heap this small costs well under a millisecond.
const gcPercent = 10

// Files of the running process that dropExecutable reads.
const (
	selfSmaps = "/proc/self/smaps"
	selfExe   = "/proc/self/exe"
)

// releaseMemory gives back memory the monitor holds without needing it;
// the monitor calls it once setup is done and then every TrimInterval.
//
// The heap: a collection, and the free pages go back to the kernel
// (debug.FreeOSMemory).
//
// The executable: the monitor is the runphi binary, most of which (flag
// parsing, logging, JSON, create and the other verbs) it runs once or
// never, but the kernel maps the file's pages around each fault (64 KiB
// by default, whole large folios on recent kernels), so after setup nearly
// the whole binary is mapped: 4 of its 5 MiB resident set. Dropping this
// process's mappings of the read-only segments (MADV_DONTNEED) leaves the
// page cache alone, where the pages stay shared with every other runphi
// process; those the loops run fault back in from the cache, the others
// stay unmapped and are easier for the kernel to reclaim. MADV_PAGEOUT
// would be no use: it skips pages that other processes (a second monitor)
// map too.
//
// Errors are not fatal: the monitor then only uses more memory.
func releaseMemory() error {
	debug.SetGCPercent(gcPercent)
	debug.FreeOSMemory()
	return dropExecutable(selfSmaps, selfExe)
}

// mapping is one entry of /proc/<pid>/smaps.
type mapping struct {
	start, end uint64
	perms      string
	inode      uint64
	path       string
	// rssKiB is the "Rss:" figure: the mapping's resident pages.
	rssKiB uint64
	// anonKiB is the "Anonymous:" figure: pages of the mapping that
	// are private copies rather than the file's.
	anonKiB uint64
}

// parseSmaps reads /proc/<pid>/smaps: a header line per mapping
// ("start-end perms offset dev inode [path]") followed by "Key: value"
// lines. The format is the kernel's, so anything else is an error.
func parseSmaps(data []byte) ([]mapping, error) {
	var maps []mapping
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		key, val, isField := strings.Cut(line, ":")
		if isField && !strings.ContainsAny(key, " -") {
			if len(maps) == 0 {
				return nil, fmt.Errorf("smaps line %d %q: field before the first mapping", n, line)
			}
			m := &maps[len(maps)-1]
			var dst *uint64
			switch key {
			case "Rss":
				dst = &m.rssKiB
			case "Anonymous":
				dst = &m.anonKiB
			default:
				continue
			}
			kib, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("smaps line %d %q: %w", n, line, err)
			}
			*dst = kib
			continue
		}
		m, err := parseMapping(line)
		if err != nil {
			return nil, fmt.Errorf("smaps line %d: %w", n, err)
		}
		maps = append(maps, m)
	}
	return maps, sc.Err()
}

// parseMapping reads a maps header line. The path may contain spaces and
// ends with " (deleted)" once the file has been replaced.
func parseMapping(line string) (mapping, error) {
	var f [5]string
	rest := line
	for i := range f {
		rest = strings.TrimLeft(rest, " ")
		end := strings.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		f[i], rest = rest[:end], rest[end:]
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	inode, err3 := strconv.ParseUint(f[4], 10, 64)
	if !ok || err1 != nil || err2 != nil || err3 != nil || end < start || len(f[1]) != 4 {
		return mapping{}, fmt.Errorf("mapping %q: malformed", line)
	}
	return mapping{start: start, end: end, perms: f[1], inode: inode, path: strings.TrimLeft(rest, " ")}, nil
}

// executableRanges returns the mappings of the file exe (its resolved
// path) with inode ino that can be dropped without losing anything: not
// writable, and holding no private copies of pages. The data segment
// holds the program's variables, and a position-independent binary's
// read-only relocated data (RELRO) holds pointers the loader wrote; both
// would revert to the file's bytes.
func executableRanges(maps []mapping, exe string, ino uint64) []mapping {
	var out []mapping
	for _, m := range maps {
		if m.inode == ino && m.path == exe && m.perms[1] != 'w' && m.anonKiB == 0 && m.end > m.start {
			out = append(out, m)
		}
	}
	return out
}

// dropExecutable discards this process's page table entries for the
// droppable mappings of its executable (executableRanges).
func dropExecutable(smapsPath, exePath string) error {
	exe, err := os.Readlink(exePath)
	if err != nil {
		return fmt.Errorf("executable: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(exePath, &st); err != nil {
		return fmt.Errorf("executable %s: %w", exe, err)
	}
	data, err := os.ReadFile(smapsPath)
	if err != nil {
		return fmt.Errorf("memory maps: %w", err)
	}
	maps, err := parseSmaps(data)
	if err != nil {
		return fmt.Errorf("memory maps: %w", err)
	}
	for _, m := range executableRanges(maps, exe, st.Ino) {
		// A raw syscall: unix.Madvise wants a []byte, and making one
		// of the code being run needs unsafe for no gain.
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), unix.MADV_DONTNEED)
		if errno != 0 {
			return fmt.Errorf("madvise %s %x-%x: %w", exe, m.start, m.end, errno)
		}
	}
	return nil
}
