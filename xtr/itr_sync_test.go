package xtr

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// TestSyncHooks checks the synchronization set's hooks: SetVersions stamps
// the entries installed from Map-Replies, SetExpiryPolicy replaces the
// expiry policy, and nil restores the ITR's own.
func TestSyncHooks(t *testing.T) {
	i, out, clk := newTestITR(t, nil)
	key := mapcache.Key{Prefix: netip.MustParsePrefix("10.2.0.0/16")}
	answer := func() *mapcache.Entry {
		t.Helper()
		if err := i.Refresh(0, key.Prefix); err != nil {
			t.Fatal(err)
		}
		i.sendFresh()
		msgs := out.take()
		if len(msgs) != 1 {
			t.Fatalf("%d Map-Requests sent", len(msgs))
		}
		_, req := innerRequest(t, msgs[0])
		i.HandlePacket(mapReply(t, req.Nonce, 0, "10.2.0.0/16", 10, "192.0.2.2"), mr1, netip.Addr{})
		e, ok := i.Cache().Get(key)
		if !ok {
			t.Fatal("no entry installed")
		}
		return e
	}
	i.SetVersions(func() uint64 { return 1 << 62 })
	if e := answer(); e.Version != 1<<62 {
		t.Fatalf("version %d, want the hook's", e.Version)
	}

	var asked []*mapcache.Entry
	i.SetExpiryPolicy(func(e *mapcache.Entry) mapcache.ExpireDecision {
		asked = append(asked, e)
		return mapcache.Extend(time.Minute)
	})
	clk.Advance(10*time.Minute + time.Second)
	if n := i.Cache().Sweep(clk.Now()); n != 0 || len(asked) != 1 || asked[0].Key() != key {
		t.Fatalf("swept %d, policy asked about %d entries", n, len(asked))
	}
	// The ITR's own policy again: with no refresh window the entry goes.
	i.SetExpiryPolicy(nil)
	clk.Advance(time.Minute)
	if n := i.Cache().Sweep(clk.Now()); n != 1 || len(asked) != 1 {
		t.Fatalf("swept %d, policy asked %d times", n, len(asked))
	}
	// Without the version hook, versions are the clock's time again.
	i.SetVersions(nil)
	if e := answer(); e.Version != uint64(clk.Now().UnixNano()) {
		t.Fatalf("version %d, want the clock's %d", e.Version, clk.Now().UnixNano())
	}
}
