// Command cellgen builds and checks Jailhouse cell configurations (config
// revision 14): it encodes the JSON form to binary .cell files and back,
// validates a system configuration together with its cells, writes the
// equivalent C source, and allocates a cell for an OCI bundle (zic).
//
// main only wires the process's standard streams to app and turns the
// returned error into the exit status: 0 success, 1 failure, 2 usage error.
package main

import "os"

func main() {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	os.Exit(a.exit(a.run(os.Args[1:])))
}
