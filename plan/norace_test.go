//go:build !race

package plan_test

func skipUnderRace(int) bool { return false }
