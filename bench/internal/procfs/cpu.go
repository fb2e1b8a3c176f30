package procfs

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// CPUSample is the CPU time of each component at one moment.
type CPUSample struct {
	at                                       time.Time
	harness, temporal, worker, api, postgres float64
	machineBusy, machineTotal                int64
}

// CPUUse is how much CPU each component used over a phase, in CPU seconds, and the
// machine's busy share. Worker and API are summed over their replicas. Others is what
// the machine spent on processes that are none of these (other people's work on a
// shared machine), so a reader can tell a quiet run from a noisy one.
type CPUUse struct {
	Seconds        float64 `json:"wallSeconds"`
	Harness        float64 `json:"harnessCpuSeconds"`
	Temporal       float64 `json:"temporalCpuSeconds"`
	Worker         float64 `json:"workerCpuSeconds"`
	API            float64 `json:"apiCpuSeconds"`
	Postgres       float64 `json:"postgresCpuSeconds"`
	MachineBusy    float64 `json:"machineBusyCpuSeconds"`
	Others         float64 `json:"othersCpuSeconds"`
	MachineBusyPct float64 `json:"machineBusyPercent"`
}

// PIDs are the processes of a stack.
type PIDs struct {
	Temporal int // 0 when not running
	Workers  []int
	APIs     []int
	// Postgres is the postmaster of a private PostgreSQL server: its CPU is that
	// process and its children's. 0 counts every postgres process on the machine.
	Postgres int
}

// SampleCPU reads the CPU time used so far by this process (the harness), by
// PostgreSQL, by the Temporal server, by each worker and API replica (summed) and by
// the whole machine.
func SampleCPU(p PIDs) CPUSample {
	s := CPUSample{at: time.Now(), harness: cpuSeconds(os.Getpid())}
	if p.Postgres > 0 {
		s.postgres = treeCPUSeconds(p.Postgres)
	} else {
		s.postgres = postgresCPUSeconds()
	}
	if p.Temporal > 0 {
		s.temporal = cpuSeconds(p.Temporal)
	}
	for _, pid := range p.Workers {
		s.worker += cpuSeconds(pid)
	}
	for _, pid := range p.APIs {
		s.api += cpuSeconds(pid)
	}
	s.machineBusy, s.machineTotal = machineCPU()
	return s
}

// CPUBetween is what each component used from sample a to sample b.
func CPUBetween(a, b CPUSample) CPUUse {
	r := func(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
	u := CPUUse{
		Seconds:  r(b.at.Sub(a.at).Seconds()),
		Harness:  r(b.harness - a.harness),
		Temporal: r(b.temporal - a.temporal),
		Worker:   r(b.worker - a.worker),
		API:      r(b.api - a.api),
		Postgres: r(b.postgres - a.postgres),
	}
	if dt := b.machineTotal - a.machineTotal; dt > 0 {
		busy := float64(b.machineBusy - a.machineBusy)
		u.MachineBusyPct = r(100 * busy / float64(dt))
		u.MachineBusy = r(busy / clockTicks)
		u.Others = r(max(0, u.MachineBusy-(u.Harness+u.Temporal+u.Worker+u.API+u.Postgres)))
	}
	return u
}

// LoadAvg is the 1-, 5- and 15-minute load averages from /proc/loadavg: on a shared
// machine they say how many runnable processes the numbers competed with.
type LoadAvg [3]float64

// ReadLoadAvg reads /proc/loadavg; zeros when it cannot.
func ReadLoadAvg() LoadAvg {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return LoadAvg{}
	}
	return parseLoadAvg(string(b))
}

func parseLoadAvg(s string) LoadAvg {
	var l LoadAvg
	f := strings.Fields(s)
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}
