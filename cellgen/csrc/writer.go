package csrc

import (
	"bytes"
	"fmt"
	"strings"
)

// lineWidth is where flag expressions wrap, counting a tab as 8 columns
// as the kernel coding style does.
const lineWidth = 80

// writer builds tab-indented C source.
type writer struct {
	buf   bytes.Buffer
	depth int
}

func (w *writer) line(format string, args ...any) {
	w.indent(w.depth)
	fmt.Fprintf(&w.buf, format, args...)
	w.buf.WriteByte('\n')
}

func (w *writer) indent(n int) {
	for range n {
		w.buf.WriteByte('\t')
	}
}

// blank writes an empty line, but never two in a row or right after an
// opening brace.
func (w *writer) blank() {
	b := w.buf.Bytes()
	if len(b) == 0 || bytes.HasSuffix(b, []byte("\n\n")) || bytes.HasSuffix(b, []byte("{\n")) {
		return
	}
	w.buf.WriteByte('\n')
}

// open starts a braced initialiser; prefix is a designator such as
// ".cpus =" or a comment.
func (w *writer) open(prefix string) {
	w.line("%s {", prefix)
	w.depth++
}

func (w *writer) close() {
	w.depth--
	w.line("},")
}

// field writes ".name = value,". An OR of flags that does not fit the
// line continues on the next lines, one level deeper.
func (w *writer) field(name, value string) {
	first := "." + name + " = "
	if 8*w.depth+len(first)+len(value)+1 <= lineWidth || !strings.Contains(value, " | ") {
		w.line("%s%s,", first, value)
		return
	}
	terms := strings.Split(value, " | ")
	cur, depth := first+terms[0], w.depth
	for _, t := range terms[1:] {
		if 8*depth+len(cur)+len(" | ")+len(t)+1 > lineWidth {
			w.indent(depth)
			w.buf.WriteString(cur + " |\n")
			cur, depth = t, w.depth+1
			continue
		}
		cur += " | " + t
	}
	w.indent(depth)
	w.buf.WriteString(cur + ",\n")
}

// hexField writes a non-zero value in hex; zero fields are left out, as
// C zero-fills them.
func (w *writer) hexField(name string, v uint64) {
	if v != 0 {
		w.field(name, fmt.Sprintf("0x%x", v))
	}
}

// addrField writes a non-zero address.
func (w *writer) addrField(name string, v uint64) {
	if v != 0 {
		w.field(name, addr(v))
	}
}

// decField writes a non-zero value in decimal.
func (w *writer) decField(name string, v uint64) {
	if v != 0 {
		w.field(name, fmt.Sprintf("%d", v))
	}
}
