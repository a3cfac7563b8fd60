//go:build race

package plan_test

// Under the race detector (make test) the model check, which has no
// goroutines of its own for the detector to watch, runs every twentieth
// scenario; `go test ./plan` runs them all.
func skipUnderRace(i int) bool { return i%20 != 0 }
