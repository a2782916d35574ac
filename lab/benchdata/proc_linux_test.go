//go:build linux

package benchdata

import (
	"errors"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	line := []byte("1234 (lispd (x) y) S 1 1234 1234 0 -1 4194560 2000 0 0 0 250 130 0 0 20 0 9 0 100 0 0")
	d, err := parseProcStat(line)
	if err != nil || d != 3800*time.Millisecond {
		t.Errorf("parseProcStat = %v, %v", d, err)
	}
	for _, bad := range []string{"", "1234 lispd S", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 1"} {
		if _, err := parseProcStat([]byte(bad)); !errors.Is(err, errProcFormat) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if d, err := cpuTime("self"); err != nil || d < 0 {
		t.Errorf("cpuTime(self) = %v, %v", d, err)
	}
}

func TestParseMachineBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	stat := []byte("cpu  100 5 50 1000 20 3 7 2 40 0\ncpu0 1 2 3 4\n")
	d, err := parseMachineBusy(stat)
	if err != nil || d != 1670*time.Millisecond {
		t.Errorf("parseMachineBusy = %v, %v", d, err)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4", "cpu 1 2 x 4 5"} {
		if _, err := parseMachineBusy([]byte(bad)); !errors.Is(err, errProcFormat) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := machineBusy(); err != nil {
		t.Error(err)
	}
	if m := machine(); m.CPUs < 1 || m.Kernel == "" || m.LoadAverage == "" {
		t.Errorf("machine() = %+v", m)
	}
}
