package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/runphi-go/runphi/runphi/container"
)

// TestMapErr: the manager's errors keep their text and also match the
// sentinels the verbs test (kill --all, delete --force).
func TestMapErr(t *testing.T) {
	tests := []struct {
		err  error
		want error
	}{
		{fmt.Errorf("container x: %w", container.ErrNotExist), errNotExist},
		{fmt.Errorf("kill: %w", container.ErrNotRunning), errNotRunning},
		{container.ErrExist, errExist},
	}
	for _, tt := range tests {
		got := mapErr(tt.err)
		if !errors.Is(got, tt.want) || !errors.Is(got, tt.err) || got.Error() != tt.err.Error() {
			t.Errorf("mapErr(%v) = %v: Is(ours) %v, Is(theirs) %v", tt.err, got, errors.Is(got, tt.want), errors.Is(got, tt.err))
		}
	}
	other := errors.New("cell failed")
	if got := mapErr(other); got != other {
		t.Errorf("mapErr(other) = %v, want it unchanged", got)
	}
	if mapErr(nil) != nil {
		t.Error("mapErr(nil) != nil")
	}
}

func TestPidfdSocketRefused(t *testing.T) {
	r := &containerRuntime{}
	if err := r.Create(t.Context(), createOpts{ID: "x", PidfdSocket: "/s"}); err == nil {
		t.Error("Create with --pidfd-socket succeeded")
	}
}
