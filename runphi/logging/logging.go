// Package logging builds runphi's log/slog loggers so that their output is
// what callers of runc expect.
//
// With --log-format json every record is one JSON object on its own line
// with the keys level, msg and time (RFC 3339), which is what containerd
// (getLastRuntimeError) and podman parse from runc's log; runphi adds its
// attributes (id, verb, ...) as further keys. The text format is logrus's
// key=value line. Level names are logrus's: trace, debug, info, warning,
// error.
//
// The --log file is opened on the first record, not before, so a call that
// logs nothing (every forwarded one) never touches it. It is opened the way
// runc opens it: O_CREATE|O_WRONLY|O_APPEND|O_SYNC, mode 0644.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// LevelTrace is below slog.LevelDebug; runphi logs generated data and
// command lines at this level.
const LevelTrace = slog.Level(-8)

// ParseLevel reads a level name as RUNPHI_DEBUG_LEVEL spells it: error,
// warn (or warning), info, debug or trace, in any case.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "error":
		return slog.LevelError, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "trace":
		return LevelTrace, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want error, warn, info, debug or trace)", s)
}

// LevelName returns logrus's name for a level, which runc's log uses.
func LevelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warning"
	case l >= slog.LevelInfo:
		return "info"
	case l >= slog.LevelDebug:
		return "debug"
	}
	return "trace"
}

// Format is the shape of a log line.
type Format int

const (
	// Text is logrus's text format: time="..." level=error msg="...".
	Text Format = iota
	// JSON is one JSON object per line with level, msg and time.
	JSON
)

// ParseFormat reads the value of --log-format; "" means text, as in runc.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "", "text":
		return Text, nil
	case "json":
		return JSON, nil
	}
	return 0, fmt.Errorf("invalid log-format: %s", s)
}

// NewHandler returns a handler writing runc-compatible lines of the given
// format to w, for records at or above level.
func NewHandler(w io.Writer, f Format, level slog.Leveler) slog.Handler {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr}
	if f == JSON {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// replaceAttr renames slog's built-in keys and values to logrus's.
func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		if l, ok := a.Value.Any().(slog.Level); ok {
			return slog.String(slog.LevelKey, LevelName(l))
		}
	case slog.TimeKey:
		// RFC 3339 with nanoseconds: containerd decodes it into a
		// time.Time, and the extra digits order lines of one second.
		if t, ok := a.Value.Any().(time.Time); ok {
			return slog.String(slog.TimeKey, t.Format(time.RFC3339Nano))
		}
	}
	return a
}

// File is an io.Writer for the --log file that opens it on the first
// Write. If it cannot be opened, lines go to Fallback instead, preceded
// by one line saying why, so the error a caller needs is not lost.
type File struct {
	Path     string
	Fallback io.Writer

	once sync.Once
	f    *os.File
	w    io.Writer
}

// Write appends p to the file, opening it first if needed.
func (l *File) Write(p []byte) (int, error) {
	l.once.Do(l.open)
	return l.w.Write(p)
}

func (l *File) open() {
	f, err := os.OpenFile(l.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
	if err != nil {
		l.w = l.Fallback
		fmt.Fprintf(l.Fallback, "runphi: cannot open log file: %v\n", err)
		return
	}
	l.f, l.w = f, f
}

// Opened reports whether the file has been opened successfully.
func (l *File) Opened() bool { return l.f != nil }

// Close closes the file if it was opened.
func (l *File) Close() error {
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}

// Options configures New.
type Options struct {
	// Log is where the runc-style log goes: the --log file, or stderr.
	Log    io.Writer
	Format Format
	Level  slog.Leveler
	// Extra, if set, also receives every record as a JSON line (the
	// configured log_file), at ExtraLevel.
	Extra      io.Writer
	ExtraLevel slog.Leveler
}

// New returns a logger writing to o.Log and, if set, o.Extra.
func New(o Options) *slog.Logger {
	h := NewHandler(o.Log, o.Format, o.Level)
	if o.Extra != nil {
		h = slog.NewMultiHandler(h, NewHandler(o.Extra, JSON, o.ExtraLevel))
	}
	return slog.New(h)
}

// Discard is a logger that drops everything, for code paths that must not
// write (tests, and forwarding before a logger exists).
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Trace logs at LevelTrace.
func Trace(ctx context.Context, l *slog.Logger, msg string, args ...any) {
	l.Log(ctx, LevelTrace, msg, args...)
}

// EnvLevel is the environment variable that sets the level.
const EnvLevel = "RUNPHI_DEBUG_LEVEL"

// Level picks the threshold from RUNPHI_DEBUG_LEVEL's value env and the
// --debug flag: the more verbose of the two, else error. An unknown env
// value gives info (as runPHI did) together with the parse error, which the
// caller should log as a warning.
//
// The default is error, not info, because podman reads the whole --log
// file of a failed create as a single JSON object: any line before the
// error would hide it.
func Level(env string, debug bool) (slog.Level, error) {
	l := slog.LevelError
	var err error
	if env != "" {
		if l, err = ParseLevel(env); err != nil {
			l = slog.LevelInfo
		}
	}
	if debug && l > slog.LevelDebug {
		l = slog.LevelDebug
	}
	return l, err
}
