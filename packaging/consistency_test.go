package packaging

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/runphi-go/runphi/runphi/config"
)

// The facts every packaging must agree on.
const (
	modulePath    = "github.com/runphi-go/runphi"
	versionSymbol = modulePath + "/internal/version.version"
	boardsDir     = "/usr/share/runphi/boards"
	configPath    = "/etc/runphi/config.json"
	containerdDir = "/etc/containerd/conf.d/runphi.toml"
	enableScript  = "/usr/libexec/runphi/jailhouse-enable"
	enableUnit    = "/usr/lib/systemd/system/jailhouse-enable.service"
	jailhouseDflt = "/etc/default/jailhouse"
	// boardSed is the text Buildroot and Yocto replace to point the
	// installed configuration at the chosen board.
	boardSed = `/boards/qemu-arm64"`
)

// binaries are the commands, by directory, that every packaging builds.
var binaries = []string{"runphi", "jhctl", "cellgen"}

// packaging is what one build description claims.
type packaging struct {
	name     string
	version  string   // the version it builds (possibly with a +git suffix)
	module   string   // the Go module path it builds
	binaries []string // command directories, sorted
	xflag    string   // the -X assignment, variables expanded
	static   bool     // CGO_ENABLED=0
	paths    []string // installed paths, as on the target
}

func repoVersion(t *testing.T) string {
	t.Helper()
	v := strings.TrimSpace(readRepoFile(t, "VERSION"))
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("VERSION %q is not MAJOR.MINOR.PATCH", v)
	}
	return v
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func buildrootPackaging(t *testing.T) packaging {
	const file = "buildroot-package/package/runphi/runphi.mk"
	mk := readRepoFile(t, file)
	p := packaging{name: "Buildroot"}
	p.version = makeVar(t, file, mk, "RUNPHI_VERSION")
	p.module = makeVar(t, file, mk, "RUNPHI_GOMOD")
	p.binaries = sorted(strings.Fields(makeVar(t, file, mk, "RUNPHI_BUILD_TARGETS")))
	p.xflag = strings.NewReplacer("$(RUNPHI_GOMOD)", p.module, "$(RUNPHI_VERSION)", p.version).
		Replace(strings.TrimPrefix(makeVar(t, file, mk, "RUNPHI_LDFLAGS"), "-X "))
	p.static = strings.Contains(makeVar(t, file, mk, "RUNPHI_GO_ENV"), "CGO_ENABLED=0")
	// golang-package installs every build target as /usr/bin/<name>.
	for _, b := range p.binaries {
		p.paths = append(p.paths, "/usr/bin/"+b)
	}
	for _, m := range regexp.MustCompile(`\$\(TARGET_DIR\)(/[^\s\\]*)`).FindAllStringSubmatch(joinContinuations(mk), -1) {
		p.paths = append(p.paths, strings.TrimSuffix(m[1], "/"))
	}
	return p
}

func yoctoPackaging(t *testing.T) packaging {
	const file = "yocto-layer/meta-runphi/recipes-containers/runphi/runphi_git.bb"
	bb := readRepoFile(t, file)
	p := packaging{name: "Yocto"}
	p.version = bbVar(t, file, bb, "PV")
	p.module = bbVar(t, file, bb, "GO_IMPORT")
	for _, imp := range strings.Fields(bbVar(t, file, bb, "GO_INSTALL")) {
		p.binaries = append(p.binaries, strings.TrimPrefix(imp, "${GO_IMPORT}/"))
	}
	p.binaries = sorted(p.binaries)
	p.xflag = strings.NewReplacer("${GO_IMPORT}", p.module, "${PV}", p.version).
		Replace(strings.TrimPrefix(bbVar(t, file, bb, "GO_EXTRA_LDFLAGS"), "-X "))
	p.static = bbVar(t, file, bb, "CGO_ENABLED") == "0"
	// go.bbclass installs the built commands into ${bindir}.
	for _, b := range p.binaries {
		p.paths = append(p.paths, "/usr/bin/"+b)
	}
	dirs := strings.NewReplacer(
		"${datadir}", "/usr/share",
		"${sysconfdir}", "/etc",
		"${libexecdir}", "/usr/libexec",
		"${systemd_system_unitdir}", "/usr/lib/systemd/system",
	)
	for _, m := range regexp.MustCompile(`\$\{D\}(\$\{[a-z_]+\}[^\s\\]*)`).FindAllStringSubmatch(joinContinuations(bb), -1) {
		p.paths = append(p.paths, strings.TrimSuffix(dirs.Replace(m[1]), "/"))
	}
	return p
}

func nixPackaging(t *testing.T) packaging {
	const file = "nix/package.nix"
	nix := readRepoFile(t, file)
	p := packaging{name: "Nix"}
	if !strings.Contains(nix, "version = lib.fileContents ../VERSION;") {
		t.Fatalf("%s: version is not read from the VERSION file", file)
	}
	p.version = repoVersion(t)
	p.module = modulePath // Nix builds whatever module go.mod names
	sub := regexp.MustCompile(`(?s)subPackages = \[(.*?)\];`).FindStringSubmatch(nix)
	if sub == nil {
		t.Fatalf("%s: no subPackages list", file)
	}
	for _, m := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(sub[1], -1) {
		p.binaries = append(p.binaries, m[1])
	}
	p.binaries = sorted(p.binaries)
	x := regexp.MustCompile(`"-X ([^"]+)"`).FindStringSubmatch(nix)
	if x == nil {
		t.Fatalf("%s: no -X ldflag", file)
	}
	p.xflag = strings.ReplaceAll(x[1], "${finalAttrs.version}", p.version)
	p.static = strings.Contains(nix, "env.CGO_ENABLED = 0;")
	// buildGoModule installs the subPackages into $out/bin.
	for _, b := range p.binaries {
		p.paths = append(p.paths, "/usr/bin/"+b)
	}
	prefix := strings.NewReplacer("/share/", "/usr/share/", "/etc/", "/etc/")
	for _, m := range regexp.MustCompile(`\$out(/[^\s;']*)`).FindAllStringSubmatch(nix, -1) {
		p.paths = append(p.paths, prefix.Replace(m[1]))
	}
	return p
}

func makefilePackaging(t *testing.T) packaging {
	const file = "Makefile"
	mk := readRepoFile(t, file)
	// The Makefile's version is $(VERSION), which TestMakefileReadsVERSION
	// ties to the VERSION file.
	p := packaging{name: "Makefile", module: modulePath, version: repoVersion(t)}
	w := regexp.MustCompile(`wildcard ([^)]*)\)`).FindStringSubmatch(makeVar(t, file, mk, "BINARIES"))
	if w == nil {
		t.Fatalf("%s: BINARIES does not list the command directories", file)
	}
	for _, f := range strings.Fields(w[1]) {
		p.binaries = append(p.binaries, strings.TrimSuffix(f, "/main.go"))
	}
	p.binaries = sorted(p.binaries)
	x := regexp.MustCompile(`-X (\S+)`).FindStringSubmatch(makeVar(t, file, mk, "LDFLAGS"))
	if x == nil {
		t.Fatalf("%s: LDFLAGS has no -X", file)
	}
	p.xflag = strings.ReplaceAll(x[1], "$(VERSION)", p.version)
	p.static = regexp.MustCompile(`(?m)^build-arm64:\n(?:\t.*\n)*\t.*CGO_ENABLED=0`).MatchString(mk)
	return p
}

// TestMakefileReadsVERSION checks that make builds the version the VERSION
// file names, like every packaging does.
func TestMakefileReadsVERSION(t *testing.T) {
	v := makeVar(t, "Makefile", readRepoFile(t, "Makefile"), "VERSION")
	if !regexp.MustCompile(`^\$\((shell cat VERSION|file <VERSION)\)$`).MatchString(v) {
		t.Errorf("Makefile: VERSION ?= %s; want it read from the VERSION file: VERSION ?= $(shell cat VERSION)", v)
	}
}

// TestPackagingsAgree checks that the Makefile, Buildroot, Yocto and Nix
// build the same version of the same module into the same static
// binaries, stamp the version the same way, and install the shared files
// at the same places.
func TestPackagingsAgree(t *testing.T) {
	version := repoVersion(t)
	goMod := readRepoFile(t, "go.mod")
	if m := regexp.MustCompile(`(?m)^module (\S+)$`).FindStringSubmatch(goMod); m == nil || m[1] != modulePath {
		t.Fatalf("go.mod module = %v, want %s", m, modulePath)
	}
	// The -X target must exist, or every packaging stamps nothing.
	if !strings.Contains(readRepoFile(t, "internal/version/version.go"), "\nvar version string\n") {
		t.Fatalf("internal/version/version.go has no package-level `var version string` for -X %s", versionSymbol)
	}
	for _, b := range binaries {
		if fi, err := os.Stat(filepath.Join(repoRoot, b)); err != nil || !fi.IsDir() {
			t.Errorf("command directory %s/ is missing (%v)", b, err)
		}
	}

	commonPaths := []string{boardsDir, configPath}
	targetPaths := []string{containerdDir, jailhouseDflt, enableScript, enableUnit}
	for _, get := range []func(*testing.T) packaging{makefilePackaging, buildrootPackaging, yoctoPackaging, nixPackaging} {
		p := get(t)
		t.Run(p.name, func(t *testing.T) {
			if p.version != version && !strings.HasPrefix(p.version, version+"+") {
				t.Errorf("version %q, VERSION file says %q", p.version, version)
			}
			if p.module != modulePath {
				t.Errorf("module %q, want %q", p.module, modulePath)
			}
			if !slices.Equal(p.binaries, sorted(binaries)) {
				t.Errorf("binaries %v, want %v", p.binaries, sorted(binaries))
			}
			if want := versionSymbol + "=" + p.version; p.xflag != want {
				t.Errorf("-X %q, want %q", p.xflag, want)
			}
			if !p.static {
				t.Error("does not build with CGO_ENABLED=0")
			}
			if p.name == "Makefile" {
				return // the Makefile installs nothing
			}
			want := slices.Clone(commonPaths)
			for _, b := range binaries {
				want = append(want, "/usr/bin/"+b)
			}
			if p.name != "Nix" {
				want = append(want, targetPaths...)
			}
			for _, path := range want {
				if !slices.Contains(p.paths, path) {
					t.Errorf("does not install %s (installs %v)", path, p.paths)
				}
			}
		})
	}
}

// TestRecipeMetadata checks the license checksums, the layer's release
// compatibility and the Buildroot option names.
func TestRecipeMetadata(t *testing.T) {
	license := []byte(readRepoFile(t, "LICENSE"))
	md5sum := md5.Sum(license)
	sha := sha256.Sum256(license)

	bb := readRepoFile(t, "yocto-layer/meta-runphi/recipes-containers/runphi/runphi_git.bb")
	if want := "file://src/${GO_IMPORT}/LICENSE;md5=" + hex.EncodeToString(md5sum[:]); !strings.Contains(bb, want) {
		t.Errorf("Yocto LIC_FILES_CHKSUM does not match LICENSE: want %s", want)
	}
	hash := readRepoFile(t, "buildroot-package/package/runphi/runphi.hash")
	if want := "sha256  " + hex.EncodeToString(sha[:]) + "  LICENSE"; !strings.Contains(hash, want) {
		t.Errorf("runphi.hash does not hold the LICENSE hash %s", want)
	}
	if !strings.Contains(string(license), "Apache License\n                           Version 2.0") {
		t.Error("LICENSE is not the Apache-2.0 text both recipes declare")
	}

	layer := readRepoFile(t, "yocto-layer/meta-runphi/conf/layer.conf")
	compat := strings.Fields(bbVar(t, "layer.conf", layer, "LAYERSERIES_COMPAT_runphi"))
	if !slices.Contains(compat, "scarthgap") {
		t.Errorf("LAYERSERIES_COMPAT_runphi = %v, want scarthgap among them", compat)
	}

	cfg := readRepoFile(t, "buildroot-package/package/runphi/Config.in")
	mk := readRepoFile(t, "buildroot-package/package/runphi/runphi.mk")
	defconfig := readRepoFile(t, "buildroot-package/configs/runphi_qemu_arm64_defconfig")
	for _, m := range regexp.MustCompile(`BR2_PACKAGE_RUNPHI\w*`).FindAllString(mk+defconfig, -1) {
		if !strings.Contains(cfg, "config "+m+"\n") {
			t.Errorf("%s is used but Config.in does not define it", m)
		}
	}
	desc := readRepoFile(t, "buildroot-package/external.desc")
	if !strings.Contains(desc, "name: RUNPHI\n") || !strings.Contains(mk+defconfig, "BR2_EXTERNAL_RUNPHI_PATH") {
		t.Error("external.desc name and the BR2_EXTERNAL_RUNPHI_PATH references disagree")
	}
}

// TestInstalledConfiguration checks the files the packagings install
// against the code that reads them.
func TestInstalledConfiguration(t *testing.T) {
	// Load the file the way runphi does, with no other environment.
	path, err := filepath.Abs(filepath.Join(repoRoot, "packaging", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(func(key string) string {
		if key == config.PathEnv {
			return path
		}
		return ""
	})
	if err != nil {
		t.Fatalf("packaging/config.json: %v", err)
	}
	if dir, board := filepath.Split(cfg.BoardDir); filepath.Clean(dir) != boardsDir || board != "qemu-arm64" {
		t.Errorf("board_dir %s, want %s/qemu-arm64", cfg.BoardDir, boardsDir)
	}
	if cfg.LinuxLoader != config.Default().LinuxLoader {
		t.Errorf("linux_loader %s, the code defaults to %s", cfg.LinuxLoader, config.Default().LinuxLoader)
	}

	// Buildroot and Yocto retarget the board by replacing boardSed.
	for _, f := range []string{"packaging/config.json", "packaging/jailhouse.default"} {
		if !strings.Contains(readRepoFile(t, f), boardSed) {
			t.Errorf("%s lacks %s, which the packagings replace to set the board", f, boardSed)
		}
	}
	for _, f := range []string{
		"buildroot-package/package/runphi/runphi.mk",
		"yocto-layer/meta-runphi/recipes-containers/runphi/runphi_git.bb",
	} {
		if n := strings.Count(readRepoFile(t, f), "'s,"+boardSed+","); n != 2 {
			t.Errorf("%s edits %s in %d files, want 2 (config.json and /etc/default/jailhouse)", f, boardSed, n)
		}
	}

	script := readRepoFile(t, "packaging/S25jailhouse")
	if want := `RUNPHI_BOARD_DIR="` + cfg.BoardDir + `"`; !strings.Contains(script, want) {
		t.Errorf("S25jailhouse default board differs from config.json: want %s", want)
	}
	if !strings.Contains(readRepoFile(t, "packaging/jailhouse.default"), `RUNPHI_BOARD_DIR="`+cfg.BoardDir+`"`) {
		t.Error("jailhouse.default board differs from config.json")
	}
	unit := readRepoFile(t, "packaging/jailhouse-enable.service")
	for _, verb := range []string{"start", "stop"} {
		if !strings.Contains(unit, enableScript+" "+verb+"\n") {
			t.Errorf("jailhouse-enable.service does not run %s %s", enableScript, verb)
		}
	}
}

// TestInitScriptFindsRootCell checks, for every board, that the way the
// init script reads the root cell's name out of pool.json (a sed
// expression, the target has no JSON tool) gives what a JSON decoder
// gives, and that the file exists.
func TestInitScriptFindsRootCell(t *testing.T) {
	script := readRepoFile(t, "packaging/S25jailhouse")
	const sedExpr = `s/.*"root"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p`
	if !strings.Contains(script, sedExpr) {
		t.Fatalf("S25jailhouse no longer uses %s; update this test with it", sedExpr)
	}
	// The same expression in Go's syntax.
	re := regexp.MustCompile(`(?m)^.*"root"[ \t]*:[ \t]*"([^"]*)".*$`)
	pools, err := filepath.Glob(filepath.Join(repoRoot, "boards", "*", "pool.json"))
	if err != nil || len(pools) == 0 {
		t.Fatalf("no boards/*/pool.json (%v)", err)
	}
	for _, pool := range pools {
		board := filepath.Base(filepath.Dir(pool))
		t.Run(board, func(t *testing.T) {
			data, err := os.ReadFile(pool)
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				Root string `json:"root"`
			}
			if err := json.Unmarshal(data, &p); err != nil {
				t.Fatal(err)
			}
			ms := re.FindAllStringSubmatch(string(data), -1)
			if len(ms) != 1 || ms[0][1] != p.Root {
				t.Fatalf("sed would read %v, JSON says root %q", ms, p.Root)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(pool), p.Root)); err != nil {
				t.Errorf("root cell: %v", err)
			}
		})
	}
}

// TestContainerdSnippetsAgree checks that the containerd 1.x and 2.x
// snippets declare the same handlers with the same settings.
func TestContainerdSnippetsAgree(t *testing.T) {
	v2 := parseTOMLTables(readRepoFile(t, "packaging/containerd-runphi.toml"))
	v3 := parseTOMLTables(readRepoFile(t, "packaging/containerd2-runphi.toml"))
	if v2[""]["version"] != "2" || v3[""]["version"] != "3" {
		t.Fatalf("config versions %q and %q, want 2 and 3", v2[""]["version"], v3[""]["version"])
	}
	const p2 = `plugins."io.containerd.grpc.v1.cri".containerd.runtimes.`
	const p3 = `plugins."io.containerd.cri.v1.runtime".containerd.runtimes.`
	strip := func(tables tomlTables, prefix string) map[string]map[string]string {
		out := map[string]map[string]string{}
		for name, kv := range tables {
			if name == "" {
				continue
			}
			rest, ok := strings.CutPrefix(name, prefix)
			if !ok {
				t.Errorf("table [%s] is outside %s", name, prefix)
				continue
			}
			out[rest] = kv
		}
		return out
	}
	a, b := strip(v2, p2), strip(v3, p3)
	if len(a) == 0 || !mapsEqual(a, b) {
		t.Errorf("handlers differ:\n1.x: %v\n2.x: %v", a, b)
	}
	if got := a["runphi.options"]["BinaryName"]; got != `"/usr/bin/runphi"` {
		t.Errorf("runphi BinaryName = %s, want the installed /usr/bin/runphi", got)
	}
}

func mapsEqual(a, b map[string]map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok || len(av) != len(bv) {
			return false
		}
		for kk, v := range av {
			if bv[kk] != v {
				return false
			}
		}
	}
	return true
}

// TestDocsMatchPackaging checks that the documentation shows the shipped
// configuration verbatim and names the installed paths and the version.
func TestDocsMatchPackaging(t *testing.T) {
	version := repoVersion(t)
	docs := map[string]string{}
	files, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no docs/*.md (%v)", err)
	}
	files = append(files,
		filepath.Join(repoRoot, "buildroot-package", "README.md"),
		filepath.Join(repoRoot, "yocto-layer", "README.md"),
		filepath.Join(repoRoot, "nix", "README.md"))
	var all strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[f] = string(data)
		all.Write(data)
	}

	containerdDoc := readRepoFile(t, "docs/containerd.md")
	for _, f := range []string{"packaging/containerd-runphi.toml", "packaging/containerd2-runphi.toml"} {
		if !strings.Contains(containerdDoc, readRepoFile(t, f)) {
			t.Errorf("docs/containerd.md does not show %s verbatim", f)
		}
	}
	if !strings.Contains(readRepoFile(t, "docs/configuration.md"), readRepoFile(t, "packaging/config.json")) {
		t.Error("docs/configuration.md does not show packaging/config.json verbatim")
	}

	mentions := []string{boardsDir, configPath, containerdDir, "RUNPHI_DEBUG_LEVEL", "jhctl cell list", "RUNPHI_JAILHOUSE_IMAGE"}
	for _, b := range binaries {
		mentions = append(mentions, "/usr/bin/"+b)
	}
	for _, m := range mentions {
		if !strings.Contains(all.String(), m) {
			t.Errorf("no document mentions %s", m)
		}
	}

	// Any "runphi X.Y.Z" in the docs is the current version.
	re := regexp.MustCompile(`runphi v?(\d+\.\d+\.\d+)`)
	found := false
	for f, text := range docs {
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			found = true
			if m[1] != version {
				t.Errorf("%s mentions runphi %s, VERSION is %s", f, m[1], version)
			}
		}
	}
	if !found {
		t.Errorf("no document states the version (runphi %s)", version)
	}
}
