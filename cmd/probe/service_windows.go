//go:build windows

package main

import (
	"context"

	"golang.org/x/sys/windows/svc"
)

// serviceName is what svc.Run reports to the service control manager; for a
// service in its own process (sc.exe create's default) Windows goes by the
// name it was created with, so this one only has to be plausible.
const serviceName = "connprobe"

// runService runs the agent: directly when started from a console, under
// svc.Run when the service control manager started it. The manager's Stop
// and Shutdown become ctx's cancellation, which the agent already handles
// like SIGTERM; nothing else about the agent differs.
func runService(ctx context.Context, run func(context.Context) error) error {
	isService, err := svc.IsWindowsService()
	if err != nil || !isService {
		// Not knowing is treated as a console start: svc.Run would only
		// fail to connect to a manager that is not there.
		return run(ctx)
	}
	h := &serviceHandler{ctx: ctx, run: run}
	if err := svc.Run(serviceName, h); err != nil {
		return err
	}
	return h.err
}

// serviceHandler adapts the agent to svc.Handler. err is written by Execute
// before it returns and read by runService after svc.Run returns, which
// happens only after Execute has.
type serviceHandler struct {
	ctx context.Context
	run func(context.Context) error
	err error
}

func (h *serviceHandler) Execute(_ []string, requests <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()

	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case err := <-done:
			// The agent stopped on its own: report why with a
			// service-specific exit code, so sc.exe query shows it failed.
			h.err = err
			if err != nil {
				return true, 1
			}
			return false, 0
		case r := <-requests:
			switch r.Cmd {
			case svc.Interrogate:
				status <- r.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending}
				// A requested stop is a clean exit: the agent returns
				// nil once its listeners and probes have wound down.
				cancel()
				h.err = <-done
				if h.err != nil {
					return true, 1
				}
				return false, 0
			}
		}
	}
}
