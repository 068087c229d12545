//go:build race

package metrics

// raceDetector: the tests are built with -race, under which sync.Pool drops
// a share of what is put back on purpose, so what a scrape reuses is not
// measurable.
const raceDetector = true
