package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// TestMapServerStateFile: a Map-Server with map-server.state-file answers
// for what was registered before its restart at once, without waiting for
// the ETRs' next Map-Registers.
func TestMapServerStateFile(t *testing.T) {
	state := filepath.Join(t.TempDir(), "registrations.db")
	cfg := strings.Replace(fmt.Sprintf(msConfig, "3m", ""), "[map-server]\n",
		fmt.Sprintf("[map-server]\nstate-file = %q\n", state), 1)
	ms1 := startStoppable(t, cfg, nil, nil)
	etr := newPeer(t)
	etr.send(register(t, wire.AlgHMACSHA196, "key-a", 0x1234, 0, "10.1.0.0/16", "192.0.2.1"), ms1.d.ControlAddrs()[0])
	if etr.recv(3*time.Second) == nil {
		t.Fatal("no Map-Notify")
	}
	ms1.stop()
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no state file after the Map-Server stopped: %v", err)
	}

	ms2 := startStoppable(t, cfg, nil, nil)
	itr := newPeer(t)
	itr.send(mapRequest(t, itr.addr(), 0, "10.1.2.3", 0x99), ms2.d.ControlAddrs()[0])
	r := itr.reply(0x99)
	if len(r.Records) != 1 || len(r.Records[0].Locators) != 1 || r.Records[0].Locators[0].Address.IP.String() != "192.0.2.1" {
		t.Fatalf("after the restart: %+v", r.Records)
	}
	if n := ms2.d.counters()["mapserver_state_restored"]; n != 1 {
		t.Errorf("mapserver_state_restored = %d", n)
	}
}
