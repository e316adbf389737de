package scenarios

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/runphi-go/runphi/cellgen/cell"

	"github.com/runphi-go/runphi/integration/ociimage"
)

// demoDescriptor is the demo image's /boot/config.json.
const demoDescriptor = `{"os_var":"baremetal","memory":"32M"}`

// poolSummary is what the demo tells about the board's ZIC pool.
type poolSummary struct {
	CPUs   string `json:"cpus"`
	Memory struct {
		Ranges []hexRange `json:"ranges"`
	} `json:"memory"`
	Loader struct {
		SlotSize string `json:"slot_size"`
	} `json:"loader"`
	Net []json.RawMessage `json:"ivshmem_net"`
}

func (p poolSummary) String() string {
	var ram []string
	for _, r := range p.Memory.Ranges {
		ram = append(ram, humanHex(r.Size)+" at "+r.Start)
	}
	return fmt.Sprintf("CPUs %s, RAM %s, loader slots of %s, %d ivshmem-net links",
		p.CPUs, strings.Join(ram, ", "), humanHex(p.Loader.SlotSize), len(p.Net))
}

// humanHex renders a hex size from board data as "246 MiB".
func humanHex(s string) string {
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return s
	}
	return cell.HumanSize(n)
}

// readPool reads a board's pool.json.
func readPool(boardDir string) (poolSummary, error) {
	var p poolSummary
	data, err := os.ReadFile(filepath.Join(boardDir, "pool.json"))
	if err != nil {
		return p, err
	}
	return p, json.Unmarshal(data, &p)
}

// demo is the narrated main job: one ZIC through containerd and runphi,
// each step announced with "==>" so that the console reads as a
// walkthrough (scripts/demo.sh shows it live).
func demo(e *Env) (err error) {
	tier := "the emulated Jailhouse (jhemu serves /dev/jailhouse over CUSE)"
	if e.Mode() == Real {
		tier = "the real Jailhouse hypervisor (jailhouse.ko)"
	}
	e.Step("runphi demo on %s", tier)

	e.Step("configure runphi (%s) and enable Jailhouse with boards/%s/system-zic.json, the root cell runphi's pool is carved from", RunphiConfigPath, ZICBoard)
	h, err := e.newZICHost()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			h.dumpLog(30)
		}
	}()
	if _, err := e.Jhctl(h.jh, "cell", "list"); err != nil {
		return err
	}
	if p, err := readPool(filepath.Join(BoardsDir, ZICBoard)); err == nil {
		e.Logf("ZIC pool (boards/%s/pool.json): %s", ZICBoard, p)
	}

	e.Step("start containerd with runphi registered as a runtime (%s)", ContainerdConfigPath)
	c, err := e.startZICContainerd()
	if err != nil {
		return err
	}
	inmate, err := h.inmate()
	if err != nil {
		return err
	}
	const id = "zic-demo"
	what := "a 4 KiB test pattern (the emulator loads, never runs it)"
	if e.Mode() == Real {
		what = "upstream's gic-demo.bin"
	}
	e.Step("build the ZIC image %s.tar: /boot/config.json and the inmate /boot/boot.bin, %s", id, what)
	e.Logf("/boot/config.json: %s", demoDescriptor)
	img := zicImage(id, demoDescriptor, ociimage.File("/boot/boot.bin", inmate, 0o644))

	e.Step("ctr image import %s.tar", id)
	if err := e.importImage(c, img, id+".tar"); err != nil {
		return err
	}

	e.Step("ctr run -d --runtime io.containerd.runc.v2 --runc-binary %s/runphi %s %s", BinDir, img.Name, id)
	e.Logf("(ctr ignores the handler table's BinaryName, so the binary is named on its command line)")
	if _, err := e.ctrRunZIC(c, img.Name, id); err != nil {
		return err
	}

	e.Step("the task's process is runphi's monitor; the container is a running cell with its own CPU")
	if _, err := h.expectRunningZIC(c, id); err != nil {
		return err
	}
	if _, err := e.Jhctl(h.jh, "cell", "list"); err != nil {
		return err
	}
	z, err := readZICCell(id)
	if err != nil {
		return err
	}
	e.Logf("cell configuration runphi generated: %s", z)
	if gs, err := grants(); err == nil {
		g := gs[id]
		net := "no network link"
		if g.Net != nil {
			net = "ivshmem-net " + g.Net.BDF + " at " + g.Net.Window
		}
		e.Logf("allocator grant in %s: CPUs %s, RAM %s+%s, loader slot %s, %s", AllocStatePath, g.CPUs, g.RAM.Start, g.RAM.Size, g.Loader.Start, net)
	}

	e.Step("the hypervisor console: the cell was created, loaded and started")
	if err := h.checkConsoleImage(id, inmate, true); err != nil {
		return err
	}

	e.Step("ctr task kill %s: SIGTERM shuts the cell down and the task exits with 143", id)
	if err := h.stopZIC(c, id); err != nil {
		return err
	}
	log, err := os.ReadFile(e.containerLog(id))
	if err == nil && len(strings.TrimSpace(string(log))) > 0 {
		e.Logf("container log (runphi's monitor):")
		for _, l := range strings.Split(strings.TrimSpace(string(log)), "\n") {
			e.Logf("  %s", l)
		}
	}

	e.Step("what containerd's shim asked of runphi (runphi's own log, %s)", h.log)
	h.summarizeLog(id)

	e.Step("nothing is left: no cell, no allocation, no state directory, no monitor")
	if _, err := e.Jhctl(h.jh, "cell", "list"); err != nil {
		return err
	}
	if err := h.checkClean(id); err != nil {
		return err
	}
	e.Step("done: the ZIC ran in its own Jailhouse cell, driven by containerd like any container")
	return nil
}
