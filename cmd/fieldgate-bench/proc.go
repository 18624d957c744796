package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times (100 on
// every Linux architecture fieldgate runs on).
const clockTicks = 100

// procUsage is what a run cost the target process.
type procUsage struct {
	CPUPercent float64 `json:"cpu_percent"` // of one core, over the run
	RSSPeakKB  int64   `json:"rss_peak_kb"`
	AnonPeakKB int64   `json:"rss_anon_peak_kb"`
	RSSEndKB   int64   `json:"rss_end_kb"`
}

// watchProc samples pid's CPU time and memory every interval until ctx
// ends, then returns the usage over that span.
func watchProc(ctx context.Context, pid int, interval time.Duration) (result func() (procUsage, error)) {
	var mu sync.Mutex
	var u procUsage
	var firstErr error
	start := time.Now()
	cpu0, err := cpuTicks(pid)
	if err != nil {
		return func() (procUsage, error) { return u, err }
	}
	done := make(chan struct{})
	sample := func() {
		rss, anon, err := memKB(pid)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			firstErr = err
			return
		}
		u.RSSPeakKB, u.AnonPeakKB, u.RSSEndKB = max(u.RSSPeakKB, rss), max(u.AnonPeakKB, anon), rss
	}
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			sample()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() (procUsage, error) {
		<-done
		sample()
		cpu1, err := cpuTicks(pid)
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			u.CPUPercent = 100 * float64(cpu1-cpu0) / clockTicks / time.Since(start).Seconds()
		}
		if firstErr != nil {
			err = firstErr
		}
		return u, err
	}
}

// cpuTicks returns utime+stime of pid.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields count from after its ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad CPU times", pid)
	}
	return ut + st, nil
}

// memKB returns VmRSS and RssAnon of pid in KiB.
func memKB(pid int) (rss, anon int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "RssAnon":
			anon = n
		}
	}
	return rss, anon, nil
}
