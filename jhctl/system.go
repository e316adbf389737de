package main

// enable starts the hypervisor with a system configuration.
func (a *app) enable(args []string) error {
	fs := a.flagSet("enable", "enable SYSCONFIG")
	if err := parse(fs, args); err != nil {
		return helpDone(err)
	}
	if fs.NArg() != 1 {
		return usagef("enable: expected one system configuration, got %d arguments", fs.NArg())
	}
	data, err := driverBytes(fs.Arg(0), "system")
	if err != nil {
		return err
	}
	return a.client().Enable(data)
}

// disable destroys all cells and stops the hypervisor.
func (a *app) disable(args []string) error {
	fs := a.flagSet("disable", "disable")
	if err := parse(fs, args); err != nil {
		return helpDone(err)
	}
	if fs.NArg() != 0 {
		return usagef("disable: unexpected argument %q", fs.Arg(0))
	}
	return a.client().Disable()
}
