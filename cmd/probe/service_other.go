//go:build !windows

package main

import "context"

// runService runs the agent. Only Windows has a service manager that needs
// an adapter (service_windows.go); elsewhere the init system sends signals,
// which runAgent already turns into ctx's cancellation.
func runService(ctx context.Context, run func(context.Context) error) error {
	return run(ctx)
}
