package packaging

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// This file checks the Yocto layer against the OpenEmbedded style guide
// and the rules oelint-adv applies to it (no network, so no oelint-adv in
// CI): variable order, assignment style, indentation, hard-coded paths,
// mandatory variables and layer.conf keys.

// oeVarOrder is the style guide's order of the variables a recipe sets;
// "inherit" stands for the inherit lines.
var oeVarOrder = []string{
	"SUMMARY", "DESCRIPTION", "AUTHOR", "HOMEPAGE", "BUGTRACKER", "SECTION",
	"LICENSE", "LIC_FILES_CHKSUM", "DEPENDS", "PROVIDES", "PV", "SRC_URI",
	"SRCREV", "S", "inherit", "PACKAGECONFIG", "EXTRA_OECONF", "EXTRA_OEMAKE",
	"PACKAGE_ARCH", "PACKAGES", "FILES", "RDEPENDS", "RRECOMMENDS",
	"RSUGGESTS", "RPROVIDES", "RCONFLICTS", "BBCLASSEXTEND",
}

// oeHardPaths are paths a recipe must spell with BitBake's directory
// variables (oelint.vars.pathhardcode).
var oeHardPaths = map[string]string{
	"/usr/bin": "${bindir}", "/usr/sbin": "${sbindir}", "/usr/libexec": "${libexecdir}",
	"/usr/lib": "${libdir}", "/usr/share": "${datadir}", "/etc/": "${sysconfdir}",
	"/var/": "${localstatedir}", "/lib/systemd": "${systemd_unitdir}", "/usr/include": "${includedir}",
}

// lintRecipe checks a .bb or .bbappend file.
func lintRecipe(name, text string) []string {
	var out []string
	add := func(line int, format string, args ...any) {
		out = append(out, fmt.Sprintf("%d: %s", line, fmt.Sprintf(format, args...)))
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	lintOECommon(lines, text, add)

	assign := regexp.MustCompile(`^([A-Za-z0-9_${}:\-.\[\]/+@]+?)(\s*)(\?\?=|\?=|:=|\+=|=\+|\.=|=\.|=)(\s*)(.*)$`)
	funcStart := regexp.MustCompile(`^(python\s+)?[a-z_][a-zA-Z0-9_:\-${}]*\s*\(\)\s*\{$`)
	set := map[string]int{}
	lastOrder, lastVar := -1, ""
	inFunc, inContinuation := false, false
	isPackagegroup := strings.Contains(text, "\ninherit packagegroup")
	for i, l := range lines {
		n := i + 1
		trimmed := strings.TrimSpace(l)
		if inFunc {
			if l == "}" {
				inFunc = false
				continue
			}
			indent := len(l) - len(strings.TrimLeft(l, " "))
			if trimmed != "" && indent%4 != 0 {
				add(n, "function body indented by %d spaces, want a multiple of 4", indent)
			}
			lintPaths(n, l, add)
			continue
		}
		if inContinuation {
			inContinuation = strings.HasSuffix(l, "\\")
			lintPaths(n, l, add)
			continue
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if funcStart.MatchString(l) {
			inFunc = true
			continue
		}
		key := ""
		if strings.HasPrefix(l, "inherit ") {
			key = "inherit"
		} else if m := assign.FindStringSubmatch(l); m != nil {
			if m[2] != " " || m[4] != " " {
				add(n, "%s: one space on each side of %s", m[1], m[3])
			}
			if !strings.HasPrefix(m[5], `"`) {
				add(n, "%s: value must be in double quotes", m[1])
			}
			inContinuation = strings.HasSuffix(l, "\\")
			lintPaths(n, m[5], add)
			// The base name: FILES:${PN} -> FILES, do_compile[network] -> do_compile.
			key = regexp.MustCompile(`^[A-Za-z0-9_]+`).FindString(m[1])
			if _, dup := set[m[1]]; dup && m[3] == "=" {
				add(n, "%s assigned twice", m[1])
			}
			set[m[1]] = n
		} else {
			continue
		}
		if k := slices.Index(oeVarOrder, key); k >= 0 {
			if k < lastOrder {
				add(n, "%s should come before %s (style guide order)", key, lastVar)
			}
			lastOrder, lastVar = k, key
		}
	}
	if inFunc {
		add(len(lines), "unterminated function")
	}

	mandatory := []string{"SUMMARY", "DESCRIPTION", "HOMEPAGE", "LICENSE"}
	if !isPackagegroup {
		mandatory = append(mandatory, "LIC_FILES_CHKSUM", "SRC_URI")
	}
	for _, v := range mandatory {
		if _, ok := set[v]; !ok {
			add(0, "mandatory variable %s missing", v)
		}
	}
	for _, m := range regexp.MustCompile(`git://[^"\s]*`).FindAllString(text, -1) {
		for _, opt := range []string{";protocol=", ";branch="} {
			if !strings.Contains(m, opt) {
				add(0, "SRC_URI %s: git URLs need %s", m, strings.Trim(opt, ";="))
			}
		}
	}
	return out
}

// lintPaths reports hard-coded system paths in a value or shell line,
// outside comments.
func lintPaths(n int, s string, add func(int, string, ...any)) {
	code, _, _ := strings.Cut(s, "#")
	for p, v := range oeHardPaths {
		if regexp.MustCompile(`(^|[\s"'=:}])` + regexp.QuoteMeta(p)).MatchString(code) {
			add(n, "hard-coded path %s, use %s", p, v)
		}
	}
}

// lintOECommon: no tabs, no trailing whitespace, no consecutive empty
// lines, a final newline.
func lintOECommon(lines []string, text string, add func(int, string, ...any)) {
	for i, l := range lines {
		if strings.Contains(l, "\t") {
			add(i+1, "tab character; OpenEmbedded uses spaces")
		}
		if l != strings.TrimRight(l, " ") {
			add(i+1, "trailing whitespace")
		}
		if i > 0 && strings.TrimSpace(l) == "" && strings.TrimSpace(lines[i-1]) == "" {
			add(i+1, "consecutive empty lines")
		}
	}
	if !strings.HasSuffix(text, "\n") {
		add(len(lines), "missing newline at end of file")
	}
}

// lintLayerConf checks the keys every layer.conf needs and the releases it
// declares.
func lintLayerConf(text string) []string {
	var out []string
	add := func(line int, format string, args ...any) {
		out = append(out, fmt.Sprintf("%d: %s", line, fmt.Sprintf(format, args...)))
	}
	lintOECommon(strings.Split(strings.TrimSuffix(text, "\n"), "\n"), text, add)
	m := regexp.MustCompile(`(?m)^BBFILE_COLLECTIONS \+= "(\w[\w-]*)"$`).FindStringSubmatch(text)
	if m == nil {
		return append(out, `0: no BBFILE_COLLECTIONS += "<name>"`)
	}
	c := m[1]
	for _, k := range []string{"BBPATH", "BBFILES", "BBFILE_PATTERN_" + c, "BBFILE_PRIORITY_" + c,
		"LAYERVERSION_" + c, "LAYERDEPENDS_" + c, "LAYERSERIES_COMPAT_" + c} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(k) + ` (\.=|\+=|=) "`).MatchString(text) {
			add(0, "%s is not set", k)
		}
	}
	compat := regexp.MustCompile(`(?m)^LAYERSERIES_COMPAT_` + regexp.QuoteMeta(c) + ` = "([^"]*)"`).FindStringSubmatch(text)
	if compat == nil || !slices.Contains(strings.Fields(compat[1]), "scarthgap") {
		add(0, "LAYERSERIES_COMPAT_%s must include scarthgap", c)
	}
	return out
}

// TestYoctoStyle lints every recipe and the layer configuration.
func TestYoctoStyle(t *testing.T) {
	root := filepath.Join(repoRoot, "yocto-layer", "meta-runphi")
	var recipes []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && (strings.HasSuffix(p, ".bb") || strings.HasSuffix(p, ".bbappend")) {
			recipes = append(recipes, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(recipes) < 2 {
		t.Fatalf("found %d recipes under %s, want the runphi recipe and the packagegroup", len(recipes), root)
	}
	for _, p := range recipes {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range lintRecipe(p, string(data)) {
			t.Errorf("%s:%s", p, f)
		}
	}
	conf := readRepoFile(t, "yocto-layer/meta-runphi/conf/layer.conf")
	for _, f := range lintLayerConf(conf) {
		t.Errorf("layer.conf:%s", f)
	}
}

// TestYoctoLintRules shows each rule catching a bad recipe.
func TestYoctoLintRules(t *testing.T) {
	const head = "SUMMARY = \"s\"\nDESCRIPTION = \"d\"\nHOMEPAGE = \"h\"\nLICENSE = \"MIT\"\nLIC_FILES_CHKSUM = \"file://x;md5=0\"\n"
	const src = "SRC_URI = \"git://example.org/x.git;protocol=https;branch=main\"\n"
	tests := []struct{ name, text, want string }{
		{"tab", head + src + "do_install() {\n\tinstall -d ${D}${bindir}\n}\n", "tab character"},
		{"order", head + "inherit go\n" + src, "SRC_URI should come before inherit"},
		{"spacing", head + src + "PV=\"1\"\n", "one space on each side"},
		{"quotes", head + src + "S = ${WORKDIR}/git\n", "double quotes"},
		{"indent", head + src + "do_install() {\n  true\n}\n", "multiple of 4"},
		{"path", head + src + "do_install() {\n    install -d ${D}/usr/bin\n}\n", "hard-coded path /usr/bin"},
		{"path in value", head + src + "FILES:${PN} += \"/etc/foo\"\n", "hard-coded path /etc/"},
		{"mandatory", "SUMMARY = \"s\"\n", "mandatory variable DESCRIPTION missing"},
		{"git options", head + "SRC_URI = \"git://example.org/x.git\"\n", "git URLs need protocol"},
		{"twice", head + src + "PV = \"1\"\nPV = \"2\"\n", "PV assigned twice"},
		{"trailing", head + src + "PV = \"1\" \n", "trailing whitespace"},
		{"newline", head + src + "PV = \"1\"", "missing newline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lintRecipe("x.bb", tt.text)
			if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, tt.want) }) {
				t.Errorf("want a finding containing %q, got %v", tt.want, got)
			}
		})
	}
	if got := lintRecipe("x.bb", head+src+"inherit go\n\ndo_install() {\n    install -d ${D}${bindir}\n}\n"); len(got) != 0 {
		t.Errorf("good recipe: %v", got)
	}
	if got := lintLayerConf("BBFILE_COLLECTIONS += \"x\"\nLAYERSERIES_COMPAT_x = \"styhead\"\n"); !slices.ContainsFunc(got, func(s string) bool {
		return strings.Contains(s, "scarthgap")
	}) || !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "BBPATH") }) {
		t.Errorf("layer.conf without BBPATH and scarthgap: %v", got)
	}
}
