// Package rulestest holds no code: its tests check the Prometheus rules and
// configurations shipped in deploy/prometheus. They run promtool (from
// Debian's prometheus package) on them, and check that every alert has a
// test, a severity, its annotations and a runbook section in README.md.
// Without promtool the promtool tests skip, unless the environment variable
// CI is set: CI installs it, so there they fail.
package rulestest
