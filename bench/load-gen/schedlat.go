// The generator's own scheduling delay: how long its runnable goroutines
// waited for a CPU (Go's runtime/metrics "/sched/latencies:seconds", a
// histogram kept by the runtime since start). The pulse and ack latencies
// are measured here, at the generator, so on a machine it shares with
// Janus they include the time the generator itself waited to run; this
// tells that share apart from Janus's (bench/README.md, "Where the latency
// goes at the largest N").
package main

import (
	"fmt"
	"math"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
)

const schedLatMetric = "/sched/latencies:seconds"

// schedHist is one reading of the histogram: counts per bucket and the
// buckets' boundaries (len(buckets) == len(counts)+1).
type schedHist struct {
	counts  []uint64
	buckets []float64
}

func readSchedLat() schedHist {
	s := []metrics.Sample{{Name: schedLatMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return schedHist{}
	}
	h := s[0].Value.Float64Histogram()
	return schedHist{counts: append([]uint64(nil), h.Counts...), buckets: append([]float64(nil), h.Buckets...)}
}

// schedLatPct is the p-th percentile, in ms, of the delays recorded between
// readings a and b (the upper edge of the bucket holding that rank; a
// bucket's edge bounds it, the runtime keeps no finer record), or nil when
// there were none or the metric is missing.
func schedLatPct(a, b schedHist, p float64) any {
	if len(b.counts) == 0 || len(a.counts) != len(b.counts) {
		return nil
	}
	var total uint64
	d := make([]uint64, len(b.counts))
	for i := range b.counts {
		d[i] = b.counts[i] - a.counts[i]
		total += d[i]
	}
	if total == 0 {
		return nil
	}
	rank := uint64(math.Ceil(p / 100 * float64(total)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, n := range d {
		seen += n
		if seen >= rank {
			hi := b.buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = b.buckets[i]
			}
			return round(hi*1000, 3)
		}
	}
	return nil
}

// Janus's threads' run-queue delay, from /proc/PID/task/*/schedstat (the
// kernel's per-thread time on a CPU, time waiting on a run queue, and
// number of time slices, cumulative), grouped by thread name. Threads that
// start or stop within the window count from zero or are left out.
type taskStat struct {
	comm             string
	runNS, waitNS, n uint64
}

func readTaskStats(pid int) map[string]taskStat {
	out := map[string]taskStat{}
	if pid <= 0 {
		return out
	}
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 3 {
			continue
		}
		c, _ := os.ReadFile(dir + "/" + e.Name() + "/comm")
		var t taskStat
		t.comm = strings.TrimSpace(string(c))
		t.runNS, _ = strconv.ParseUint(f[0], 10, 64)
		t.waitNS, _ = strconv.ParseUint(f[1], 10, 64)
		t.n, _ = strconv.ParseUint(f[2], 10, 64)
		out[e.Name()] = t
	}
	return out
}

// threadGroup names a Janus thread by what it is (its name without the
// numbers that tell instances apart: "hloop 1" and "hloop 2" are one group).
func threadGroup(comm string) string {
	g := strings.TrimRight(comm, "0123456789 -#")
	if g == "" {
		return comm
	}
	return g
}

// janusRunQueue sums, per thread group, the time a process's threads
// (Janus's; also the generator's own, "alliance-load") ran and
// waited to run between the readings a and b: {"group": {"threads": k,
// "run_ms": r, "wait_ms": w, "slices": n, "wait_ms_per_slice": w/n}}.
func janusRunQueue(a, b map[string]taskStat) map[string]any {
	type acc struct {
		threads          int
		runNS, waitNS, n uint64
	}
	groups := map[string]*acc{}
	for tid, tb := range b {
		ta := a[tid] // zero when the thread started within the window
		if tb.n < ta.n {
			continue
		}
		g := groups[threadGroup(tb.comm)]
		if g == nil {
			g = &acc{}
			groups[threadGroup(tb.comm)] = g
		}
		g.threads++
		g.runNS += tb.runNS - ta.runNS
		g.waitNS += tb.waitNS - ta.waitNS
		g.n += tb.n - ta.n
	}
	out := map[string]any{}
	for name, g := range groups {
		if g.n == 0 {
			continue
		}
		out[name] = map[string]any{"threads": g.threads, "run_ms": round(float64(g.runNS)/1e6, 1),
			"wait_ms": round(float64(g.waitNS)/1e6, 1), "slices": g.n,
			"wait_ms_per_slice": round(float64(g.waitNS)/1e6/float64(g.n), 3)}
	}
	return out
}
