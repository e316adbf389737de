package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository root as seen from this package's directory.
const repoRoot = ".."

// readRepoFile returns a file of the repository, failing the test if it
// cannot be read.
func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return string(data)
}

// joinContinuations folds backslash-newline continuations into one line,
// as make and BitBake do.
func joinContinuations(s string) string {
	return regexp.MustCompile(`\\\n[ \t]*`).ReplaceAllString(s, " ")
}

// makeVar returns the value of the first unconditional-looking assignment
// "NAME = value" (also ?=, := and +=) in a makefile.
func makeVar(t *testing.T, file, text, name string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `[ \t]*[:?+]?=[ \t]*(.*)$`)
	m := re.FindStringSubmatch(joinContinuations(text))
	if m == nil {
		t.Fatalf("%s: no assignment to %s", file, name)
	}
	return strings.TrimSpace(m[1])
}

// bbVar returns the value of the assignment "NAME = "value"" (also ?=,
// ??= and :=) in a BitBake file, continuations joined.
func bbVar(t *testing.T, file, text, name string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `[ \t]*(?:\?\?=|\?=|:=|=)[ \t]*"([^"]*)"`)
	m := re.FindStringSubmatch(joinContinuations(text))
	if m == nil {
		t.Fatalf("%s: no assignment to %s", file, name)
	}
	return strings.Join(strings.Fields(m[1]), " ")
}

// tomlTables is a deliberately small reading of the TOML that containerd
// configurations use: [table] headers and key = value lines, with quotes
// normalised to double quotes. It is enough to compare snippets and
// "containerd config dump" output; it is not a TOML parser.
type tomlTables map[string]map[string]string

func parseTOMLTables(text string) tomlTables {
	tables := tomlTables{"": {}}
	cur := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			cur = normaliseQuotes(strings.Trim(line, "[]"))
			if tables[cur] == nil {
				tables[cur] = map[string]string{}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		tables[cur][strings.TrimSpace(key)] = normaliseQuotes(strings.TrimSpace(value))
	}
	return tables
}

func normaliseQuotes(s string) string { return strings.ReplaceAll(s, "'", `"`) }
