package version

import "testing"

func TestString(t *testing.T) {
	if got := String(); got == "" {
		t.Fatal("String() is empty; binaries would print no version")
	}
	old := version
	t.Cleanup(func() { version = old })
	version = "1.2.3"
	if got := String(); got != "1.2.3" {
		t.Fatalf("String() = %q, want the link-time value 1.2.3", got)
	}
}
