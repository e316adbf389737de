// Package config holds runphi's host configuration: where the board data,
// the stock runc, runphi's own state and the Jailhouse driver live.
//
// Values come from three layers, later ones winning: built-in defaults,
// the JSON file /etc/runphi/config.json (or the file named by
// $RUNPHI_CONFIG), and one environment variable per key. There are no
// command-line flags for these settings on purpose: runphi passes its argv
// to runc unchanged, so it cannot add global flags of its own.
//
// # Keys
//
//	key               environment          default
//	board_dir         RUNPHI_BOARD         /usr/share/runphi/board
//	runc              RUNPHI_RUNC          runc (searched in $PATH, skipping runphi itself)
//	state_root        RUNPHI_STATE_ROOT    /run/runphi
//	alloc_state       RUNPHI_ALLOC_STATE   <state_root>/alloc.json
//	jailhouse_device  RUNPHI_JAILHOUSE_DEVICE  /dev/jailhouse
//	jailhouse_sysfs   RUNPHI_JAILHOUSE_SYSFS   /sys/devices/jailhouse
//	linux_loader      RUNPHI_LINUX_LOADER  /usr/libexec/jailhouse/linux-loader.bin
//	log_file          RUNPHI_LOG_FILE      "" (none): an extra JSON log of every invocation
//
// The file is parsed strictly: an unknown key, a wrong type or trailing
// data is an error naming the key. A missing default file is not an error
// (the defaults apply); a missing file named by $RUNPHI_CONFIG is. An
// environment variable set to the empty string counts as unset. Every
// value except runc and log_file must be an absolute path; runc may be a
// bare command name, looked up in $PATH.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultPath is the configuration file read when $RUNPHI_CONFIG is unset.
const DefaultPath = "/etc/runphi/config.json"

// PathEnv names the environment variable that points at another file.
const PathEnv = "RUNPHI_CONFIG"

// MaxFileSize bounds the configuration file; a real one is a few hundred
// bytes, so anything larger is a mistake.
const MaxFileSize = 64 << 10

// Config is runphi's host configuration. The zero value is not useful;
// start from Default or Load.
type Config struct {
	BoardDir        string `json:"board_dir"`
	Runc            string `json:"runc"`
	StateRoot       string `json:"state_root"`
	AllocState      string `json:"alloc_state"`
	JailhouseDevice string `json:"jailhouse_device"`
	JailhouseSysfs  string `json:"jailhouse_sysfs"`
	LinuxLoader     string `json:"linux_loader"`
	LogFile         string `json:"log_file"`
}

// Default returns the built-in configuration.
func Default() Config {
	return Config{
		BoardDir:        "/usr/share/runphi/board",
		Runc:            "runc",
		StateRoot:       "/run/runphi",
		JailhouseDevice: "/dev/jailhouse",
		JailhouseSysfs:  "/sys/devices/jailhouse",
		LinuxLoader:     "/usr/libexec/jailhouse/linux-loader.bin",
	}
}

// key describes one setting: its JSON name, environment variable and
// field.
type key struct {
	name string
	env  string
	ptr  func(*Config) *string
	// path: the value must be an absolute path.
	path bool
}

func keys() []key {
	return []key{
		{"board_dir", "RUNPHI_BOARD", func(c *Config) *string { return &c.BoardDir }, true},
		{"runc", "RUNPHI_RUNC", func(c *Config) *string { return &c.Runc }, false},
		{"state_root", "RUNPHI_STATE_ROOT", func(c *Config) *string { return &c.StateRoot }, true},
		{"alloc_state", "RUNPHI_ALLOC_STATE", func(c *Config) *string { return &c.AllocState }, true},
		{"jailhouse_device", "RUNPHI_JAILHOUSE_DEVICE", func(c *Config) *string { return &c.JailhouseDevice }, true},
		{"jailhouse_sysfs", "RUNPHI_JAILHOUSE_SYSFS", func(c *Config) *string { return &c.JailhouseSysfs }, true},
		{"linux_loader", "RUNPHI_LINUX_LOADER", func(c *Config) *string { return &c.LinuxLoader }, true},
		{"log_file", "RUNPHI_LOG_FILE", func(c *Config) *string { return &c.LogFile }, true},
	}
}

// Load builds the configuration from the defaults, the file named by
// $RUNPHI_CONFIG (else DefaultPath) and the environment. getenv is
// usually os.Getenv.
func Load(getenv func(string) string) (Config, error) {
	path, explicit := getenv(PathEnv), true
	if path == "" {
		path, explicit = DefaultPath, false
	}
	c := Default()
	data, err := readFile(path)
	switch {
	case err == nil:
		if err := c.merge(data); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		// No file: the defaults and the environment apply.
	default:
		return Config{}, fmt.Errorf("config: %w", err)
	}
	for _, k := range keys() {
		if v := getenv(k.env); v != "" {
			*k.ptr(&c) = v
		}
	}
	if c.AllocState == "" {
		c.AllocState = filepath.Join(c.StateRoot, "alloc.json")
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Read one byte past the limit to tell "exactly at" from "over".
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxFileSize)
	}
	return data, nil
}

// Parse reads a configuration file's contents over the defaults. Unlike
// Load it applies neither the environment nor the alloc_state default.
func Parse(data []byte) (Config, error) {
	c := Default()
	if err := c.merge(data); err != nil {
		return Config{}, err
	}
	return c, nil
}

// merge overwrites c with the keys present in data, in file order, so the
// first mistake in the file is the one reported.
func (c *Config) merge(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("not a JSON object (%v)", describe(tok, err))
	}
	ks := keys()
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("not a JSON object: %w", err)
		}
		name, _ := tok.(string)
		k, ok := findKey(ks, name)
		if !ok {
			return fmt.Errorf("unknown key %q (known: %s)", name, knownKeys(ks))
		}
		if seen[name] {
			return fmt.Errorf("key %q given twice", name)
		}
		seen[name] = true
		tok, err = dec.Token()
		if err != nil {
			return fmt.Errorf("key %q: %w", name, err)
		}
		switch v := tok.(type) {
		case nil:
			// null means absent
		case string:
			if v == "" && name != "log_file" {
				return fmt.Errorf("key %q: empty", name)
			}
			*k.ptr(c) = v
		default:
			return fmt.Errorf("key %q: want a string, got %s", name, describe(tok, nil))
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// describe names a JSON token (or the error reading it) for a message.
func describe(tok json.Token, err error) string {
	if err != nil {
		return err.Error()
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return string(v)
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	}
	return fmt.Sprintf("%q", tok)
}

func findKey(ks []key, name string) (key, bool) {
	for _, k := range ks {
		if k.name == name {
			return k, true
		}
	}
	return key{}, false
}

func knownKeys(ks []key) string {
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = k.name
	}
	return strings.Join(names, ", ")
}

// Validate checks that every path is absolute and clean enough to use,
// and that runc is either a bare command name or an absolute path.
func (c Config) Validate() error {
	for _, k := range keys() {
		v := *k.ptr(&c)
		switch {
		case v == "" && k.name == "log_file":
		case v == "":
			return fmt.Errorf("%s (%s) is empty", k.name, k.env)
		case k.path && !filepath.IsAbs(v):
			return fmt.Errorf("%s (%s) %q is not an absolute path", k.name, k.env, v)
		case !k.path && strings.ContainsRune(v, '/') && !filepath.IsAbs(v):
			return fmt.Errorf("%s (%s) %q: give a command name or an absolute path", k.name, k.env, v)
		}
	}
	return nil
}
