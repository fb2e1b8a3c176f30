package procfs

import (
	"os"
	"time"
)

// CPUSample is the CPU time of each component at one moment.
type CPUSample struct {
	at                                       time.Time
	harness, temporal, worker, api, postgres float64
	machineBusy, machineTotal                int64
}

// CPUUse is how much CPU each component used over a phase, in CPU seconds, and the
// machine's busy share.
type CPUUse struct {
	Seconds        float64 `json:"wallSeconds"`
	Harness        float64 `json:"harnessCpuSeconds"`
	Temporal       float64 `json:"temporalCpuSeconds"`
	Worker         float64 `json:"workerCpuSeconds"`
	API            float64 `json:"apiCpuSeconds"`
	Postgres       float64 `json:"postgresCpuSeconds"`
	MachineBusyPct float64 `json:"machineBusyPercent"`
}

// SampleCPU reads the CPU time used so far by this process (the harness), by every
// PostgreSQL process, by the three processes given (0 for one not running) and by the
// whole machine.
func SampleCPU(temporalPID, workerPID, apiPID int) CPUSample {
	s := CPUSample{at: time.Now(), harness: cpuSeconds(os.Getpid()), postgres: postgresCPUSeconds()}
	if temporalPID > 0 {
		s.temporal = cpuSeconds(temporalPID)
	}
	if workerPID > 0 {
		s.worker = cpuSeconds(workerPID)
	}
	if apiPID > 0 {
		s.api = cpuSeconds(apiPID)
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
		u.MachineBusyPct = r(100 * float64(b.machineBusy-a.machineBusy) / float64(dt))
	}
	return u
}
