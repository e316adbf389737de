// Package integration runs runphi's scenarios inside an arm64 Linux guest
// under qemu-system-aarch64 (TCG), one Go subtest per scenario:
//
//	scripts/setup-integration.sh          # once, as root: QEMU, kernel, arm64 userland
//	RUNPHI_INTEGRATION=1 go test -v ./integration/
//
// Without RUNPHI_INTEGRATION=1 the tests skip, so `go test ./...` stays fast.
// The emulated tier serves /dev/jailhouse with jhemu; the real tier
// (RUNPHI_JAILHOUSE_IMAGE=DIR) boots a Jailhouse-capable kernel and runs the
// same scenarios against the real driver. See README.md for every variable.
//
// The pieces live in subpackages: harness (QEMU command line and console),
// initramfs (cpio archives), guestimage (what goes into the guest), tier
// (one tier's image and QEMU options, and the narrated demo), guest and
// guest/init (the guest's PID 1), scenarios (the scenarios and their
// registry), ociimage (the test images), marker (the console protocol),
// moddep (module order) and cmd/demo (scripts/demo.sh's program).
package integration
