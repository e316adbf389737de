// Package descriptor reads the ZIC descriptor, the /boot/config.json a
// container image carries to say what it boots in a Jailhouse cell, and
// derives the cell's CPU and memory request from the OCI bundle.
//
// A container image is untrusted input. Parse is strict: unknown or
// duplicate keys, wrong JSON types, empty strings (except for net and
// cmdline), paths that are not absolute or contain "..", and absurd sizes
// or addresses are errors that name the key. Image reads every file
// through an [os.Root] on the container's root filesystem, so neither ".."
// nor a symbolic link can reach a host file: links must be relative and
// stay inside the image (absolute links are refused even when they would
// resolve inside it). Devices, FIFOs and directories are refused without
// being read.
//
// # Keys
//
// Keys are case-sensitive; null means the key is absent.
//
//	os_var             "zephyr", "freertos", "baremetal" or "linux"; default "baremetal"
//	inmate             image path of the payload, default "/boot/boot.bin" (not for linux)
//	starting_vaddress  load address, "0x70000000" or decimal, string or number; default 0
//	                   (not for linux); below 2^52
//	net                false or "none" (any case) disable ivshmem networking; true, "" and any
//	                   other string enable it (runPHI compatibility); default enabled.
//	                   "false", "off", "no", "0", "disabled" are rejected as ambiguous
//	rpu_req            bool: run on Cortex-R cores (see CheckBoard); not for linux
//	kernel, dtb        linux only, both required: image paths of the arm64 Image and
//	                   of the cell's device tree
//	initrd             linux only, optional; "cpio" and "ramdisk" are aliases (one of three)
//	cmdline            string, at most 2047 bytes: Linux bootargs, or for other
//	                   payloads the parameter string Jailhouse inmates read at +0x1000
//	cpus               whole number of CPUs, 1..32768 (the OCI bundle takes precedence)
//	memory             string size "64M", "512K", "1G", "1T", "65536" (bytes); units are
//	                   powers of 1024, any case, optional "B"/"iB"; 4 KiB..1 TiB.
//	                   A bare JSON number is rejected: runPHI 0.5.8 read it as MB.
//	console            "uart" (default), "virtual" or "none"
//	netconf            accepted (string) and ignored, as runPHI did
//
// Image paths are absolute inside the image ("/boot/zephyr.bin"); they are
// never host paths, unlike runPHI's kernel, dtb and cpio. runPHI 0.5.8
// Xen/KVM keys (vcpus, disk_image, ...) are rejected with a hint.
package descriptor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// OS is the kind of payload, the descriptor's os_var.
type OS string

// Payload kinds. Zephyr, FreeRTOS and bare-metal payloads are all loaded
// as one flat binary; Linux is booted with a kernel, device tree and
// optional initrd.
const (
	OSZephyr    OS = "zephyr"
	OSFreeRTOS  OS = "freertos"
	OSBaremetal OS = "baremetal"
	OSLinux     OS = "linux"
)

// Console is the cell console the payload expects.
type Console string

// Console kinds.
const (
	ConsoleUART    Console = "uart"    // the board's cell UART
	ConsoleVirtual Console = "virtual" // the hypervisor's virtual console
	ConsoleNone    Console = "none"    // no console
)

// Defaults and bounds.
const (
	// DefaultInmate is the payload path when inmate is absent.
	DefaultInmate = "/boot/boot.bin"
	// DescriptorPath is where the descriptor lives in an image.
	DescriptorPath = "/boot/config.json"
	// DefaultMemory is the RAM of a cell when neither the bundle nor
	// the descriptor says.
	DefaultMemory = 64 << 20
	// MinMemory and MaxMemory bound every memory size: less than a page
	// is a forgotten unit, more than 1 TiB a hostile or broken value.
	MinMemory = 4 << 10
	MaxMemory = 1 << 40
	// MaxCPUs bounds every CPU count (no CPU set can be larger).
	MaxCPUs = cpuset.MaxCPU
	// AddressLimit bounds starting_vaddress: arm64 addresses have at
	// most 52 bits, and the margin keeps address+size from overflowing.
	AddressLimit = 1 << 52
	// MaxCmdline is the longest cmdline, the arm64 kernel's
	// COMMAND_LINE_SIZE less the NUL.
	MaxCmdline = 2047
	// MaxPath is the longest image path (PATH_MAX less the NUL).
	MaxPath = 4095
)

// ErrInvalid is wrapped by every error about the descriptor's content.
var ErrInvalid = errors.New("invalid ZIC descriptor")

// Descriptor is a parsed, validated /boot/config.json. Paths are absolute
// inside the image and cleaned.
type Descriptor struct {
	OS OS
	// Inmate is the payload of a non-Linux cell; empty for Linux.
	Inmate string
	// LoadAddress is where the payload is loaded in the cell
	// (starting_vaddress); HasLoadAddress tells 0 from absent.
	LoadAddress    uint64
	HasLoadAddress bool
	// Net asks for an ivshmem network link to the root cell.
	Net bool
	// RPU asks for Cortex-R cores instead of application CPUs.
	RPU bool
	// Kernel, DTB and Initrd are set for Linux only; Initrd is optional.
	Kernel, DTB, Initrd string
	// Cmdline is the kernel command line or the inmate parameter string.
	Cmdline string
	// CPUs is the CPU count the image asks for; 0 means unset.
	CPUs int
	// Memory is the RAM size in bytes the image asks for; 0 means unset.
	Memory uint64
	// Console is the console the payload writes to.
	Console Console
}

// Keys accepted in a descriptor.
var knownKeys = []string{
	"os_var", "inmate", "starting_vaddress", "net", "rpu_req",
	"kernel", "dtb", "initrd", "cpio", "ramdisk", "cmdline",
	"cpus", "memory", "console", "netconf",
}

// Keys of runPHI 0.5.8's Xen and KVM backends and of its accelerator
// experiment, which have no meaning here.
var foreignKeys = []string{
	"vcpus", "vcpu_pinning", "isolcpu", "nohz_full", "steer_irq",
	"disk_type", "disk_image", "disk_size", "accelerator",
}

func invalid(key, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, key, fmt.Sprintf(format, args...))
}

// Parse reads and validates a descriptor. Every error wraps ErrInvalid
// and names the offending key.
func Parse(data []byte) (*Descriptor, error) {
	fields, order, err := readObject(data)
	if err != nil {
		return nil, err
	}
	for _, k := range order {
		if err := checkKey(k); err != nil {
			return nil, err
		}
	}
	d := &Descriptor{OS: OSBaremetal, Net: true, Console: ConsoleUART}
	p := parser{fields: fields}

	if s, ok := p.str("os_var"); ok {
		if !slices.Contains([]OS{OSZephyr, OSFreeRTOS, OSBaremetal, OSLinux}, OS(s)) {
			p.fail(invalid("os_var", "%q is not one of zephyr, freertos, baremetal, linux", s))
		}
		d.OS = OS(s)
	}
	inmate, hasInmate := p.path("inmate")
	d.LoadAddress, d.HasLoadAddress = p.address("starting_vaddress")
	d.Net = p.net()
	d.RPU, _ = p.boolean("rpu_req")
	d.Kernel, _ = p.path("kernel")
	d.DTB, _ = p.path("dtb")
	d.Initrd = p.initrd()
	if s, ok := p.str("cmdline"); ok {
		if len(s) > MaxCmdline {
			p.fail(invalid("cmdline", "%d bytes is longer than %d", len(s), MaxCmdline))
		}
		if strings.IndexByte(s, 0) >= 0 {
			p.fail(invalid("cmdline", "contains a NUL byte"))
		}
		d.Cmdline = s
	}
	d.CPUs = p.cpus()
	d.Memory = p.memory()
	if s, ok := p.str("console"); ok {
		if !slices.Contains([]Console{ConsoleUART, ConsoleVirtual, ConsoleNone}, Console(s)) {
			p.fail(invalid("console", "%q is not one of uart, virtual, none", s))
		}
		d.Console = Console(s)
	}
	p.str("netconf") // runPHI parsed it and never used it
	if p.err != nil {
		return nil, p.err
	}

	if d.OS == OSLinux {
		switch {
		case hasInmate:
			return nil, invalid("inmate", `not used when os_var is "linux"; name the kernel with "kernel"`)
		case d.HasLoadAddress:
			return nil, invalid("starting_vaddress", `not used when os_var is "linux"; the kernel's addresses are computed`)
		case d.RPU:
			return nil, invalid("rpu_req", "Linux cannot run on Cortex-R cores")
		case d.Kernel == "":
			return nil, invalid("kernel", `required when os_var is "linux" (e.g. "/boot/Image")`)
		case d.DTB == "":
			return nil, invalid("dtb", `required when os_var is "linux" (the cell's device tree, e.g. "/boot/cell.dtb")`)
		}
		return d, nil
	}
	for _, k := range []string{"kernel", "dtb", "initrd", "cpio", "ramdisk"} {
		if p.present(k) {
			return nil, invalid(k, "only used when os_var is \"linux\" (os_var is %q)", d.OS)
		}
	}
	d.Inmate = DefaultInmate
	if hasInmate {
		d.Inmate = inmate
	}
	return d, nil
}

// readObject decodes the top-level JSON object into raw values, rejecting
// duplicate keys (encoding/json would silently keep the last one) and
// anything after the object.
func readObject(data []byte) (map[string]json.RawMessage, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, jsonError(err))
	} else if tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("%w: want a JSON object", ErrInvalid)
	}
	fields := map[string]json.RawMessage{}
	var order []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, jsonError(err))
		}
		key, ok := tok.(string)
		if !ok { // encoding/json reports a non-string key as an error; be safe
			return nil, nil, fmt.Errorf("%w: object key is not a string", ErrInvalid)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrInvalid, quoteKey(key), jsonError(err))
		}
		if _, dup := fields[key]; dup {
			return nil, nil, invalid(quoteKey(key), "duplicate key")
		}
		fields[key] = raw
		order = append(order, key)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, jsonError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	return fields, order, nil
}

func jsonError(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("unexpected end of JSON input")
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("bad JSON at byte %d: %w", syn.Offset, err)
	}
	return err
}

// quoteKey quotes a key for a message when it is not a plain identifier.
func quoteKey(k string) string {
	if slices.Contains(knownKeys, k) {
		return k
	}
	return strconv.Quote(k)
}

func checkKey(k string) error {
	if slices.Contains(knownKeys, k) {
		return nil
	}
	if slices.Contains(foreignKeys, k) {
		return invalid(quoteKey(k), "a runPHI 0.5.8 Xen/KVM key, not supported with Jailhouse")
	}
	for _, known := range knownKeys {
		if strings.EqualFold(k, known) {
			return invalid(quoteKey(k), "unknown key (keys are case-sensitive: did you mean %q?)", known)
		}
	}
	return invalid(quoteKey(k), "unknown key (known keys: %s)", strings.Join(knownKeys, ", "))
}

// parser extracts typed values, keeping the first error so Parse reads
// as a list of keys.
type parser struct {
	fields map[string]json.RawMessage
	err    error
}

func (p *parser) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// value returns key's raw value if it is given and not null.
func (p *parser) value(key string) (json.RawMessage, bool) {
	raw, ok := p.fields[key]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return nil, false
	}
	return raw, true
}

func (p *parser) present(key string) bool {
	_, ok := p.value(key)
	return ok
}

func jsonType(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "a number"
}

func (p *parser) wrongType(key string, raw json.RawMessage, want string) {
	p.fail(invalid(key, "want %s, got %s", want, jsonType(raw)))
}

func asString(raw json.RawMessage) (string, bool) {
	var s string
	return s, raw[0] == '"' && json.Unmarshal(raw, &s) == nil
}

func asBool(raw json.RawMessage) (bool, bool) {
	var b bool
	return b, (raw[0] == 't' || raw[0] == 'f') && json.Unmarshal(raw, &b) == nil
}

func asNumber(raw json.RawMessage) (json.Number, bool) {
	var n json.Number
	return n, (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') && json.Unmarshal(raw, &n) == nil
}

func (p *parser) str(key string) (string, bool) {
	raw, ok := p.value(key)
	if !ok {
		return "", false
	}
	s, ok := asString(raw)
	if !ok {
		p.wrongType(key, raw, "a string")
	}
	return s, ok
}

func (p *parser) boolean(key string) (bool, bool) {
	raw, ok := p.value(key)
	if !ok {
		return false, false
	}
	b, ok := asBool(raw)
	if !ok {
		p.wrongType(key, raw, "true or false")
	}
	return b, ok
}

// path reads an image path: absolute, without "..", returned cleaned.
func (p *parser) path(key string) (string, bool) {
	s, ok := p.str(key)
	if !ok {
		return "", false
	}
	clean, err := CleanPath(s)
	if err != nil {
		p.fail(invalid(key, "%v", err))
		return "", false
	}
	return clean, true
}

// CleanPath checks an image path (absolute, no "..", no NUL, at most
// MaxPath bytes, not the image root) and returns it cleaned.
func CleanPath(s string) (string, error) {
	switch {
	case s == "":
		return "", errors.New("empty path")
	case len(s) > MaxPath:
		return "", fmt.Errorf("path of %d bytes is longer than %d", len(s), MaxPath)
	case strings.IndexByte(s, 0) >= 0:
		return "", fmt.Errorf("path %q contains a NUL byte", s)
	case s[0] != '/':
		return "", fmt.Errorf("path %q must be absolute inside the image (start with /)", s)
	case slices.Contains(strings.Split(s, "/"), ".."):
		return "", fmt.Errorf(`path %q must not contain ".."`, s)
	}
	clean := path.Clean(s)
	if clean == "/" {
		return "", fmt.Errorf("path %q names the image root, not a file", s)
	}
	return clean, nil
}

func (p *parser) address(key string) (uint64, bool) {
	raw, ok := p.value(key)
	if !ok {
		return 0, false
	}
	text, ok := asString(raw)
	if !ok {
		n, isNum := asNumber(raw)
		if !isNum {
			p.wrongType(key, raw, `a string such as "0x70000000" or a number`)
			return 0, false
		}
		text = n.String()
	}
	v, err := parseAddress(text)
	if err != nil {
		p.fail(invalid(key, "%v", err))
		return 0, false
	}
	return v, true
}

// parseAddress reads "0x..." as hex and anything else as decimal; a
// leading 0 is not octal and underscores are not digit separators.
func parseAddress(s string) (uint64, error) {
	digits, base := s, 10
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		digits, base = s[2:], 16
	}
	v, err := strconv.ParseUint(digits, base, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%q does not fit in 64 bits", s)
	}
	if err != nil {
		return 0, fmt.Errorf("%q is not a hex (0x...) or decimal address", s)
	}
	if v >= AddressLimit {
		return 0, fmt.Errorf("%q is beyond the 52-bit arm64 address space", s)
	}
	return v, nil
}

// negativeNet are strings that plainly mean "off" but that runPHI read as
// "on"; they are refused instead of being silently honoured either way.
var negativeNet = []string{"false", "off", "no", "0", "disabled", "disable"}

func (p *parser) net() bool {
	const key = "net"
	raw, ok := p.value(key)
	if !ok {
		return true
	}
	if b, ok := asBool(raw); ok {
		return b
	}
	s, ok := asString(raw)
	if !ok {
		p.wrongType(key, raw, `true, false or a string ("none" disables networking)`)
		return false
	}
	if slices.Contains(negativeNet, strings.ToLower(s)) {
		p.fail(invalid(key, `%q is ambiguous: write "none" or false to disable networking, true to enable it`, s))
	}
	return !strings.EqualFold(s, "none")
}

// initrd reads initrd or one of its runPHI aliases, cpio and ramdisk.
func (p *parser) initrd() string {
	var given []string
	for _, k := range []string{"initrd", "cpio", "ramdisk"} {
		if p.present(k) {
			given = append(given, k)
		}
	}
	if len(given) > 1 {
		p.fail(invalid(strings.Join(given, ", "), "aliases of one another; give only one"))
		return ""
	}
	if len(given) == 0 {
		return ""
	}
	s, _ := p.path(given[0])
	return s
}

func (p *parser) cpus() int {
	const key = "cpus"
	raw, ok := p.value(key)
	if !ok {
		return 0
	}
	n, ok := asNumber(raw)
	if !ok {
		p.wrongType(key, raw, "a whole number")
		return 0
	}
	v, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		p.fail(invalid(key, "%s is not a whole number", n))
		return 0
	}
	if err != nil || v < 1 || v > MaxCPUs {
		p.fail(invalid(key, "%s is out of range 1..%d", n, MaxCPUs))
		return 0
	}
	return int(v)
}

func (p *parser) memory() uint64 {
	const key = "memory"
	raw, ok := p.value(key)
	if !ok {
		return 0
	}
	if _, isNum := asNumber(raw); isNum {
		p.fail(invalid(key, `a bare number is ambiguous (runPHI 0.5.8 read megabytes); write a string with a unit, e.g. "64M"`))
		return 0
	}
	s, ok := p.str(key)
	if !ok {
		return 0
	}
	v, err := ParseSize(s)
	if err != nil {
		p.fail(invalid(key, "%v", err))
		return 0
	}
	return v
}

var sizeUnits = map[string]uint64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}

// ParseSize reads a memory size such as "64M", "512KiB", "1g" or "65536"
// (bytes). Units are powers of 1024. The result lies in
// [MinMemory, MaxMemory].
func ParseSize(s string) (uint64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	mult, ok := sizeUnits[strings.ToLower(s[i:])]
	if i == 0 || !ok {
		return 0, fmt.Errorf("%q is not a size such as \"64M\", \"512K\", \"1G\" or a byte count", s)
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil || n > MaxMemory/mult {
		return 0, fmt.Errorf("%q is larger than the %s limit", s, FormatSize(MaxMemory))
	}
	return CheckSize(n * mult)
}

// CheckSize checks a memory size in bytes against MinMemory and MaxMemory.
func CheckSize(n uint64) (uint64, error) {
	if n == 0 {
		return 0, errors.New("size must not be zero")
	}
	if n < MinMemory {
		return 0, fmt.Errorf("%d bytes is less than one %s page (missing unit?)", n, FormatSize(MinMemory))
	}
	if n > MaxMemory {
		return 0, fmt.Errorf("%s is larger than the %s limit", FormatSize(n), FormatSize(MaxMemory))
	}
	return n, nil
}

// FormatSize writes n with the largest binary unit that divides it
// exactly ("64M", "1T", "12345"); ParseSize reads it back.
func FormatSize(n uint64) string {
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}} {
		if n != 0 && n&(1<<u.shift-1) == 0 {
			return strconv.FormatUint(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatUint(n, 10)
}

// CheckBoard rejects a descriptor the board cannot run: rpu_req on a board
// whose data declares no Cortex-R cores.
func (d *Descriptor) CheckBoard(hasRPU bool) error {
	if d.RPU && !hasRPU {
		return invalid("rpu_req", "Cortex-R cores are not supported on this board")
	}
	return nil
}

// MarshalJSON writes the descriptor in its canonical form: every value
// explicit, defaults included, unset CPUs and memory left out. Parse reads
// it back to an equal Descriptor.
func (d *Descriptor) MarshalJSON() ([]byte, error) {
	type canonical struct {
		OS      OS      `json:"os_var"`
		Inmate  string  `json:"inmate,omitempty"`
		Address string  `json:"starting_vaddress,omitempty"`
		Net     bool    `json:"net"`
		RPU     bool    `json:"rpu_req"`
		Kernel  string  `json:"kernel,omitempty"`
		DTB     string  `json:"dtb,omitempty"`
		Initrd  string  `json:"initrd,omitempty"`
		Cmdline string  `json:"cmdline,omitempty"`
		CPUs    int     `json:"cpus,omitempty"`
		Memory  string  `json:"memory,omitempty"`
		Console Console `json:"console"`
	}
	c := canonical{
		OS: d.OS, Inmate: d.Inmate, Net: d.Net, RPU: d.RPU,
		Kernel: d.Kernel, DTB: d.DTB, Initrd: d.Initrd, Cmdline: d.Cmdline,
		CPUs: d.CPUs, Console: d.Console,
	}
	if d.HasLoadAddress {
		c.Address = "0x" + strconv.FormatUint(d.LoadAddress, 16)
	}
	if d.Memory != 0 {
		c.Memory = FormatSize(d.Memory)
	}
	return json.Marshal(c)
}
