// Package procfs reads what the benchmark measures from Linux's /proc: CPU time per
// process and for the whole machine, peak resident set sizes, total memory, and the
// harness's own child processes.
package procfs

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

type procStat struct {
	comm                         string
	ppid                         int
	utime, stime, cutime, cstime int64 // clock ticks
}

// readStat parses /proc/<pid>/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

func parseStat(s string) (procStat, error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("malformed stat")
	}
	f := strings.Fields(s[end+1:])
	// After "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
	// cmajflt utime stime cutime cstime ...
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("malformed stat")
	}
	n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
	return procStat{comm: s[open+1 : end], ppid: int(n(1)), utime: n(11), stime: n(12), cutime: n(13), cstime: n(14)}, nil
}

// CPUSeconds is the CPU a process has used, itself only; 0 when it is gone.
func CPUSeconds(pid int) float64 { return cpuSeconds(pid) }

// cpuSeconds is the CPU a process has used, itself only.
func cpuSeconds(pid int) float64 {
	st, err := readStat(pid)
	if err != nil {
		return 0
	}
	return float64(st.utime+st.stime) / clockTicks
}

// postgresCPUSeconds is the CPU of every PostgreSQL process: live backends plus what
// exited backends left in the postmaster's children times.
func postgresCPUSeconds() float64 {
	ents, _ := os.ReadDir("/proc")
	var ticks int64
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.comm != "postgres" {
			continue
		}
		ticks += st.utime + st.stime
		if st.ppid == 1 || !isPostgres(st.ppid) {
			ticks += st.cutime + st.cstime // the postmaster
		}
	}
	return float64(ticks) / clockTicks
}

// treeCPUSeconds is the CPU of pid, of its live children, and what its exited
// children left in its children times: a private PostgreSQL server's postmaster and
// every backend and background process it started.
func treeCPUSeconds(pid int) float64 {
	root, err := readStat(pid)
	if err != nil {
		return 0
	}
	ticks := root.utime + root.stime + root.cutime + root.cstime
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		child, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(child); err == nil && st.ppid == pid {
			ticks += st.utime + st.stime
		}
	}
	return float64(ticks) / clockTicks
}

func isPostgres(pid int) bool {
	st, err := readStat(pid)
	return err == nil && st.comm == "postgres"
}

// machineCPU returns busy and total jiffies of all CPUs from /proc/stat.
func machineCPU() (busy, total int64) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[0] != "cpu" {
			continue
		}
		for i, v := range fields[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			total += n
			if i != 3 && i != 4 { // idle, iowait
				busy += n
			}
		}
		break
	}
	return busy, total
}

// PeakRSS is the peak resident set of pid in bytes: VmHWM in /proc/<pid>/status.
func PeakRSS(pid int) int64 {
	return statusField(pid, "VmHWM:")
}

func statusField(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// ResetPeakRSS resets pid's peak resident set to its current one (clear_refs 5), so a
// phase's peak can be read on its own.
func ResetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// MemTotal is the machine's memory in bytes, from /proc/meminfo.
func MemTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb int64
			_, _ = fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb << 10
		}
	}
	return 0
}

// ChildPID finds this process's child whose command name is comm (the dev server the
// SDK started), or 0.
func ChildPID(comm string) int {
	self := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err == nil && st.ppid == self && strings.HasPrefix(comm, st.comm) {
			return pid
		}
	}
	return 0
}
