// Package state keeps what runphi knows about each ZIC (a container run as
// a Jailhouse cell) on disk, and derives the container's status from live
// facts rather than from anything stored.
//
// Layout, under the state root (Store, /run/runphi by default):
//
//	<root>/<id>/            one directory per container, made with os.Mkdir
//	<root>/<id>/lock        flocked by every verb that changes the container
//	<root>/<id>/state.json  Container: bundle, created time, phase, creator
//	                        and monitor (pid + start time), cell name and id,
//	                        cgroup; replaced atomically (temp, fsync, rename)
//	<root>/<id>/exec.fifo   present from create until start ("created")
//	<root>/<id>/...         files of other packages (monitor.json, cell.cell)
//
// Ids follow runc's rule ([A-Za-z0-9_+.-]+, not "." or "..") and are never
// truncated; the Jailhouse cell name, which has at most 31 bytes, is
// derived from the id by CellName and recorded.
//
// Status (Derive) follows runc's refreshState: a process is alive only if
// its pid exists with the recorded start time and is not a zombie (Process
// .Alive); the monitor process stands for the container. The phase
// recorded by create tells a create in progress from one that died.
package state
