package cell

import (
	"errors"
	"fmt"
)

// Sentinel errors wrapped by FormatError, for errors.Is.
var (
	// ErrTruncated: the input ends before the header or the arrays it
	// describes.
	ErrTruncated = errors.New("truncated configuration")
	// ErrBadSignature: the input is not a configuration of the expected
	// kind (or is one of an unsupported revision with its own signature).
	ErrBadSignature = errors.New("bad signature")
	// ErrBadRevision: the revision field is not Revision.
	ErrBadRevision = errors.New("unsupported revision")
	// ErrBadArch: the architecture byte is not x86, arm or arm64.
	ErrBadArch = errors.New("unknown architecture")
	// ErrSizeMismatch: bytes follow the last array the header describes.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrBadField: a field holds a value the format does not allow, such as
	// non-zero padding or reserved bits, an unterminated name or an
	// out-of-range cpu_set_size. Rejecting these keeps decoding lossless.
	ErrBadField = errors.New("invalid field")
)

// FormatError reports where and why binary configuration data is invalid.
// Offset is the byte offset in the input; Field names the structure member
// there in the upstream C spelling, e.g. "root_cell.num_pci_devices" or
// "pci_devices[1].msi_flags". Err is one of the sentinels above.
type FormatError struct {
	Offset int
	Field  string
	Msg    string
	Err    error
}

func (e *FormatError) Error() string {
	s := fmt.Sprintf("offset %#x (%s): ", e.Offset, e.Field)
	switch {
	case e.Err == nil:
		return s + e.Msg
	case e.Msg == "":
		return s + e.Err.Error()
	default:
		return s + e.Err.Error() + ": " + e.Msg
	}
}

func (e *FormatError) Unwrap() error { return e.Err }

// formatErr builds a *FormatError with a formatted message.
func formatErr(off int, field string, sentinel error, format string, args ...any) *FormatError {
	return &FormatError{Offset: off, Field: field, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}
