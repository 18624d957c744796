package chaos

import (
	"math/rand/v2"
	"net/http/httptest"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate-cloud/receiver/cloudtest"
	"fieldgate/cmd/fieldgate-cloud/receiver/pgtest"
	"fieldgate/cmd/fieldgate/testenv"
	"fieldgate/uplink/sink"
	"fieldgate/uplink/wire"
)

// chaosCloud is the chaos run's cloud: the reference receiver on
// PostgreSQL (two replicas behind an alternating front) when PostgreSQL is
// installed or required, else the in-memory sink.
type chaosCloud interface {
	URL() string
	SetFaults(sink.Faults)
	Readings() map[string]wire.ReadingBody
	// absorbed counts duplicate readings and replayed batches.
	absorbed() (duplicates, replays int)
	// faults are the cloud's own kinds of fault.
	faults() []chaosFault
	// consistent fails t if a batch conflicted or a replay was answered
	// unlike the first time.
	consistent(t *testing.T)
}

// newChaosCloud picks the cloud for gateway gw; its token is "tok" for the
// sink, or what the receiver issued.
func newChaosCloud(t *testing.T, gw string) (c chaosCloud, token string) {
	if _, err := pgtest.BinDir(); err == nil || testenv.RequireAll() {
		rig := cloudtest.Start(t, cloudtest.Build(t), gw, 2)
		return &rigCloud{Rig: rig, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))}, rig.Token
	}
	t.Log("PostgreSQL is not installed: the cloud is the in-memory sink")
	s := &sinkCloud{Sink: sink.New("tok")}
	s.srv = httptest.NewServer(s.Sink)
	t.Cleanup(s.srv.Close)
	return s, "tok"
}

type sinkCloud struct {
	*sink.Sink
	srv *httptest.Server
}

func (s *sinkCloud) URL() string { return s.srv.URL }

func (s *sinkCloud) absorbed() (int, int) {
	st := s.Stats()
	return st.Duplicate, st.Replays
}

func (s *sinkCloud) faults() []chaosFault { return nil }

func (s *sinkCloud) consistent(t *testing.T) {
	if n := s.Stats().Conflicts; n != 0 {
		t.Errorf("%d batches came back with different readings", n)
	}
}

type rigCloud struct {
	*cloudtest.Rig
	rng     *rand.Rand
	restart chan struct{} // closed when the database is back
}

func (c *rigCloud) absorbed() (int, int) {
	st := c.Stats()
	return st.ReplayedReadings, st.Replays
}

func (c *rigCloud) consistent(t *testing.T) {
	if st := c.Stats(); st.Conflicts != 0 || st.Differed != 0 {
		t.Errorf("%d conflicts and %d replays answered unlike the first time; want none", st.Conflicts, st.Differed)
	}
}

// faults: a replica SIGKILLed (and restarted), and PostgreSQL restarted a
// second into the segment, away for a second.
func (c *rigCloud) faults() []chaosFault {
	return []chaosFault{
		{"receiver sigkill", func() { c.KillReplica(c.rng.IntN(2)) }, func() {}},
		{"database restart", func() {
			c.restart = make(chan struct{})
			time.AfterFunc(time.Second, func() { c.RestartDatabase(time.Second); close(c.restart) })
		}, func() { <-c.restart }},
	}
}
