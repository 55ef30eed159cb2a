// alliance-load — a WebRTC load generator for Janus (bench/README.md,
// "bench/load"). It plays both participants of N visits against one
// plugin (janus.plugin.alliance, or the stock echotest / videocall for
// comparison) with real ICE, DTLS-SRTP and SCTP (pion/webrtc v3), sends
// synthetic Opus + VP8 RTP per direction, counts what comes back, answers
// alliance pulses over the data channel, and measures Janus's CPU in the
// steady state. It prints one JSON line.
//
// Usually started by bench/load (which sets up namespaces and Janus);
// run it by hand against a Janus of your own:
//
//	ALLIANCE_THERAPIST_KEY=... alliance-load --janus http://198.18.0.1:8088/janus \
//	    --local-ip 198.18.0.2 --plugin alliance --visits 10 --seconds 30 --janus-pid PID
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/webrtc/v3"
)

var (
	dtlsGCM = dtls.SRTP_AEAD_AES_128_GCM
	dtlsCM  = dtls.SRTP_AES128_CM_HMAC_SHA1_80
)

type Config struct {
	GenConfig
	JanusURL, AdminURL, AdminSecret string
	Plugin                          string
	Visits                          int
	Seconds, Warmup                 float64
	PulseEvery                      float64
	AnswerDelay                     time.Duration
	JanusPID                        int
	Parallel                        int
	TherapistKey                    string
	Label                           string
	Verbose                         bool
	CPUProfile                      string
	PerfOut                         string
	Sockets                         int
	Tick                            time.Duration
	Procs                           int
}

type Gen struct {
	cfg    Config
	apis   []*webrtc.API // one per shared socket (or just one)
	nPeers int
	pacer  *Pacer
	mu     sync.Mutex
	janus  *JanusClient
	runTag string
	pulses *Pulses
	visits []*Visit
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "alliance-load: "+format+"\n", a...)
}

func main() {
	var c Config
	flag.StringVar(&c.JanusURL, "janus", "", "Janus HTTP API URL, e.g. http://198.18.0.1:8088/janus (required)")
	flag.StringVar(&c.AdminURL, "admin", "", "Janus Admin API URL (optional: cross-check packet counts with handle_info; secret in ALLIANCE_ADMIN_SECRET)")
	flag.StringVar(&c.Plugin, "plugin", "alliance", "alliance | echotest | videocall")
	flag.IntVar(&c.Visits, "visits", 1, "visits (two PeerConnections each)")
	flag.Float64Var(&c.Seconds, "seconds", 30, "length of the measured steady state, s")
	flag.Float64Var(&c.Warmup, "warmup", 3, "s to wait after media flows on every PeerConnection, before measuring")
	flag.Float64Var(&c.PulseEvery, "pulse-every", 10, "alliance: s between the therapist's pulse requests, per visit")
	answerMS := flag.Int("answer-delay-ms", 300, "alliance: the client's think time before it answers a pulse")
	flag.IntVar(&c.JanusPID, "janus-pid", 0, "Janus's pid (for janus_cpu_s; /proc/PID/stat)")
	flag.IntVar(&c.Parallel, "parallel", 4, "visits set up at the same time")
	flag.StringVar(&c.LocalIP, "local-ip", "", "the only local address to offer as ICE host candidate")
	flag.StringVar(&c.SRTP, "srtp", "", "SRTP profile to offer: '' (pion's default: AES-128-GCM, then AES-128-CM-SHA1-80), gcm, cm")
	flag.IntVar(&c.Video.Kbps, "video-kbps", 1000, "video bitrate per direction")
	flag.IntVar(&c.Video.FPS, "fps", 30, "video frames per second")
	kf := flag.Float64("keyframe-s", 3, "s between periodic key frames")
	flag.BoolVar(&c.Reports, "rtcp-reports", true, "send RTCP sender/receiver reports")
	flag.DurationVar(&c.Tick, "tick", 5*time.Millisecond, "send clock: packets leave on this grid")
	flag.IntVar(&c.Procs, "procs", 0, "GOMAXPROCS (0: 1 up to 12 visits, else 2)")
	flag.IntVar(&c.Sockets, "sockets", 0, "UDP sockets the PeerConnections share (pion's ICE UDP mux; 0: one socket per PeerConnection)")
	flag.StringVar(&c.Label, "label", "", "free text copied into the JSON")
	flag.BoolVar(&c.Verbose, "v", false, "log progress to stderr")
	flag.StringVar(&c.PerfOut, "perf", "", "record Janus with `perf record -g` during the steady state into this file (needs --janus-pid and linux-perf)")
	flag.StringVar(&c.CPUProfile, "cpuprofile", "", "write the generator's own CPU profile (steady state only) to this file")
	flag.Parse()
	c.AnswerDelay = time.Duration(*answerMS) * time.Millisecond
	c.Video.KeyframeEvery = int(math.Round(*kf * float64(c.Video.FPS)))
	c.TherapistKey = os.Getenv("ALLIANCE_THERAPIST_KEY")
	c.AdminSecret = os.Getenv("ALLIANCE_ADMIN_SECRET")
	switch c.Plugin {
	case "alliance", "echotest", "videocall":
	default:
		logf("--plugin must be alliance, echotest or videocall")
		os.Exit(2)
	}
	if c.JanusURL == "" || c.Visits < 1 || c.Video.FPS < 1 || c.Video.KeyframeEvery < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if c.Plugin == "alliance" && c.TherapistKey == "" {
		logf("--plugin alliance needs a therapist key in ALLIANCE_THERAPIST_KEY")
		os.Exit(2)
	}
	out, err := run(c)
	if err != nil {
		logf("%v", err)
		if out != nil {
			out["error"] = err.Error()
			b, _ := json.Marshal(out)
			fmt.Println(string(b))
		}
		os.Exit(1)
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

// -- CPU ---------------------------------------------------------------------

const clkTck = 100 // USER_HZ on Linux

func procCPU(pid int) (float64, error) {
	u, s, err := procCPUSplit(pid)
	return u + s, err
}

// procCPUSplit: user and system CPU seconds of a process (all its threads,
// live and exited) from /proc/PID/stat.
func procCPUSplit(pid int) (user, sys float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// fields after the comm: state(3) ... utime(14) stime(15) -> index 11, 12
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return ut / clkTck, st / clkTck, nil
}

func selfCPU() (user, sys float64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6, float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6
}

// -- counters ------------------------------------------------------------------

type snapshot struct {
	t                  time.Time
	janusCPU, selfCPU  float64
	janusSys, selfSys  float64
	sent, sentA, sentV uint64
	recv, recvA, recvV uint64
	expected           uint64
	frames             uint64
}

func (g *Gen) snap() snapshot {
	s := snapshot{t: time.Now()}
	u, sy := selfCPU()
	s.selfCPU, s.selfSys = u+sy, sy
	if g.cfg.JanusPID > 0 {
		u, sy, _ = procCPUSplit(g.cfg.JanusPID)
		s.janusCPU, s.janusSys = u+sy, sy
	}
	for _, v := range g.visits {
		for _, p := range v.Peers {
			a, v2 := p.sentA.Load(), p.sentV.Load()
			s.sentA += a
			s.sentV += v2
			ra, ea, _ := p.RxTotals(webrtc.RTPCodecTypeAudio)
			rv, ev, fv := p.RxTotals(webrtc.RTPCodecTypeVideo)
			s.recvA += ra
			s.recvV += rv
			s.expected += ea + ev
			s.frames += fv
		}
	}
	s.sent, s.recv = s.sentA+s.sentV, s.recvA+s.recvV
	return s
}

func pct(xs []float64, p float64) any {
	if len(xs) == 0 {
		return nil
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	// nearest rank
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	if k < 0 {
		k = 0
	}
	return round(s[k], 2)
}

func round(x float64, d int) float64 {
	m := math.Pow(10, float64(d))
	return math.Round(x*m) / m
}

// -- the run ---------------------------------------------------------------------

func run(c Config) (map[string]any, error) {
	var apis []*webrtc.API
	for i := 0; i < c.Sockets || i == 0; i++ {
		gc := c.GenConfig
		if c.Sockets > 0 {
			ip := net.ParseIP(c.LocalIP)
			conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
			if err != nil {
				return nil, err
			}
			_ = conn.SetReadBuffer(4 << 20)
			_ = conn.SetWriteBuffer(4 << 20)
			gc.UDPMux = conn
		}
		api, err := NewAPI(gc)
		if err != nil {
			return nil, err
		}
		apis = append(apis, api)
	}
	var tag [3]byte
	_, _ = rand.Read(tag[:])
	procs := c.Procs
	if procs == 0 {
		procs = 1
		if c.Visits > 12 {
			procs = 2
		}
	}
	runtime.GOMAXPROCS(procs)
	g := &Gen{cfg: c, apis: apis, pacer: NewPacer(c.Tick, 1+c.Visits/8), janus: NewJanusClient(c.JanusURL), runTag: hex.EncodeToString(tag[:]),
		pulses: &Pulses{dcErrors: map[string]int{}}}
	out := map[string]any{"plugin": c.Plugin, "visits": c.Visits, "label": c.Label, "gen_procs": procs}

	// Ctrl-C / SIGTERM: tear down what is up, then exit
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	aborted := make(chan struct{})
	go func() {
		<-sigs
		close(aborted)
	}()
	defer func() {
		var wg sync.WaitGroup
		for _, v := range g.visits {
			wg.Add(1)
			go func(v *Visit) { defer wg.Done(); g.teardown(v) }(v)
		}
		wg.Wait()
	}()
	sleep := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-aborted:
			return fmt.Errorf("interrupted")
		}
	}

	// set up the visits, c.Parallel at a time
	t0 := time.Now()
	setup := map[string]func(*Visit) error{"alliance": g.setupAlliance, "echotest": g.setupEchoTest,
		"videocall": g.setupVideoCall}[c.Plugin]
	for i := 0; i < c.Visits; i++ {
		g.visits = append(g.visits, &Visit{Idx: i, g: g})
	}
	work := make(chan *Visit)
	errs := make(chan error, c.Visits)
	var wg sync.WaitGroup
	for w := 0; w < c.Parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range work {
				if err := setup(v); err != nil {
					errs <- fmt.Errorf("visit %d: %v", v.Idx, err)
				} else if c.Verbose {
					logf("visit %d signalled", v.Idx)
				}
			}
		}()
	}
	for _, v := range g.visits {
		work <- v
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		return out, err
	}
	signalled := time.Since(t0)

	// every PeerConnection connected and receiving both media
	deadline := time.Now().Add(time.Duration(20+c.Visits/2) * time.Second)
	for {
		waiting := 0
		for _, v := range g.visits {
			for _, p := range v.Peers {
				if !mediaFlowing(p) {
					waiting++
				}
			}
			if v.hello != nil {
				select {
				case <-v.hello:
				default:
					waiting++ // the client's data channel is not up yet
				}
			}
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("%d PeerConnection(s) receive no audio or no video, or have no data channel", waiting)
		}
		if err := sleep(100 * time.Millisecond); err != nil {
			return out, err
		}
	}
	out["setup_s"] = round(time.Since(t0).Seconds(), 2)
	out["signalling_s"] = round(signalled.Seconds(), 2)

	// pulses, spread over the interval
	stopPulses := make(chan struct{})
	var pulseWG sync.WaitGroup
	if c.Plugin == "alliance" && c.PulseEvery > 0 {
		every := time.Duration(c.PulseEvery * float64(time.Second))
		for i, v := range g.visits {
			pulseWG.Add(1)
			first := time.Duration(int64(every) * int64(i) / int64(c.Visits))
			go func(v *Visit) { defer pulseWG.Done(); v.pulseLoop(first, every, stopPulses) }(v)
			go v.watchClientEvents(stopPulses)
		}
	}

	if err := sleep(time.Duration(c.Warmup * float64(time.Second))); err != nil {
		close(stopPulses)
		return out, err
	}
	var perf *exec.Cmd
	if c.PerfOut != "" && c.JanusPID > 0 {
		perf = exec.Command("perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-p", strconv.Itoa(c.JanusPID),
			"-o", c.PerfOut, "--", "sleep", strconv.FormatFloat(c.Seconds, 'f', 3, 64))
		perf.Stderr = os.Stderr
		if err := perf.Start(); err != nil {
			logf("perf: %v", err)
			perf = nil
		}
	}
	a := g.snap()
	schedA, tasksA, selfA := readSchedLat(), readTaskStats(c.JanusPID), readTaskStats(os.Getpid())
	if c.CPUProfile != "" {
		if f, err := os.Create(c.CPUProfile); err == nil {
			_ = pprof.StartCPUProfile(f)
			defer f.Close()
		}
	}
	if err := sleep(time.Duration(c.Seconds * float64(time.Second))); err != nil {
		close(stopPulses)
		return out, err
	}
	b := g.snap()
	schedB, tasksB, selfB := readSchedLat(), readTaskStats(c.JanusPID), readTaskStats(os.Getpid())
	if c.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	if perf != nil {
		_ = perf.Wait()
		out["perf_data"] = c.PerfOut
	}
	close(stopPulses)
	pulseWG.Wait()

	win := b.t.Sub(a.t).Seconds()
	dSent, dRecv, dExp := b.sent-a.sent, b.recv-a.recv, b.expected-a.expected
	out["seconds"] = round(win, 3)
	out["packets_sent"] = dSent
	out["packets_received"] = dRecv
	out["packets_received_audio"] = b.recvA - a.recvA
	out["packets_received_video"] = b.recvV - a.recvV
	out["video_frames_received"] = b.frames - a.frames
	loss := 0.0
	if dExp > 0 && dExp > dRecv {
		loss = float64(dExp-dRecv) / float64(dExp) * 100
	}
	out["loss_pct"] = round(loss, 3)
	out["relayed_pps"] = round(float64(dRecv)/win, 1)
	if c.JanusPID > 0 {
		jc := b.janusCPU - a.janusCPU
		out["janus_cpu_s"] = round(jc, 3)
		out["janus_cpu_sys_s"] = round(b.janusSys-a.janusSys, 3)
		out["janus_cpu_pct"] = round(jc/win*100, 2) // of one core
		if dRecv > 0 {
			out["janus_cpu_us_per_packet"] = round(jc*1e6/float64(dRecv), 3)
		}
		out["janus_cpu_ms_per_visit_s"] = round(jc*1e3/win/float64(c.Visits), 3)
	} else {
		out["janus_cpu_s"] = nil
	}
	gc := b.selfCPU - a.selfCPU
	out["gen_cpu_s"] = round(gc, 3)
	out["gen_cpu_sys_s"] = round(b.selfSys-a.selfSys, 3)
	out["gen_cpu_pct"] = round(gc/win*100, 2)
	// how long the generator's goroutines waited for a CPU in the window
	out["gen_sched_delay_ms_p50"] = schedLatPct(schedA, schedB, 50)
	out["gen_sched_delay_ms_p99"] = schedLatPct(schedA, schedB, 99)
	if c.JanusPID > 0 {
		out["janus_run_queue"] = janusRunQueue(tasksA, tasksB)
	}
	// the generator's own OS threads (the Go metric above does not see a
	// goroutine whose thread the kernel has put aside)
	out["gen_run_queue"] = janusRunQueue(selfA, selfB)
	if dRecv+dSent > 0 {
		out["gen_cpu_us_per_packet"] = round(gc*1e6/float64(dRecv), 3) // per relayed packet: it both sent and received it
	}
	var late, kfs, plis, nacks uint64
	for _, v := range g.visits {
		for _, p := range v.Peers {
			late += p.late.Load()
			kfs += p.keyframes.Load()
			plis += p.plis.Load()
			nacks += p.nacks.Load()
		}
	}
	out["send_late_ticks"] = late
	out["keyframes_sent"] = kfs
	out["pli_fir_received"] = plis
	out["nacks_received"] = nacks
	key, delta := c.Video.sizes()
	out["media"] = map[string]any{"audio": fmt.Sprintf("opus %d B / 20 ms", opusBytes),
		"video": fmt.Sprintf("vp8 %d kbit/s %d fps, key frame every %d frames (%d B), delta %d B, <= %d B payload/packet",
			c.Video.Kbps, c.Video.FPS, c.Video.KeyframeEvery, key, delta, vp8MaxPayload),
		"srtp_offered": map[string]string{"": "pion default (gcm, cm)", "gcm": "gcm", "cm": "cm"}[c.SRTP]}

	// pulses: wait a moment for acks still on their way
	if c.Plugin == "alliance" {
		end := time.Now().Add(3 * time.Second)
		for time.Now().Before(end) {
			ps := g.pulses
			ps.mu.Lock()
			done := ps.acked+ps.refused >= ps.sent
			ps.mu.Unlock()
			if done {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		ps := g.pulses
		ps.mu.Lock()
		out["pulse_rtt_ms_p50"] = pct(ps.deliveryMS, 50)
		out["pulse_rtt_ms_p99"] = pct(ps.deliveryMS, 99)
		out["pulse_rtt_ms_max"] = pct(ps.deliveryMS, 100)
		out["pulse_request_ms_p50"] = pct(ps.requestMS, 50)
		out["ack_ms_p50"] = pct(ps.ackMS, 50)
		out["ack_ms_p99"] = pct(ps.ackMS, 99)
		out["pulses"] = map[string]any{"requested": ps.sent, "refused": ps.refused, "delivered": ps.delivered,
			"answered": ps.answered, "acked": ps.acked, "expired": ps.expired, "dc_errors": ps.dcErrors,
			"via_event": ps.viaEvent, "hellos": ps.hellos, "quality_msgs": ps.qualityMsgs, "alerts": ps.alerts}
		ps.mu.Unlock()
	} else {
		out["pulse_rtt_ms_p50"], out["pulse_rtt_ms_p99"], out["ack_ms_p99"] = nil, nil, nil
	}

	// cross-check with Janus's own counters: stop sending, let what is in
	// flight arrive, then compare totals with the Admin API's handle_info
	for _, v := range g.visits {
		for _, p := range v.Peers {
			p.stopOnce.Do(func() { close(p.stop) })
		}
	}
	time.Sleep(700 * time.Millisecond)
	if c.AdminURL != "" && c.AdminSecret != "" {
		tot := g.snap()
		var jin, jout uint64
		var profiles = map[string]int{}
		hc := &http.Client{Timeout: 10 * time.Second}
		for _, v := range g.visits {
			for i, h := range v.Handles {
				info := AdminHandleInfo(hc, c.AdminURL, c.AdminSecret, v.Sessions[i].ID, h.ID)
				in, o, prof := mediaPackets(info)
				jin += in
				jout += o
				profiles[prof]++
			}
		}
		out["crosscheck"] = map[string]any{"gen_sent_total": tot.sent, "janus_in_packets": jin,
			"gen_received_total": tot.recv, "janus_out_packets": jout, "srtp_profiles": profiles}
	}
	return out, nil
}

// mediaPackets: handle_info's webrtc.media.<mindex>.stats.{in,out}.packets
// summed over audio and video, and the DTLS-SRTP profile.
func mediaPackets(info map[string]any) (in, out uint64, profile string) {
	web, _ := info["webrtc"].(map[string]any)
	media, _ := web["media"].(map[string]any)
	for _, mv := range media {
		m, _ := mv.(map[string]any)
		if m["type"] != "audio" && m["type"] != "video" {
			continue
		}
		st, _ := m["stats"].(map[string]any)
		for k, dst := range map[string]*uint64{"in": &in, "out": &out} {
			d, _ := st[k].(map[string]any)
			if n, ok := d["packets"].(float64); ok {
				*dst += uint64(n)
			}
		}
	}
	if dtlsInfo, ok := web["dtls"].(map[string]any); ok {
		profile, _ = dtlsInfo["srtp-profile"].(string)
	}
	return
}
