// Package atomicfile replaces files so that a reader sees either the old
// contents or the complete new ones, never part of them, and a writer that
// fails or dies leaves the old file in place.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to a new temporary file in path's directory (so
// the rename cannot cross file systems), syncs it, gives it perm, and
// renames it over path. The temporary name is unique, so concurrent
// writers never collide; each one's rename is atomic. On any error the
// temporary file is removed and path is left untouched.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
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
