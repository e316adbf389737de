package jailhouse

import (
	"errors"
	"strings"
)

// Sentinel kinds. Every error the client returns for a failed operation is
// an *Error; errors.Is matches both its kind (one of these) and its cause
// (a unix.Errno such as unix.EEXIST, a *cell.FormatError, an open error).
var (
	ErrDriverMissing  = errors.New("jailhouse driver not loaded")
	ErrNotEnabled     = errors.New("jailhouse is not enabled")
	ErrAlreadyEnabled = errors.New("jailhouse is already enabled")
	ErrNeverEnabled   = errors.New("jailhouse has not been enabled since boot")
	ErrBadConfig      = errors.New("invalid configuration")
	ErrCellExists     = errors.New("cell already exists")
	ErrNoCell         = errors.New("no such cell")
	ErrCPUBusy        = errors.New("CPU not available")
	ErrRootCell       = errors.New("operation not allowed on the root cell")
	ErrImage          = errors.New("image does not fit")
	ErrRefused        = errors.New("refused")
	ErrNotCreated     = errors.New("cell was not created")
	ErrConsoleDenied  = errors.New("console reading not permitted")
	ErrBadName        = errors.New("invalid cell name")
)

// Op names an operation in an *Error.
type Op string

// Operations.
const (
	OpEnable   Op = "enable"
	OpDisable  Op = "disable"
	OpCreate   Op = "cell create"
	OpLoad     Op = "cell load"
	OpStart    Op = "cell start"
	OpShutdown Op = "cell shutdown"
	OpDestroy  Op = "cell destroy"
	OpList     Op = "cell list"
	OpStats    Op = "cell stats"
	OpConsole  Op = "console"
	OpInfo     Op = "info"
)

// Error is a failed operation. Msg is the explanation for a user, e.g.
// "a cell named 'zic-a' already exists".
type Error struct {
	Op   Op
	Cell string // the cell as the caller named it ("'name'" or an id), may be empty
	Msg  string
	Kind error // one of the Err* sentinels, may be nil
	Err  error // the cause: unix.Errno, decode or I/O error, may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Op))
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Err != nil && !strings.Contains(e.Msg, e.Err.Error()) {
		b.WriteString(" (")
		b.WriteString(causeText(e.Err))
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the kind and the cause.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}
