// Package packaging holds the files every distribution installs beside
// the runphi binaries, and the tests that keep the packagings in step.
//
// The files:
//
//	config.json               /etc/runphi/config.json (runphi/config keys)
//	containerd-runphi.toml    runtime handler for containerd 1.x (config version 2)
//	containerd2-runphi.toml   runtime handler for containerd 2.x (config version 3)
//	S25jailhouse              SysV init script: enable Jailhouse with the board's root cell
//	jailhouse-enable.service  the same for systemd (runs the script from /usr/libexec/runphi)
//	jailhouse.default         /etc/default/jailhouse, read by the script
//
// The Buildroot package (buildroot-package/), the Yocto recipe
// (yocto-layer/), the Nix expressions (nix/) and the Makefile each say
// again which version, module path, binaries and paths they build and
// install; the tests here check that they agree with each other, with
// the VERSION file and with the documentation, that the Nix vendor hash
// matches go.sum, and that containerd itself accepts the documented
// configuration snippets. There is no Go API.
package packaging
