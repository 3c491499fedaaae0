package reliability

import (
	"context"
	"os"
	"testing"
	"time"
)

// A short soak (4 s) against the real binary, with the attackers as
// goroutines of the soak and in a process of their own at a lower
// priority (goat-soak's default): every attack of the mix gets answers, no
// answer is a 5xx, and every acknowledged write is there after a restart.
// The timing and memory targets are the soak's to judge (`make soak`), not
// this test's: it keeps the harness honest.
func TestSoak_AttackMix(t *testing.T) {
	bin := gatewayBinary(t)
	for _, tc := range []struct {
		name     string
		attacker []string
		mode     string
	}{
		{"in-process", nil, "in-process"},
		{"attacker-process", []string{soakBinary(t), "--attacker"}, "process, nice 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := SoakConfig{
				Bin:      bin,
				Baseline: time.Second, Attack: 3 * time.Second,
				Writers: 2, PublicRecords: 100, PublicRecordBytes: 4 << 10,
				SlowBodies: 10, Replays: 4, ManyHeads: 300,
				Attacker: tc.attacker, AttackerNice: 10,
			}
			// The test may itself run niced (make test under nice, say):
			// "ours stayed as it was" is against what it was before.
			lo0, hi0, ok0 := niceness(os.Getpid())
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			rep, err := RunSoak(ctx, cfg)
			if err != nil {
				t.Fatalf("RunSoak: %v", err)
			}
			if len(rep.Failures) > 0 {
				t.Fatalf("%d failures, first: %s", len(rep.Failures), rep.Failures[0])
			}
			if rep.FiveXX > 0 || rep.Lost > 0 || rep.Acknowledged == 0 {
				t.Fatalf("5xx %d, lost %d of %d acknowledged; want none lost of some, and no 5xx: %v", rep.FiveXX, rep.Lost, rep.Acknowledged, rep.FiveXXSamples)
			}
			for _, actor := range []string{"honest", "anon-8MB", "anon-oversized", "replay-no-read", "repo-flood", "session-flood", "method-flood", "many-heads"} {
				if len(rep.Statuses[actor]) == 0 {
					t.Errorf("attacker %s got no answer", actor)
				}
				if actor != "honest" && rep.AttackRates[actor] <= 0 {
					t.Errorf("attacker %s: rate %v a second, want above 0", actor, rep.AttackRates[actor])
				}
			}
			if got := len(rep.ManyHeadRounds); got == 0 || rep.ManyHeadRounds[0].Status != 200 {
				t.Errorf("many-head rounds %+v: want at least one, its PUT answered 200", rep.ManyHeadRounds)
			}
			if rep.Baseline.Write.N == 0 || rep.Attack.Write.N == 0 || rep.Attack.Event.N == 0 {
				t.Errorf("honest samples: baseline %d writes, attack %d writes and %d events; want some of each", rep.Baseline.Write.N, rep.Attack.Write.N, rep.Attack.Event.N)
			}
			if rep.Config.Attackers != tc.mode {
				t.Errorf("attackers ran %q, want %q", rep.Config.Attackers, tc.mode)
			}
			if tc.attacker != nil {
				// The attackers' CPU is theirs, at their niceness, in
				// every thread; ours stayed as it was.
				if rep.AttackerCPUAttack <= 0 || rep.AttackerNiceSeen != "10-10" {
					t.Errorf("attacker process: %.2f CPU seconds, threads' niceness %q; want some, all 10", rep.AttackerCPUAttack, rep.AttackerNiceSeen)
				}
				if lo, hi, ok := niceness(os.Getpid()); !ok || !ok0 || lo != lo0 || hi != hi0 {
					t.Errorf("the soak's own threads' niceness %d-%d (read %v), want %d-%d as before the soak (read %v)", lo, hi, ok, lo0, hi0, ok0)
				}
			}
			t.Log(rep.Text())
		})
	}
}
