package packaging

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// This file applies the rules of Buildroot's utils/check-package to our
// BR2_EXTERNAL tree, so that CI needs no Buildroot checkout. Each rule
// names the check-package function it follows; TestBuildrootLintRules
// shows each one catching a bad example.

// brFinding is one style violation: file, 1-based line (0: whole file),
// check-package's rule name and a message.
type brFinding struct {
	line int
	rule string
	msg  string
}

func (f brFinding) String() string { return fmt.Sprintf("%d: %s: %s", f.line, f.rule, f.msg) }

// lintBuildroot checks one file of a BR2_EXTERNAL tree. name is its path
// relative to the tree (slash-separated); exec tells whether it has an
// executable bit.
func lintBuildroot(name, text string, exec bool) []brFinding {
	base := path.Base(name)
	lines := strings.SplitAfter(text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	var out []brFinding
	add := func(line int, rule, format string, args ...any) {
		out = append(out, brFinding{line, rule, fmt.Sprintf(format, args...)})
	}
	common := func() {
		lintCommon(lines, add)
	}
	notExec := func() {
		if exec {
			add(0, "NotExecutable", "this file does not need to be executable")
		}
	}
	switch {
	case base == "external.mk" || base == "external.desc":
		// check-package skips these in a BR2_EXTERNAL tree.
		common()
	case strings.HasPrefix(base, "Config.in"):
		common()
		notExec()
		lintConfigIn(lines, add)
	case regexp.MustCompile(`(^|/)configs/[^/]+_defconfig$`).MatchString(name):
		lintDefconfig(lines, add)
	case strings.HasSuffix(base, ".hash"):
		common()
		notExec()
		lintHash(lines, add)
	case strings.HasSuffix(base, ".mk"):
		common()
		notExec()
		lintMk(base, lines, add)
	case strings.HasSuffix(base, ".patch"):
		notExec()
		lintPatch(base, lines, text, add)
	case regexp.MustCompile(`^S\d\d[^/]+$`).MatchString(base):
		common()
		if exec && !strings.Contains(name, "etc/init.d/") {
			add(0, "NotExecutable", "this file does not need to be executable; install it with $(INSTALL) -D -m 0755")
		}
		lintSysV(base, lines, add)
	case strings.HasPrefix(text, "#!/bin/sh") || strings.HasPrefix(text, "#!/bin/bash") || strings.HasPrefix(text, "#!/usr/bin/env bash"):
		common()
	}
	if !strings.HasSuffix(text, "\n") && text != "" && !strings.HasSuffix(base, "_defconfig") {
		add(len(lines), "NewlineAtEof", "missing newline at end of file")
	}
	return out
}

type addFunc func(line int, rule, format string, args ...any)

// lintCommon: ConsecutiveEmptyLines, EmptyLastLine, TrailingSpace,
// Utf8Characters.
func lintCommon(lines []string, add addFunc) {
	prevEmpty := false
	for i, l := range lines {
		t := strings.TrimRight(l, "\r\n")
		empty := strings.TrimSpace(t) == ""
		if empty && prevEmpty {
			add(i+1, "ConsecutiveEmptyLines", "consecutive empty lines")
		}
		prevEmpty = empty
		if t != strings.TrimRight(t, " \t") {
			add(i+1, "TrailingSpace", "line contains trailing whitespace")
		}
		for _, r := range t {
			if r >= 128 {
				add(i+1, "Utf8Characters", "line contains UTF-8 characters")
				break
			}
		}
	}
	if n := len(lines); n > 0 && strings.TrimSpace(lines[n-1]) == "" {
		add(n, "EmptyLastLine", "empty line at end of file")
	}
}

var kconfigTopLevel = []string{"choice", "comment", "config", "endchoice", "endif", "endmenu", "if", "menu", "menuconfig", "source"}

// lintConfigIn: AttributesOrder, HelpText, Indent, NoDefaultN,
// RedefinedConfig.
func lintConfigIn(lines []string, add addFunc) {
	order := map[string]int{"bool": 1, "prompt": 1, "string": 1, "default": 2, "depends": 3, "select": 4, "help": 5}
	indented := []string{"bool", "default", "depends", "help", "prompt", "select", "string"}
	state := 0
	inHelp, firstHelp, backslash := false, false, false
	seen := map[string]int{}
	var conds []string
	for i, l := range lines {
		t := strings.TrimRight(l, "\n")
		n := i + 1
		stripped := strings.TrimSpace(t)
		if stripped == "" || strings.HasPrefix(stripped, "#") {
			backslash = false
			continue
		}
		fields := strings.Fields(t)
		entry := fields[0]
		helpText := strings.HasPrefix(t, "\t  ")

		if slices.Contains(kconfigTopLevel, entry) {
			inHelp = false
		}
		if inHelp && !slices.Contains(kconfigTopLevel, entry) {
			ok := regexp.MustCompile(`^\t  .{0,62}$`).MatchString(t)
			if firstHelp {
				ok = regexp.MustCompile(`^\t  \S.{0,61}$`).MatchString(t)
			}
			firstHelp = false
			if !ok && !regexp.MustCompile(`^(http|https|git)://\S*$`).MatchString(stripped) {
				add(n, "HelpText", "help text: <tab><2 spaces><62 chars>")
			}
			continue
		}
		if stripped == "help" {
			inHelp, firstHelp = true, true
		}
		if helpText {
			continue
		}

		if backslash {
			if !strings.HasPrefix(t, "\t") {
				add(n, "Indent", "continuation line should be indented using tabs")
			}
		} else if slices.Contains(indented, entry) {
			if !strings.HasPrefix(t, "\t"+entry) {
				add(n, "Indent", "should be indented with one tab")
			}
		} else if slices.Contains(kconfigTopLevel, entry) && !strings.HasPrefix(t, entry) {
			add(n, "Indent", "should not be indented")
		}
		backslash = strings.HasSuffix(t, "\\")

		if slices.Contains(kconfigTopLevel, entry) {
			state = 0
		} else if o, ok := order[entry]; ok {
			if state > o {
				add(n, "AttributesOrder", "attributes order: type, default, depends on, select, help")
			}
			state = o
		}
		if regexp.MustCompile(`^\tdefault n\s*(#.*)?$`).MatchString(t) {
			add(n, "NoDefaultN", "boolean symbols default to 'n', so 'default n' is redundant")
		}
		switch entry {
		case "if":
			conds = append(conds, strings.Join(fields[1:], " "))
		case "endif":
			if len(conds) > 0 {
				conds = conds[:len(conds)-1]
			}
		case "config", "menuconfig":
			if len(fields) > 1 {
				key := fields[1] + " if " + strings.Join(conds, " && ")
				if prev, ok := seen[key]; ok {
					add(n, "RedefinedConfig", "config %s redeclared (previous line: %d)", fields[1], prev)
				}
				seen[key] = n
			}
		}
	}
}

// lintDefconfig: ForceCheckHash.
func lintDefconfig(lines []string, add addFunc) {
	for _, l := range lines {
		if l == "BR2_DOWNLOAD_FORCE_CHECK_HASHES=y\n" {
			return
		}
	}
	add(0, "ForceCheckHash", "missing BR2_DOWNLOAD_FORCE_CHECK_HASHES")
}

// lintHash: HashNumberOfFields, HashType, HashSpaces.
func lintHash(lines []string, add addFunc) {
	hexLen := map[string]int{"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
	for i, l := range lines {
		t := strings.TrimRight(l, "\n")
		if strings.TrimSpace(t) == "" || strings.HasPrefix(t, "#") {
			continue
		}
		f := strings.Fields(t)
		if len(f) != 3 {
			add(i+1, "HashNumberOfFields", "expected three fields")
			continue
		}
		n, ok := hexLen[f[0]]
		if !ok {
			add(i+1, "HashType", "unexpected type of hash")
		} else if !regexp.MustCompile(fmt.Sprintf(`^[0-9A-Fa-f]{%d}$`, n)).MatchString(f[1]) {
			add(i+1, "HashType", "hash size does not match type")
		}
		if t != f[0]+"  "+f[1]+"  "+f[2] {
			add(i+1, "HashSpaces", "separation does not match expectation")
		}
	}
}

// lintMk: PackageHeader, Indent, Ifdef, SpaceBeforeBackslash,
// TrailingBackslash, TypoInPackageVariable, VariableWithBraces,
// DoNotInstallToHostdirUsr, OverriddenVariable, UselessFlag,
// RemoveDefaultPackageSourceVariable, and that a package ends with its
// infrastructure's $(eval ...).
func lintMk(base string, lines []string, add addFunc) {
	pkg := strings.TrimSuffix(base, ".mk")
	upper := strings.ToUpper(strings.ReplaceAll(pkg, "-", "_"))
	if base != "external.mk" {
		want := []string{strings.Repeat("#", 80), "#", "# " + pkg, "#", strings.Repeat("#", 80), ""}
		for i, w := range want {
			if i >= len(lines) || strings.TrimRight(lines[i], " \n") != w {
				add(i+1, "PackageHeader", "should be %q (header: 80 hashes, #, # %s, #, 80 hashes, blank)", w, pkg)
			}
		}
		last := ""
		for i := len(lines) - 1; i >= 0; i-- {
			if s := strings.TrimSpace(lines[i]); s != "" {
				last = s
				break
			}
		}
		if !regexp.MustCompile(`^\$\(eval \$\((host-)?[a-z-]*package\)\)$`).MatchString(last) {
			add(len(lines), "Eval", "the last line must call the package infrastructure, e.g. $(eval $(golang-package))")
		}
	}

	conditional := regexp.MustCompile(`^\s*(ifdef|ifeq|ifndef|ifneq|else|endif)\b`)
	startCond := regexp.MustCompile(`^\s*(ifdef|ifeq|ifndef|ifneq)\b`)
	assign := regexp.MustCompile(`^([A-Z0-9_]+)\s*((\+|:|\?|)=)`)
	usuallyOverridden := regexp.MustCompile(`^[A-Z0-9_]+(_ARCH|_CPU|_SITE|_SOURCE|_VERSION|_SITE_METHOD)\s*=`)
	forbiddenOverride := regexp.MustCompile(`^[A-Z0-9_]+(_CONF_OPTS|_DEPENDENCIES)\s*=`)
	typo := regexp.MustCompile(`^(define\s+)?([A-Z0-9_]+_[A-Z0-9_]+)`)
	prefixed := regexp.MustCompile(`(HOST_|ROOTFS_)?` + upper + `_[A-Z0-9_]+`)
	inDefine, backslash, target := false, false, false
	depth := 0
	unconditional := map[string]bool{}
	conditionalSet := map[string]bool{}
	for i, l := range lines {
		t := strings.TrimRight(l, "\n")
		n := i + 1
		// Indent
		switch {
		case regexp.MustCompile(`^\s*define\s`).MatchString(t):
			inDefine = true
		case regexp.MustCompile(`^\s*endef\b`).MatchString(t):
			inDefine = false
		default:
			expectTabs := inDefine || backslash || target
			if !backslash && conditional.MatchString(t) {
				expectTabs = false
			}
			switch {
			case regexp.MustCompile(`^[^# \t]+:\s`).MatchString(t):
				target = true
			case strings.TrimSpace(t) == "":
				target = false
			case inDefine && strings.HasPrefix(strings.TrimSpace(t), "#"):
			case expectTabs && !strings.HasPrefix(t, "\t"):
				add(n, "Indent", "expected indent with tabs")
			case !expectTabs && strings.HasPrefix(t, "\t"):
				add(n, "Indent", "unexpected indent with tabs")
			}
		}
		wasBackslash := backslash
		backslash = regexp.MustCompile(`^[^#].*\\$`).MatchString(t)
		if wasBackslash && strings.TrimSpace(t) == "" {
			add(n-1, "TrailingBackslash", "remove trailing backslash")
		}
		if m := regexp.MustCompile(`^\s*(else\s+|)(ifdef|ifndef)\s`).FindStringSubmatch(t); m != nil {
			add(n, "Ifdef", "use ifeq ($(SYMBOL),y) instead of %s SYMBOL", m[2])
		}
		if regexp.MustCompile(`^.*(  |\t ?)\\$`).MatchString(t) {
			add(n, "SpaceBeforeBackslash", "use only one space before backslash")
		}
		if regexp.MustCompile(`^[^#].*[^$]\$\{\w+\}`).MatchString(t) {
			add(n, "VariableWithBraces", "use $() to delimit variables, not ${}")
		}
		if regexp.MustCompile(`^[^#].*\$\(HOST_DIR\)/usr`).MatchString(t) {
			add(n, "DoNotInstallToHostdirUsr", "install files to $(HOST_DIR)/ instead of $(HOST_DIR)/usr/")
		}
		if regexp.MustCompile(`^.*(_INSTALL_IMAGES\s*=\s*NO|_REDISTRIBUTE\s*=\s*YES|_INSTALL_STAGING\s*=\s*NO|_INSTALL_TARGET\s*=\s*YES)`).MatchString(t) && depth == 0 {
			add(n, "UselessFlag", "useless default value")
		}
		if regexp.MustCompile(`^` + upper + `_SOURCE\s*=\s*` + regexp.QuoteMeta(pkg) + `-\$\(` + upper + `_VERSION\)\.tar\.gz`).MatchString(t) {
			add(n, "RemoveDefaultPackageSourceVariable", "remove default value of _SOURCE variable")
		}
		if base != "external.mk" {
			if m := typo.FindStringSubmatch(t); m != nil && !prefixed.MatchString(m[2]) {
				add(n, "TypoInPackageVariable", "possible typo, variable not properly prefixed: %s -> *%s_XXXX*", m[2], upper)
			}
		}
		// OverriddenVariable
		switch {
		case startCond.MatchString(t):
			depth++
			continue
		case regexp.MustCompile(`^\s*endif\b`).MatchString(t):
			depth--
			continue
		}
		m := assign.FindStringSubmatch(t)
		if m == nil || inDefine {
			continue
		}
		v, op := m[1], m[2]
		overriding := op == "=" || op == ":="
		if depth == 0 {
			if conditionalSet[v] && overriding {
				add(n, "OverriddenVariable", "unconditional override of variable %s previously conditionally set", v)
			} else if unconditional[v] && overriding {
				add(n, "OverriddenVariable", "unconditional override of variable %s", v)
			}
			unconditional[v] = true
			continue
		}
		if forbiddenOverride.MatchString(t) {
			add(n, "OverriddenVariable", "conditional override of variable %s", v)
		}
		if !unconditional[v] {
			conditionalSet[v] = true
		} else if overriding && !usuallyOverridden.MatchString(t) {
			add(n, "OverriddenVariable", "conditional override of variable %s", v)
		}
	}
}

// lintPatch: ApplyOrder, NumberedSubject, Sob, Upstream.
func lintPatch(base string, lines []string, text string, add addFunc) {
	if !regexp.MustCompile(`^\d{1,4}-[^/]*$`).MatchString(base) {
		add(0, "ApplyOrder", "use name <number>-<description>.patch")
	}
	if strings.Contains(text, "\ndiff --git") && regexp.MustCompile(`Subject:\s*\[PATCH\s*\d+/\d+\]`).MatchString(text) {
		add(0, "NumberedSubject", "generate your patches with 'git format-patch -N'")
	}
	if !regexp.MustCompile(`(?m)^Signed-off-by: .*$`).MatchString(text) {
		add(0, "Sob", "missing Signed-off-by in the header")
	}
	if !regexp.MustCompile(`(?m)^Upstream: .*$`).MatchString(text) {
		add(0, "Upstream", "missing Upstream in the header")
	}
}

// lintSysV: Indent (tabs only) and Variables (DAEMON, PIDFILE, file name).
func lintSysV(base string, lines []string, add addFunc) {
	daemon := ""
	for i, l := range lines {
		t := strings.TrimRight(l, "\n")
		if regexp.MustCompile(`^[\t]* `).MatchString(strings.TrimRight(t, " \t")) {
			add(i+1, "Indent", "should be indented with tabs")
		}
		if m := regexp.MustCompile(`^DAEMON=["']?([^"']*)["']?`).FindStringSubmatch(t); m != nil {
			if daemon != "" {
				add(i+1, "Variables", "DAEMON variable redefined")
			}
			daemon = m[1]
			if strings.Contains(daemon, "/") {
				add(i+1, "Variables", "do not include a path in DAEMON")
				daemon = path.Base(daemon)
			}
		}
		if m := regexp.MustCompile(`^PIDFILE=["']?([^"']*)["']?`).FindStringSubmatch(t); m != nil &&
			!regexp.MustCompile(`^/var/run/(\$DAEMON|\$\{DAEMON\})\.pid$`).MatchString(m[1]) {
			add(i+1, "Variables", `incorrect PIDFILE value, want PIDFILE="/var/run/$DAEMON.pid"`)
		}
	}
	if daemon == "" {
		add(0, "Variables", "DAEMON variable not defined")
	} else if !regexp.MustCompile(`^S\d\d` + regexp.QuoteMeta(daemon) + `$`).MatchString(base) {
		add(0, "Variables", "file name should be S<number><number>%s", daemon)
	}
}

// TestBuildrootStyle runs the rules over buildroot-package/ and the init
// script the package installs from packaging/.
func TestBuildrootStyle(t *testing.T) {
	root := filepath.Join(repoRoot, "buildroot-package")
	files := map[string]string{"packaging/S25jailhouse": filepath.Join(repoRoot, "packaging", "S25jailhouse")}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = p
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d files found under %s", len(files), root)
	}
	for name, p := range files {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range lintBuildroot(name, string(data), fi.Mode()&0o111 != 0) {
			t.Errorf("%s:%s", name, f)
		}
	}
}

// TestBuildrootLintRules shows every rule catching what check-package
// catches, so that a rule that stopped working would fail here.
func TestBuildrootLintRules(t *testing.T) {
	const header = "################################################################################\n#\n# foo\n#\n################################################################################\n\n"
	tests := []struct {
		name, file, text string
		exec             bool
		rule             string
	}{
		{"trailing space", "package/foo/Config.in", "config BR2_PACKAGE_FOO\n\tbool \"foo\" \n", false, "TrailingSpace"},
		{"two empty lines", "package/foo/Config.in", "config BR2_PACKAGE_FOO\n\n\n\tbool \"foo\"\n", false, "ConsecutiveEmptyLines"},
		{"empty last line", "package/foo/Config.in", "config BR2_PACKAGE_FOO\n\tbool \"foo\"\n\n", false, "EmptyLastLine"},
		{"no newline", "package/foo/Config.in", "config BR2_PACKAGE_FOO\n\tbool \"foo\"", false, "NewlineAtEof"},
		{"executable", "package/foo/Config.in", "config BR2_PACKAGE_FOO\n\tbool \"foo\"\n", true, "NotExecutable"},
		{"attribute order", "package/foo/Config.in", "config BR2_PACKAGE_FOO\n\tbool \"foo\"\n\tselect BR2_PACKAGE_BAR\n\tdepends on BR2_USE_MMU\n", false, "AttributesOrder"},
		{"help too long", "package/foo/Config.in", "config BR2_PACKAGE_FOO\n\tbool \"foo\"\n\thelp\n\t  " + strings.Repeat("x", 63) + "\n", false, "HelpText"},
		{"help with tab", "package/foo/Config.in", "config BR2_PACKAGE_FOO\n\tbool \"foo\"\n\thelp\n\t\tFoo.\n", false, "HelpText"},
		{"attribute with spaces", "package/foo/Config.in", "config BR2_PACKAGE_FOO\n    bool \"foo\"\n", false, "Indent"},
		{"indented config", "package/foo/Config.in", "\tconfig BR2_PACKAGE_FOO\n\tbool \"foo\"\n", false, "Indent"},
		{"default n", "package/foo/Config.in", "config BR2_PACKAGE_FOO\n\tbool \"foo\"\n\tdefault n\n", false, "NoDefaultN"},
		{"redefined", "package/foo/Config.in", "config BR2_PACKAGE_FOO\n\tbool \"foo\"\n\nconfig BR2_PACKAGE_FOO\n\tbool \"foo\"\n", false, "RedefinedConfig"},
		{"no force check", "configs/foo_defconfig", "BR2_aarch64=y\n", false, "ForceCheckHash"},
		{"hash fields", "package/foo/foo.hash", "sha256  abc\n", false, "HashNumberOfFields"},
		{"hash length", "package/foo/foo.hash", "sha256  abc  LICENSE\n", false, "HashType"},
		{"hash spaces", "package/foo/foo.hash", "sha256 " + strings.Repeat("a", 64) + "  LICENSE\n", false, "HashSpaces"},
		{"mk header", "package/foo/foo.mk", "# foo\n\nFOO_VERSION = 1\n\n$(eval $(generic-package))\n", false, "PackageHeader"},
		{"mk eval", "package/foo/foo.mk", header + "FOO_VERSION = 1\n", false, "Eval"},
		{"mk prefix", "package/foo/foo.mk", header + "BAR_VERSION = 1\n\n$(eval $(generic-package))\n", false, "TypoInPackageVariable"},
		{"mk ifdef", "package/foo/foo.mk", header + "ifdef BR2_FOO\nFOO_X = 1\nendif\n\n$(eval $(generic-package))\n", false, "Ifdef"},
		{"mk spaces in define", "package/foo/foo.mk", header + "define FOO_CMDS\n    true\nendef\n\n$(eval $(generic-package))\n", false, "Indent"},
		{"mk tab outside", "package/foo/foo.mk", header + "\tFOO_X = 1\n\n$(eval $(generic-package))\n", false, "Indent"},
		{"mk braces", "package/foo/foo.mk", header + "FOO_X = ${FOO_Y}\n\n$(eval $(generic-package))\n", false, "VariableWithBraces"},
		{"mk backslash", "package/foo/foo.mk", header + "FOO_X = a  \\\n\tb\n\n$(eval $(generic-package))\n", false, "SpaceBeforeBackslash"},
		{"mk override", "package/foo/foo.mk", header + "FOO_X = a\nFOO_X = b\n\n$(eval $(generic-package))\n", false, "OverriddenVariable"},
		{"mk conditional deps", "package/foo/foo.mk", header + "ifeq ($(BR2_X),y)\nFOO_DEPENDENCIES = bar\nendif\n\n$(eval $(generic-package))\n", false, "OverriddenVariable"},
		{"mk useless", "package/foo/foo.mk", header + "FOO_INSTALL_TARGET = YES\n\n$(eval $(generic-package))\n", false, "UselessFlag"},
		{"patch name", "package/foo/fix.patch", "Subject: x\nSigned-off-by: a <b>\nUpstream: c\n", false, "ApplyOrder"},
		{"patch sob", "package/foo/0001-fix.patch", "Subject: x\nUpstream: c\n", false, "Sob"},
		{"patch upstream", "package/foo/0001-fix.patch", "Subject: x\nSigned-off-by: a <b>\n", false, "Upstream"},
		{"init spaces", "package/foo/S50foo", "#!/bin/sh\nDAEMON=\"foo\"\nstart() {\n    true\n}\n", false, "Indent"},
		{"init daemon", "package/foo/S50foo", "#!/bin/sh\nstart() {\n\ttrue\n}\n", false, "Variables"},
		{"init name", "package/foo/S50foo", "#!/bin/sh\nDAEMON=\"bar\"\n", false, "Variables"},
		{"init pidfile", "package/foo/S50foo", "#!/bin/sh\nDAEMON=\"foo\"\nPIDFILE=\"/run/foo.pid\"\n", false, "Variables"},
		{"init executable", "package/foo/S50foo", "#!/bin/sh\nDAEMON=\"foo\"\n", true, "NotExecutable"},
		{"script spaces", "board/foo/post-image.sh", "#!/bin/sh\ntrue \n", false, "TrailingSpace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lintBuildroot(tt.file, tt.text, tt.exec)
			if !slices.ContainsFunc(got, func(f brFinding) bool { return f.rule == tt.rule }) {
				t.Errorf("no %s finding; got %v", tt.rule, got)
			}
		})
	}

	// And the good forms pass.
	good := map[string]string{
		"package/foo/Config.in": "config BR2_PACKAGE_FOO\n\tbool \"foo\"\n\tdepends on BR2_USE_MMU\n\tselect BR2_PACKAGE_BAR\n\thelp\n\t  Foo does bar.\n\n\t  https://example.org/a/very/long/url/that/is/longer/than/sixty/two/characters\n",
		"package/foo/foo.mk":    header + "FOO_VERSION = 1\nifeq ($(BR2_X),y)\nFOO_SITE = a\nendif\n\ndefine FOO_CMDS\n\ttrue\nendef\n\n$(eval $(generic-package))\n",
		"package/foo/foo.hash":  "# Locally computed\nsha256  " + strings.Repeat("a", 64) + "  LICENSE\n",
	}
	for file, text := range good {
		if got := lintBuildroot(file, text, false); len(got) != 0 {
			t.Errorf("%s: unexpected findings %v", file, got)
		}
	}
}
