package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// env is a fake environment for Load.
type env map[string]string

func (e env) get(k string) string { return e[k] }

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	def := Default()
	def.AllocState = "/run/runphi/alloc.json"
	tests := []struct {
		name string
		file string // "" = RUNPHI_CONFIG points at a missing file only if explicit
		env  env
		want func(c *Config)
	}{
		{
			name: "file overrides defaults",
			file: `{"runc": "/usr/local/sbin/runc", "board_dir": "/opt/board", "log_file": null}`,
			want: func(c *Config) { c.Runc = "/usr/local/sbin/runc"; c.BoardDir = "/opt/board" },
		},
		{
			name: "environment overrides file",
			file: `{"runc": "/usr/local/sbin/runc", "state_root": "/run/a"}`,
			env:  env{"RUNPHI_RUNC": "/opt/runc", "RUNPHI_STATE_ROOT": "/run/b", "RUNPHI_LOG_FILE": "/var/log/runphi.log"},
			want: func(c *Config) {
				c.Runc = "/opt/runc"
				c.StateRoot = "/run/b"
				c.AllocState = "/run/b/alloc.json" // follows the final state_root
				c.LogFile = "/var/log/runphi.log"
			},
		},
		{
			name: "explicit alloc_state kept",
			file: `{"alloc_state": "/var/lib/runphi/alloc.json", "state_root": "/run/x"}`,
			want: func(c *Config) { c.AllocState = "/var/lib/runphi/alloc.json"; c.StateRoot = "/run/x" },
		},
		{
			name: "every key from the environment",
			file: `{}`,
			env: env{
				"RUNPHI_BOARD": "/b", "RUNPHI_JAILHOUSE_DEVICE": "/dev/jh", "RUNPHI_JAILHOUSE_SYSFS": "/sys/jh",
				"RUNPHI_LINUX_LOADER": "/l.bin", "RUNPHI_ALLOC_STATE": "/a.json", "RUNPHI_RUNC": "runc.real",
			},
			want: func(c *Config) {
				c.BoardDir, c.JailhouseDevice, c.JailhouseSysfs = "/b", "/dev/jh", "/sys/jh"
				c.LinuxLoader, c.AllocState, c.Runc = "/l.bin", "/a.json", "runc.real"
			},
		},
		{
			name: "empty environment variable counts as unset",
			file: `{"runc": "/x/runc"}`,
			env:  env{"RUNPHI_RUNC": ""},
			want: func(c *Config) { c.Runc = "/x/runc" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := env{PathEnv: writeConfig(t, tt.file)}
			for k, v := range tt.env {
				e[k] = v
			}
			got, err := Load(e.get)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := def
			tt.want(&want)
			if got != want {
				t.Errorf("Load =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.json")
	if _, err := Load(env{PathEnv: missing}.get); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load with a missing explicit file: err = %v, want an error naming %s", err, missing)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, file string
		env        env
		wantIn     []string
	}{
		{"unknown key", `{"runc": "runc", "boardDir": "/x"}`, nil, []string{`unknown key "boardDir"`, "board_dir"}},
		{"wrong type", `{"state_root": 5}`, nil, []string{`"state_root"`, "string"}},
		{"empty value", `{"board_dir": ""}`, nil, []string{`"board_dir"`, "empty"}},
		{"not an object", `["runc"]`, nil, []string{"JSON object"}},
		{"null document", `null`, nil, []string{"JSON object"}},
		{"trailing data", `{"runc": "runc"} {}`, nil, []string{"trailing"}},
		{"syntax error", `{"runc": }`, nil, []string{`"runc"`, "invalid character"}},
		{"duplicate key", `{"runc": "a", "runc": "b"}`, nil, []string{`"runc"`, "twice"}},
		{"object value", `{"board_dir": {"path": "/x"}}`, nil, []string{`"board_dir"`, "want a string, got an object"}},
		{"first mistake wins", `{"zzz": 1, "aaa": 2}`, nil, []string{`unknown key "zzz"`}},
		{"relative path in file", `{"state_root": "run/runphi"}`, nil, []string{"state_root", "absolute"}},
		{"relative path in env", `{}`, env{"RUNPHI_JAILHOUSE_DEVICE": "dev/jailhouse"}, []string{"RUNPHI_JAILHOUSE_DEVICE", "absolute"}},
		{"relative runc path", `{"runc": "bin/runc"}`, nil, []string{"runc", "command name or an absolute path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeConfig(t, tt.file)
			e := env{PathEnv: p}
			for k, v := range tt.env {
				e[k] = v
			}
			_, err := Load(e.get)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestLoadTooLarge(t *testing.T) {
	p := writeConfig(t, `{"runc": "runc"}`+strings.Repeat(" ", MaxFileSize))
	if _, err := Load(env{PathEnv: p}.get); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load of an oversized file: err = %v, want a size error", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"runc": "/usr/sbin/runc", "state_root": "/run/runphi", "log_file": null}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"x": 1}`))
	f.Add([]byte(`{"runc": "a"} x`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		// An accepted file can never blank a key runphi cannot do without.
		if c.Runc == "" || c.StateRoot == "" {
			t.Fatalf("Parse(%q) left a required key empty: %+v", data, c)
		}
	})
}
