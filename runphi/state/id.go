package state

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// MaxIDLen bounds container ids: an id is a directory name under the state
// root, and a file name has at most 255 bytes. Longer ids are refused,
// never shortened.
const MaxIDLen = 255

// MaxCellNameLen is the longest Jailhouse cell name (the driver's name
// field has 32 bytes including the NUL).
const MaxCellNameLen = 31

// cellNamePrefix is how much of a long id a derived cell name keeps; the
// rest of the 31 bytes is "-" and 8 hex digits of the id's SHA-256.
const cellNamePrefix = MaxCellNameLen - 1 - 8

// ErrInvalidID is wrapped by every ValidateID error.
var ErrInvalidID = errors.New("invalid container id")

// ValidateID applies runc's rule: one or more of [A-Za-z0-9_+.-], and
// neither "." nor "..". It also bounds the length (MaxIDLen).
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidID)
	case id == "." || id == "..":
		return fmt.Errorf("%w %q", ErrInvalidID, id)
	case len(id) > MaxIDLen:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidID, len(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !idByte(id[i]) {
			return fmt.Errorf("%w %q: character %q at offset %d (allowed: letters, digits, _ + - .)", ErrInvalidID, id, id[i], i)
		}
	}
	return nil
}

func idByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '+' || c == '-' || c == '.'
}

// CellName derives the Jailhouse cell name of a container from its (valid)
// id. An id of at most 31 bytes is its own cell name. A longer one (a
// 64-hex-digit containerd id, say) becomes its first 22 bytes, "-" and the
// first 8 hex digits of the SHA-256 of the whole id: 31 bytes, stable, and
// recognisable in `jailhouse cell list`. Two long ids collide only if they
// share the prefix and the 32-bit hash; a collision makes the second
// create fail cleanly (the cell exists), it never joins two containers.
// The name is recorded in state.json, so later verbs never re-derive it.
func CellName(id string) string {
	if len(id) <= MaxCellNameLen {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return id[:cellNamePrefix] + "-" + hex.EncodeToString(sum[:4])
}
