package scheduler

import (
	"testing"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// TestApplyComparesSettings: a reload that changes only what no probe
// depends on keeps the schedule; a changed transport is another check.
func TestApplyComparesSettings(t *testing.T) {
	s := New(Options{})
	sip := func(transport string, essential bool) *probe.Check {
		return &probe.Check{Name: "trunk", Kind: "sip", Host: "192.0.2.7", Port: 5060, Transport: transport,
			Network: probe.NetworkOf(transport), Essential: essential, Interval: time.Minute}
	}
	first := sip("udp", true)
	s.Apply([]*probe.Check{first})
	job := s.jobs[first.ID()]

	relabelled := sip("udp", false)
	relabelled.Meta = &probe.CheckMeta{Purpose: "reworded"}
	s.Apply([]*probe.Check{relabelled})
	if s.jobs[first.ID()] != job || job.removed || job.members[0] != relabelled {
		t.Error("a change of essential and meta only restarted the schedule")
	}

	tcp := sip("tcp", false)
	s.Apply([]*probe.Check{tcp})
	if _, ok := s.jobs[first.ID()]; ok || !job.removed {
		t.Error("the udp variant is still scheduled after the change to tcp")
	}
	if s.jobs[tcp.ID()] == nil || len(s.jobs) != 1 {
		t.Errorf("jobs after the change to tcp: %v", s.jobs)
	}
}
