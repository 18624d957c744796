//go:build race

package store

// raceScale divides the rounds of the long randomized suites under the
// race detector, which makes each round some ten times slower: it looks for
// interleavings, which fewer rounds still cover, and the test binary must
// stay under a third of go test's default timeout in CI.
const raceScale = 2
