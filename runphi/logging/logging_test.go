package logging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"error", slog.LevelError, false},
		{"WARN", slog.LevelWarn, false},
		{"warning", slog.LevelWarn, false},
		{"Info", slog.LevelInfo, false},
		{"debug", slog.LevelDebug, false},
		{" trace ", LevelTrace, false},
		{"verbose", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLevel(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseLevel(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("ParseLevel(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestLevel(t *testing.T) {
	tests := []struct {
		env     string
		debug   bool
		want    slog.Level
		wantErr bool
	}{
		{"", false, slog.LevelError, false},
		{"", true, slog.LevelDebug, false},
		{"warn", false, slog.LevelWarn, false},
		{"warn", true, slog.LevelDebug, false}, // --debug is more verbose
		{"trace", true, LevelTrace, false},     // the env is more verbose
		{"bogus", false, slog.LevelInfo, true}, // runPHI's fallback, reported
	}
	for _, tt := range tests {
		got, err := Level(tt.env, tt.debug)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("Level(%q, %v) = %v, %v; want %v, err %v", tt.env, tt.debug, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": Text, "text": Text, "json": JSON} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseFormat("JSON"); err == nil || !strings.Contains(err.Error(), "invalid log-format") {
		t.Errorf("ParseFormat(JSON) err = %v, want runc's invalid log-format error", err)
	}
}

// TestJSONLine checks the contract containerd and podman rely on: one
// object per line with level, msg and an RFC 3339 time, plus our attributes.
func TestJSONLine(t *testing.T) {
	var buf bytes.Buffer
	l := New(Options{Log: &buf, Format: JSON, Level: slog.LevelDebug}).With("id", "abc", "verb", "create")
	l.Error("container does not exist")
	l.Warn("careful", "n", 3)
	l.Debug("detail")
	Trace(t.Context(), l, "dropped: below the level")

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), buf.String())
	}
	wantLevels := []string{"error", "warning", "debug"}
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i, err, line)
		}
		if rec["level"] != wantLevels[i] {
			t.Errorf("line %d level = %v, want %s", i, rec["level"], wantLevels[i])
		}
		ts, _ := rec["time"].(string)
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Errorf("line %d time %q is not RFC 3339: %v", i, ts, err)
		}
		if rec["id"] != "abc" || rec["verb"] != "create" {
			t.Errorf("line %d lacks id/verb: %s", i, line)
		}
	}
	// containerd decodes the line into this shape.
	var c struct {
		Level string
		Msg   string
		Time  time.Time
	}
	if err := json.Unmarshal([]byte(lines[0]), &c); err != nil || c.Msg != "container does not exist" || c.Level != "error" {
		t.Errorf("containerd's decoding of %s = %+v, %v", lines[0], c, err)
	}
}

func TestTextLine(t *testing.T) {
	var buf bytes.Buffer
	New(Options{Log: &buf, Format: Text, Level: slog.LevelError}).With("id", "x", "verb", "kill").Error("container not running")
	line := buf.String()
	for _, want := range []string{"level=error", `msg="container not running"`, "id=x", "verb=kill", "time="} {
		if !strings.Contains(line, want) {
			t.Errorf("text line %q lacks %q", line, want)
		}
	}
}

func TestExtraLog(t *testing.T) {
	var main, extra bytes.Buffer
	l := New(Options{Log: &main, Format: Text, Level: slog.LevelError, Extra: &extra, ExtraLevel: slog.LevelInfo})
	l.Info("only in the extra log")
	l.Error("in both")
	if strings.Contains(main.String(), "only in") || !strings.Contains(main.String(), "in both") {
		t.Errorf("main log = %q", main.String())
	}
	sc := bufio.NewScanner(&extra)
	n := 0
	for sc.Scan() {
		n++
		if !json.Valid(sc.Bytes()) {
			t.Errorf("extra log line is not JSON: %s", sc.Text())
		}
	}
	if n != 2 {
		t.Errorf("extra log has %d lines, want 2", n)
	}
}

func TestFileLazyOpen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "log.json")
	f := &File{Path: p, Fallback: &bytes.Buffer{}}
	defer f.Close()
	_ = New(Options{Log: f, Format: JSON, Level: slog.LevelError})
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("log file exists before anything was logged (err %v)", err)
	}
	if err := os.WriteFile(p, []byte("{\"level\":\"info\",\"msg\":\"old\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	New(Options{Log: f, Format: JSON, Level: slog.LevelError}).Error("boom")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "{\"level\":\"info\",\"msg\":\"old\"}\n") || !strings.Contains(string(data), `"msg":"boom"`) {
		t.Errorf("log file was not appended to: %q", data)
	}
}

func TestFileFallback(t *testing.T) {
	var fb bytes.Buffer
	f := &File{Path: filepath.Join(t.TempDir(), "missing-dir", "log.json"), Fallback: &fb}
	New(Options{Log: f, Format: JSON, Level: slog.LevelError}).Error("boom")
	if f.Opened() {
		t.Fatal("Opened() = true for an impossible path")
	}
	if !strings.Contains(fb.String(), "cannot open log file") || !strings.Contains(fb.String(), `"msg":"boom"`) {
		t.Errorf("fallback got %q, want the reason and the record", fb.String())
	}
}
