// Package dashtest holds no code: its tests prove the Grafana dashboards in
// dashboards/ and the Prometheus rules in deploy/prometheus/ against the
// real thing.
//
// The static test reads each dashboard and checks what Grafana cannot:
// valid JSON, a description and a unit on every panel, the datasource
// variable on every panel and target (no ${DS_...} import placeholders), the
// job, site, instance and profile variables, and counters only inside rate()
// or increase().
//
// The live test builds and starts a real agent against in-test peers on
// loopback (TCP, a closed port, TLS with a generated CA, UDP echo, NTP and a
// three-port range), starts a real Prometheus (Debian's /usr/bin/prometheus)
// scraping it every second with the rules file loaded, and runs every PromQL
// expression of every panel, template variable and rule through Prometheus'
// HTTP API. An expression must parse, evaluate and, unless an explicit
// allow-list says why it is empty in a healthy lab, return data. It skips
// without Prometheus, except when the environment variable CI is set.
package dashtest
