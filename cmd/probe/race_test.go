//go:build race

package main

// raceDetector: the tests are built with -race, and so is the binary they
// run (buildProbe), so that a data race in the agent fails them too.
const raceDetector = true
