package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// WriteFileAtomic replaces path with data so that a reader sees either the
// old file or the complete new one, never part of it: it writes a hidden
// ".<name>" in the same directory (O_EXCL, O_SYNC), then renames it over
// path. This is runc's createPidFile scheme; containerd reads --pid-file
// once create exits and parses the whole file. A leftover temporary file
// from a writer that died is removed and the write retried once.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir, name := filepath.Split(path)
	tmp := filepath.Join(dir, "."+name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_SYNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if errors.Is(err, fs.ErrExist) {
		if rerr := os.Remove(tmp); rerr == nil {
			f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_SYNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
