package procfs

import (
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	st, err := parseStat("1234 (temporal server) S 99 1234 1234 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 30 0")
	if err != nil {
		t.Fatal(err)
	}
	if st.comm != "temporal server" || st.ppid != 99 || st.utime != 250 || st.stime != 50 || st.cutime != 7 || st.cstime != 3 {
		t.Fatalf("%+v", st)
	}
}

func TestParseLoadAvg(t *testing.T) {
	tests := []struct {
		name string
		give string
		want LoadAvg
	}{
		{"kernel format", "2.70 3.36 2.08 5/179 7789\n", LoadAvg{2.70, 3.36, 2.08}},
		{"truncated", "1.5", LoadAvg{1.5, 0, 0}},
		{"empty", "", LoadAvg{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseLoadAvg(tt.give); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCPUBetweenAttributesTheRestToOthers(t *testing.T) {
	at := time.Now()
	a := CPUSample{at: at, harness: 1, temporal: 10, worker: 2, api: 0.5, postgres: 3, machineBusy: 1000, machineTotal: 5000}
	// 10 s on 2 cores = 2,000 ticks, 1,500 of them busy: 15 CPU-s, of which ours is 12.
	b := CPUSample{at: at.Add(10 * time.Second), harness: 2, temporal: 18, worker: 3.5, api: 0.5, postgres: 4.5, machineBusy: 2500, machineTotal: 7000}
	got := CPUBetween(a, b)
	want := CPUUse{Seconds: 10, Harness: 1, Temporal: 8, Worker: 1.5, API: 0, Postgres: 1.5, MachineBusy: 15, Others: 3, MachineBusyPct: 75}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}
