package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/spf13/pflag"

	"github.com/runphi-go/runphi/internal/version"
	"github.com/runphi-go/runphi/runphi/route"
)

// Annotations runphi adds to the features output.
const (
	annotationVersion = "org.runphi.version"
	annotationCommit  = "org.runphi.commit"
	// annotationRuntimeValues lists what org.runphi.runtime accepts.
	annotationRuntimeValues = route.AnnotationRuntime
)

// featuresVerb prints runc's features (most containers go to runc, so its
// limits are the binding ones) with runphi's annotations added. Without a
// working runc it prints runphi's own minimal set.
func featuresVerb() *verb {
	return &verb{
		name: "features", usage: "", summary: "show the enabled features (runc's, plus runphi's annotations)",
		minArgs: 0, maxArgs: 0, interspersed: true,
		setup: func(*pflag.FlagSet) verbFunc {
			return func(ctx context.Context, c *call, _ []string) error {
				f, err := c.runcFeatures(ctx)
				if err != nil {
					c.log.Debug("runc features unavailable, reporting runphi's own", "error", err)
					f = &features.Features{OCIVersionMin: "1.0.0", OCIVersionMax: specs.Version}
				}
				addRunphiFeatures(f)
				enc := json.NewEncoder(c.stdout)
				enc.SetIndent("", "    ")
				return enc.Encode(f)
			}
		},
	}
}

func (c *call) runcFeatures(ctx context.Context) (*features.Features, error) {
	path, err := c.resolver.Resolve(c.cfg.Runc)
	if err != nil {
		return nil, err
	}
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "features")
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		return nil, err
	}
	f := &features.Features{}
	if err := json.Unmarshal(stdout.Bytes(), f); err != nil {
		return nil, err
	}
	return f, nil
}

func addRunphiFeatures(f *features.Features) {
	if f.Annotations == nil {
		f.Annotations = map[string]string{}
	}
	f.Annotations[annotationVersion] = version.String()
	if rev := commit(); rev != "" {
		f.Annotations[annotationCommit] = rev
	}
	f.Annotations[annotationRuntimeValues] = route.ValueRunphi + "|" + route.ValueRunc
	// org.runphi.runtime moves a container into a Jailhouse cell: a
	// CRI runtime should pass it only from trusted workloads.
	if !slices.Contains(f.PotentiallyUnsafeConfigAnnotations, "org.runphi.") {
		f.PotentiallyUnsafeConfigAnnotations = append(f.PotentiallyUnsafeConfigAnnotations, "org.runphi.")
	}
}
