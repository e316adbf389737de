// Command demo is the narrated main job: it boots the QEMU arm64 guest and
// runs a ZIC through containerd and runphi in it, printing each step as it
// happens (package tier's Demo). The emulated Jailhouse is used unless
// RUNPHI_JAILHOUSE_IMAGE names a real-hypervisor image. Run it from the
// repository after scripts/setup-integration.sh:
//
//	go run ./integration/cmd/demo
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/runphi-go/runphi/integration/tier"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root, err := tier.ModRoot(".")
	if err == nil {
		err = tier.Demo(ctx, os.Stdout, root)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		stop()
		os.Exit(1)
	}
}
