package scenarios

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runphi-go/runphi/integration/ociimage"
)

// Guest paths of the runphi scenarios.
const (
	RunphiConfigPath = "/etc/runphi/config.json"
	RunphiStateRoot  = "/run/runphi"
	AllocStatePath   = RunphiStateRoot + "/alloc.json"
	ZICBoard         = "qemu-arm64"
	// ZICRootCell is the root cell runphi's pool is carved from.
	ZICRootCell = BoardsDir + "/" + ZICBoard + "/system-zic.json"
	// monitorVerb is runphi's hidden verb for a ZIC's process.
	monitorVerb = "__monitor"
)

// zicHost is the guest prepared for ZICs: runphi configured, and Jailhouse
// enabled with the pool's root cell. Its teardown (registered with the
// scenario) removes whatever a failed scenario left and disables
// Jailhouse, so the next scenario starts from a clean hypervisor.
type zicHost struct {
	e    *Env
	jh   Jailhouse
	root string // the root cell's name
	log  string // runphi's own log (log_file)
}

// newZICHost writes runphi's configuration and enables Jailhouse with
// ZICRootCell.
func (e *Env) newZICHost() (*zicHost, error) {
	jh, err := e.Jailhouse()
	if err != nil {
		return nil, err
	}
	h := &zicHost{e: e, jh: jh, log: filepath.Join(e.Dir(), "runphi.log")}
	if err := h.configure(); err != nil {
		return nil, err
	}
	if _, err := e.Jhctl(jh, "enable", ZICRootCell); err != nil {
		return nil, err
	}
	e.Cleanup(h.teardown)
	cells, err := h.cells()
	if err != nil {
		return nil, err
	}
	for name, c := range cells {
		if c.ID == 0 {
			h.root = name
		}
	}
	if h.root == "" {
		return nil, fmt.Errorf("after enable: no root cell in %v", cells)
	}
	return h, nil
}

// configure writes /etc/runphi/config.json: the production runphi talks to
// the run's /dev/jailhouse and sysfs tree (jhemu's in the emulated tier).
func (h *zicHost) configure() error {
	return writeRunphiConfig(h.e, h.jh, h.log)
}

func writeRunphiConfig(e *Env, jh Jailhouse, logFile string) error {
	runc, err := e.Bin("runc")
	if err != nil {
		return err
	}
	data, err := runphiConfig(jh, runc, logFile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(RunphiConfigPath), 0o755); err != nil {
		return fmt.Errorf("runphi config: %w", err)
	}
	if err := os.WriteFile(RunphiConfigPath, data, 0o644); err != nil {
		return fmt.Errorf("runphi config: %w", err)
	}
	compact := new(bytes.Buffer)
	_ = json.Compact(compact, data)
	e.Logf("runphi configuration %s: %s", RunphiConfigPath, compact)
	return nil
}

// runphiConfig is the content of /etc/runphi/config.json for jh.
func runphiConfig(jh Jailhouse, runc, logFile string) ([]byte, error) {
	data, err := json.MarshalIndent(map[string]string{
		"board_dir":        filepath.Join(BoardsDir, ZICBoard),
		"runc":             runc,
		"state_root":       RunphiStateRoot,
		"jailhouse_device": jh.Device,
		"jailhouse_sysfs":  jh.Sysfs,
		"log_file":         logFile,
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("runphi config: %w", err)
	}
	return append(data, '\n'), nil
}

// teardown is the scenario cleanup: after a failure it destroys leftover
// cells and monitors and drops runphi's state, then it disables Jailhouse.
func (h *zicHost) teardown() {
	e := h.e
	if cells, err := h.cells(); err == nil {
		for name, c := range cells {
			if c.ID != 0 {
				e.Logf("teardown: destroying leftover cell %s", name)
				if _, err := e.Quiet("jhctl", "--device", h.jh.Device, "--sysfs", h.jh.Sysfs, "cell", "destroy", name); err != nil {
					e.Logf("teardown: %v", err)
				}
			}
		}
	}
	for _, pid := range monitorPids("") {
		e.Logf("teardown: killing leftover runphi monitor %d", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := os.RemoveAll(RunphiStateRoot); err != nil {
		e.Logf("teardown: %v", err)
	}
	if _, err := e.Jhctl(h.jh, "disable"); err != nil {
		e.Logf("teardown: %v", err)
	}
}

// dumpLog prints the last lines of runphi's own log.
func (h *zicHost) dumpLog(n int) {
	data, err := os.ReadFile(h.log)
	if err != nil {
		h.e.Logf("runphi log: %v", err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	h.e.Logf("--- last lines of %s ---", h.log)
	for _, l := range lines {
		h.e.Logf("  runphi| %s", l)
	}
}

// summarizeLog prints runphi's log records about id, one line each:
// time, verb and message.
func (h *zicHost) summarizeLog(id string) {
	data, err := os.ReadFile(h.log)
	if err != nil {
		h.e.Logf("runphi log: %v", err)
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["id"] != id {
			continue
		}
		var extra []string
		for _, k := range slices.Sorted(maps.Keys(rec)) {
			switch k {
			case "time", "level", "msg", "id", "verb":
			default:
				extra = append(extra, fmt.Sprintf("%s=%v", k, rec[k]))
			}
		}
		when, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(rec["time"]))
		h.e.Logf("  %s  runphi %-9v %v %v", when.Format("15:04:05.000"), rec["verb"], rec["msg"], strings.Join(extra, " "))
	}
}

// cells lists the cells without echoing (for polling and teardown).
func (h *zicHost) cells() (map[string]listedCell, error) {
	out, err := h.e.Quiet("jhctl", "--device", h.jh.Device, "--sysfs", h.jh.Sysfs, "cell", "list", "--json")
	if err != nil {
		return nil, err
	}
	return parseCellList(out)
}

// grant is one allocator grant as alloc.json holds it.
type grant struct {
	State  string   `json:"state"`
	CPUs   string   `json:"cpus"`
	RAM    hexRange `json:"ram"`
	Loader hexRange `json:"loader"`
	Net    *struct {
		BDF    string `json:"bdf"`
		Window string `json:"window"`
	} `json:"net"`
}

type hexRange struct {
	Start string `json:"start"`
	Size  string `json:"size"`
}

// grants reads runphi's allocator state; no file means no grants.
func grants() (map[string]grant, error) {
	data, err := os.ReadFile(AllocStatePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st struct {
		Grants map[string]grant `json:"grants"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", AllocStatePath, err)
	}
	return st.Grants, nil
}

// stateDirs returns runphi's state directories for id, under any runc root.
func stateDirs(id string) []string {
	dirs, _ := filepath.Glob(filepath.Join(RunphiStateRoot, "*", id))
	return dirs
}

// monitorPids returns the pids of runphi monitors; with id set, only
// those of that container (the monitor's last argument is its state
// directory, which ends in the id).
func monitorPids(id string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if !slices.Contains(args, monitorVerb) || isZombie(pid) {
			continue
		}
		if id == "" || filepath.Base(args[len(args)-1]) == id {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isZombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(data, ')')
	return i < 0 || i+2 >= len(data) || data[i+2] == 'Z'
}

// checkClean verifies that nothing of the ZICs ids is left: only the root
// cell exists, the allocator holds no grant, and no state directory or
// monitor of theirs remains.
func (h *zicHost) checkClean(ids ...string) error {
	var problems []string
	cells, err := h.cells()
	if err != nil {
		return err
	}
	for name, c := range cells {
		if c.ID != 0 {
			problems = append(problems, fmt.Sprintf("cell %s (id %d, %s) exists", name, c.ID, c.State))
		}
	}
	gs, err := grants()
	if err != nil {
		return err
	}
	for name := range gs {
		problems = append(problems, "allocator grant "+name+" in "+AllocStatePath)
	}
	for _, id := range ids {
		for _, d := range stateDirs(id) {
			problems = append(problems, "state directory "+d)
		}
		for _, pid := range monitorPids(id) {
			problems = append(problems, fmt.Sprintf("monitor of %s (pid %d) runs", id, pid))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return errors.New("left behind: " + strings.Join(problems, "; "))
	}
	h.e.Logf("clean: only root cell %s, no grant in %s, no state directory or monitor of %s", h.root, AllocStatePath, strings.Join(ids, ", "))
	return nil
}

// inmate returns the payload of the test ZICs: in the real tier upstream's
// gic-demo (it runs on the cell's CPU and prints to the UART), in the
// emulated tier a 4 KiB pattern (jhemu loads, never executes it).
func (h *zicHost) inmate() ([]byte, error) {
	if h.e.Mode() == Real {
		data, err := os.ReadFile(filepath.Join(DemoInmatesDir, "gic-demo.bin"))
		if err != nil {
			return nil, fmt.Errorf("real inmate: %w", err)
		}
		return data, nil
	}
	return testInmate(), nil
}

// imageRef is the name a test image is imported under.
func imageRef(name string) string { return "docker.io/runphi/" + name + ":latest" }

// zicImage is a ZIC image: the descriptor at /boot/config.json plus the
// given entries (the inmate, or hostile links).
func zicImage(name, descriptor string, entries ...ociimage.Entry) *ociimage.Image {
	all := append([]ociimage.Entry{ociimage.File("/boot/config.json", []byte(descriptor+"\n"), 0o644)}, entries...)
	return &ociimage.Image{
		Name:         imageRef(name),
		Architecture: runtime.GOARCH,
		// The process of a ZIC is runphi's monitor; the args only have
		// to be present for ctr to build a spec.
		Config:  ociimage.Config{Cmd: []string{"/boot/boot.bin"}},
		Entries: all,
	}
}

// importImage writes img as an OCI archive in the scenario directory and
// imports it into containerd.
func (e *Env) importImage(c *Containerd, img *ociimage.Image, file string) error {
	path := filepath.Join(e.Dir(), file)
	desc, err := img.WriteFile(path)
	if err != nil {
		return err
	}
	e.Logf("wrote %s: %s, manifest %s", file, img.Name, desc.Digest)
	cmd, err := e.CtrCommand(c, "image", "import", file)
	if err != nil {
		return err
	}
	cmd.Dir = e.Dir()
	out, err := e.Output(cmd)
	if err != nil {
		return err
	}
	if !strings.Contains(out, img.Name) {
		return fmt.Errorf("ctr image import %s: output does not name %s", file, img.Name)
	}
	return nil
}

// ctrRunZIC runs image ref as container id through runphi, detached, with
// the container's output in a log file (runphi's monitor writes why the
// ZIC ended there).
func (e *Env) ctrRunZIC(c *Containerd, ref, id string) (string, error) {
	return e.Ctr(c, "run", "-d", "--runtime", "io.containerd.runc.v2", "--runc-binary", BinDir+"/runphi",
		"--log-uri", "file://"+e.containerLog(id), ref, id)
}

func (e *Env) containerLog(id string) string { return filepath.Join(e.Dir(), id+".log") }

// task is one line of ctr task ls.
type task struct {
	PID    int
	Status string
}

// tasks runs ctr task ls (echoed when loud) and parses it.
func (e *Env) tasks(c *Containerd, loud bool) (map[string]task, error) {
	cmd, err := e.CtrCommand(c, "task", "ls")
	if err != nil {
		return nil, err
	}
	var out string
	if loud {
		out, err = e.Output(cmd)
	} else {
		out, err = quietOutput(cmd)
	}
	if err != nil {
		return nil, err
	}
	return parseTasks(out)
}

// parseTasks reads ctr task ls: a header, then "ID PID STATUS" lines.
func parseTasks(out string) (map[string]task, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "TASK") {
		return nil, fmt.Errorf("ctr task ls: no header in %q", out)
	}
	m := map[string]task{}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("ctr task ls: line %q: want ID PID STATUS", line)
		}
		pid, err := strconv.Atoi(f[1])
		if err != nil {
			return nil, fmt.Errorf("ctr task ls: line %q: %w", line, err)
		}
		m[f[0]] = task{PID: pid, Status: f[2]}
	}
	return m, nil
}

// waitTask polls ctr task ls until id has status.
func (e *Env) waitTask(c *Containerd, id, status string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ts, err := e.tasks(c, false)
		if err != nil {
			return err
		}
		if ts[id].Status == status {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("task %s: status %q after %v, want %s", id, ts[id].Status, timeout, status)
		}
		select {
		case <-e.Context().Done():
			return fmt.Errorf("task %s: %w", id, e.Context().Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// expectRunningZIC checks that id is a running containerd task whose
// process is runphi's monitor, and that its cell runs. It returns the
// cell.
func (h *zicHost) expectRunningZIC(c *Containerd, id string) (listedCell, error) {
	e := h.e
	ts, err := e.tasks(c, true)
	if err != nil {
		return listedCell{}, err
	}
	t, ok := ts[id]
	if !ok || t.Status != "RUNNING" || t.PID <= 0 {
		return listedCell{}, fmt.Errorf("ctr task ls: %s is %+v, want RUNNING with a pid", id, t)
	}
	if !slices.Contains(monitorPids(id), t.PID) {
		return listedCell{}, fmt.Errorf("task %s: pid %d is not runphi's monitor of %s", id, t.PID, id)
	}
	e.Logf("task %s: pid %d is runphi's monitor (runphi %s %s)", id, t.PID, monitorVerb, strings.Join(stateDirs(id), " "))
	cells, err := h.cells()
	if err != nil {
		return listedCell{}, err
	}
	cl, ok := cells[id]
	if !ok || cl.State != "running" {
		return listedCell{}, fmt.Errorf("cell %s: %+v, want running (cells %v)", id, cl, cells)
	}
	e.Logf("cell %s: id %d, %s, CPUs %s", id, cl.ID, cl.State, cl.CPUs)
	return cl, nil
}

// stopZIC kills the task with SIGTERM, waits until it stopped, deletes it
// (checking exit status 143) and removes the container.
func (h *zicHost) stopZIC(c *Containerd, id string) error {
	e := h.e
	if _, err := e.Ctr(c, "task", "kill", "--signal", "SIGTERM", id); err != nil {
		return err
	}
	if err := e.waitTask(c, id, "STOPPED", 30*time.Second); err != nil {
		return err
	}
	if _, err := e.tasks(c, true); err != nil {
		return err
	}
	out, err := e.Ctr(c, "task", "rm", id)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "exit code 143") {
		return fmt.Errorf("ctr task rm %s: no exit code 143 in %q", id, out)
	}
	if _, err := e.Ctr(c, "container", "rm", id); err != nil {
		return err
	}
	return nil
}
