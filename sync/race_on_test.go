//go:build race

package sync

// raceEnabled lets the heaviest randomized checks run fewer cases under the
// race detector, which makes them about ten times slower.
const raceEnabled = true
