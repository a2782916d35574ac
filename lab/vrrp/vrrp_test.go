package vrrp

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func TestTimers(t *testing.T) {
	if got, want := SkewTime(time.Second, 100), 609375*time.Microsecond; got != want {
		t.Errorf("SkewTime(1s, 100) = %v, want %v", got, want)
	}
	if got, want := MasterDownInterval(time.Second, 100), 3609375*time.Microsecond; got != want {
		t.Errorf("MasterDownInterval(1s, 100) = %v, want %v", got, want)
	}
	if got, want := MasterDownInterval(250*time.Millisecond, 254), 750*time.Millisecond+1953125*time.Nanosecond; got != want {
		t.Errorf("MasterDownInterval(250ms, 254) = %v, want %v", got, want)
	}
}

// pair is the lab's Test 1 group: ITR1 master by priority, ITR2 backup.
func pair(t *testing.T, hook func(Event)) *Segment {
	t.Helper()
	s, err := NewSegment([]InstanceConfig{
		{Router: "itr1", VRID: 1, Priority: 150, StartMaster: true},
		{Router: "itr2", VRID: 1, Priority: 100},
	}, hook)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFailover(t *testing.T) {
	var masters []string
	s := pair(t, func(e Event) {
		if e.To == Master {
			masters = append(masters, e.Router)
		}
	})
	s.Start(t0)
	if m := s.Master(1); m != "itr1" {
		t.Fatalf("master after start = %q, want itr1", m)
	}
	// Ten seconds of adverts: ITR2 never takes over.
	s.Advance(t0.Add(10 * time.Second))
	if m := s.Master(1); m != "itr1" {
		t.Fatalf("master at 10 s = %q, want itr1", m)
	}
	if n := s.Adverts("itr1"); n != 11 {
		t.Errorf("itr1 sent %d adverts in 10 s, want 11 (t=0..10)", n)
	}
	// ITR1's interface goes down at 10.3 s; its last advert was at 10 s.
	fail := t0.Add(10300 * time.Millisecond)
	if err := s.SetLinkUp("itr1", false, fail); err != nil {
		t.Fatal(err)
	}
	if m := s.Master(1); m != "" {
		t.Fatalf("master right after failure = %q, want none", m)
	}
	want := t0.Add(10*time.Second + MasterDownInterval(time.Second, 100))
	s.Advance(want.Add(-time.Nanosecond))
	if m := s.Master(1); m != "" {
		t.Fatalf("master 1 ns before the master-down interval = %q", m)
	}
	s.Advance(want)
	if m := s.Master(1); m != "itr2" {
		t.Fatalf("master at the master-down interval = %q, want itr2", m)
	}
	ev := s.Events()
	last := ev[len(ev)-1]
	if last.Router != "itr2" || last.To != Master || !last.Time.Equal(want) || last.Reason != "master down timer" {
		t.Errorf("last event = %+v at %v, want itr2 MASTER at %v", last, last.Time, want)
	}
	if strings.Join(masters, ",") != "itr1,itr2" {
		t.Errorf("gratuitous ARPs from %v, want itr1 then itr2", masters)
	}
	// ITR1 comes back and preempts (priority 150 > 100) after its own
	// master-down interval.
	back := want.Add(5 * time.Second)
	if err := s.SetLinkUp("itr1", true, back); err != nil {
		t.Fatal(err)
	}
	s.Advance(back.Add(MasterDownInterval(time.Second, 150)))
	if m := s.Master(1); m != "itr1" {
		t.Fatalf("master after itr1 returned = %q, want itr1 (preemption)", m)
	}
	if st, _ := s.State("itr2", 1); st != Backup {
		t.Errorf("itr2 state = %v, want BACKUP", st)
	}
}

func TestNoPreempt(t *testing.T) {
	s, err := NewSegment([]InstanceConfig{
		{Router: "a", VRID: 7, Priority: 200, NoPreempt: true},
		{Router: "b", VRID: 7, Priority: 100, StartMaster: true},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Start(t0)
	s.Advance(t0.Add(time.Minute))
	if m := s.Master(7); m != "b" {
		t.Errorf("master = %q, want b (a does not preempt)", m)
	}
}

func TestBackupsElectHighest(t *testing.T) {
	// Nobody starts as master: the one with the shortest master-down
	// interval (highest priority) wins, and the other stays backup.
	s, err := NewSegment([]InstanceConfig{
		{Router: "low", VRID: 3, Priority: 90},
		{Router: "high", VRID: 3, Priority: 110},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Start(t0)
	s.Advance(t0.Add(30 * time.Second))
	if m := s.Master(3); m != "high" {
		t.Errorf("master = %q, want high", m)
	}
	for _, e := range s.Events() {
		if e.Router == "low" && e.To == Master {
			t.Errorf("low became master: %v", e)
		}
	}
}

func TestTwoGroups(t *testing.T) {
	// The lab's Test 2: ITR1 masters VRID 1, ITR2 VRID 2; ITR1 fails and
	// ITR2 masters both.
	s, err := NewSegment([]InstanceConfig{
		{Router: "itr1", VRID: 1, Priority: 150, StartMaster: true},
		{Router: "itr2", VRID: 1, Priority: 100},
		{Router: "itr1", VRID: 2, Priority: 100},
		{Router: "itr2", VRID: 2, Priority: 150, StartMaster: true},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Start(t0)
	s.Advance(t0.Add(5 * time.Second))
	if s.Master(1) != "itr1" || s.Master(2) != "itr2" {
		t.Fatalf("masters = %q, %q", s.Master(1), s.Master(2))
	}
	if err := s.SetLinkUp("itr1", false, t0.Add(5500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	s.Advance(t0.Add(20 * time.Second))
	if s.Master(1) != "itr2" || s.Master(2) != "itr2" {
		t.Fatalf("masters after failure = %q, %q", s.Master(1), s.Master(2))
	}
}

func TestErrors(t *testing.T) {
	bad := []InstanceConfig{
		{VRID: 1, Priority: 100},
		{Router: "a", Priority: 100},
		{Router: "a", VRID: 1},
		{Router: "a", VRID: 1, Priority: 1, AdvertInt: -1},
	}
	for _, c := range bad {
		if _, err := NewSegment([]InstanceConfig{c}, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewSegment(%+v) = %v, want ErrInvalidConfig", c, err)
		}
	}
	if _, err := NewSegment([]InstanceConfig{{Router: "a", VRID: 1, Priority: 1}, {Router: "a", VRID: 1, Priority: 2}}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("duplicate instance: %v", err)
	}
	s := pair(t, nil)
	if err := s.SetLinkUp("nobody", false, t0); !errors.Is(err, ErrUnknownRouter) {
		t.Errorf("SetLinkUp(nobody) = %v", err)
	}
	if _, err := s.State("nobody", 1); !errors.Is(err, ErrUnknownRouter) {
		t.Errorf("State(nobody) = %v", err)
	}
}

func TestRunRealTime(t *testing.T) {
	// The same failover driven by real timers, scaled to 20 ms adverts.
	adv := 20 * time.Millisecond
	switched := make(chan time.Time, 4)
	s, err := NewSegment([]InstanceConfig{
		{Router: "itr1", VRID: 1, Priority: 150, StartMaster: true, AdvertInt: adv},
		{Router: "itr2", VRID: 1, Priority: 100, AdvertInt: adv},
	}, func(e Event) {
		if e.Router == "itr2" && e.To == Master {
			switched <- time.Now()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.Adverts("itr1") < 5 {
		if time.Now().After(deadline) {
			t.Fatal("itr1 did not advertise")
		}
		time.Sleep(adv / 4)
	}
	fail := time.Now()
	if err := s.SetLinkUp("itr1", false, fail); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-switched:
		gap := at.Sub(fail)
		// Between 2.6 and 3.6 advertisement intervals after the failure,
		// depending on when the last advert went out (plus timer slack).
		if lo := MasterDownInterval(adv, 100) - adv; gap < lo-2*time.Millisecond {
			t.Errorf("switchover after %v, want at least %v", gap, lo)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("itr2 never became master")
	}
}

// TestTracked: a tracked object failing on the Master (keepalived's
// track_file) sends a priority-0 advertisement, so the Backup takes over
// after its Skew_Time, not the Master_Down_Interval; the old Master
// preempts again once the object is back.
func TestTracked(t *testing.T) {
	s, err := NewSegment([]InstanceConfig{
		{Router: "itr1", VRID: 1, Priority: 150, AdvertInt: 100 * time.Millisecond, StartMaster: true},
		{Router: "itr2", VRID: 1, Priority: 100, AdvertInt: 100 * time.Millisecond},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Start(t0)
	s.Advance(t0.Add(time.Second))
	at := t0.Add(1050 * time.Millisecond)
	if err := s.SetTracked("itr1", true, at); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.State("itr1", 1); st != Fault {
		t.Fatalf("itr1 %v after its track file failed, want FAULT", st)
	}
	skew := SkewTime(100*time.Millisecond, 100)
	s.Advance(at.Add(skew - time.Millisecond))
	if m := s.Master(1); m != "" {
		t.Fatalf("master %q before the skew time", m)
	}
	s.Advance(at.Add(skew))
	if m := s.Master(1); m != "itr2" {
		t.Fatalf("master %q at the skew time (%v) after the priority-0 advert, want itr2", m, skew)
	}
	back := at.Add(time.Second)
	if err := s.SetTracked("itr1", false, back); err != nil {
		t.Fatal(err)
	}
	s.Advance(back.Add(MasterDownInterval(100*time.Millisecond, 150)))
	if m := s.Master(1); m != "itr1" {
		t.Fatalf("master %q after itr1's track file cleared, want itr1 (preemption)", m)
	}
	if err := s.SetTracked("nobody", true, back); !errors.Is(err, ErrUnknownRouter) {
		t.Errorf("SetTracked(nobody) = %v", err)
	}
}

// TestTrackFile drives the segment from a track file, as keepalived's
// track_file does.
func TestTrackFile(t *testing.T) {
	path := t.TempDir() + "/itr1.track"
	s, err := NewSegment([]InstanceConfig{
		{Router: "itr1", VRID: 1, Priority: 150, AdvertInt: 50 * time.Millisecond, StartMaster: true},
		{Router: "itr2", VRID: 1, Priority: 100, AdvertInt: 50 * time.Millisecond},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- s.Run(ctx) }()
	go func() { done <- s.TrackFile(ctx, "itr1", path, 5*time.Millisecond) }()
	defer func() {
		cancel()
		<-done
		<-done
	}()
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for s.Master(1) != want {
			if time.Now().After(deadline) {
				t.Fatalf("master %q, want %q", s.Master(1), want)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	wait("itr1")
	if err := os.WriteFile(path, []byte("0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	wait("itr1")
	if err := os.WriteFile(path, []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wait("itr2")
	if err := os.WriteFile(path, []byte("0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wait("itr1")
	for _, c := range []struct {
		text string
		want int
	}{{"", 0}, {"  7 \n", 7}, {"junk", 0}} {
		_ = os.WriteFile(path, []byte(c.text), 0o600)
		if v, err := ReadTrackFile(path); err != nil || v != c.want {
			t.Errorf("ReadTrackFile(%q) = %d, %v, want %d", c.text, v, err, c.want)
		}
	}
	if v, err := ReadTrackFile(path + ".missing"); err != nil || v != 0 {
		t.Errorf("ReadTrackFile(missing) = %d, %v", v, err)
	}
}
