// Command tributary-bench measures Tributary on PostgreSQL and prints one
// table. First the whole path as users get it: `tributary serve` in its own
// process on a fresh schema, native Shopify webhooks (or sandbox API calls)
// from 64 concurrent senders over 64 connections, one subscription pointing
// at a receiver in another process; ingest/s, end-to-end deliveries/s,
// deliveries during ingest, inbound→delivered latency, lost and duplicates,
// and a steady-rate run. Then component diagnoses: the dispatcher alone on
// pre-queued deliveries (rsa, hmac, fan-out), publish→receiver latency,
// reconcile records/s, scheduler claims/s, API load and peak RSS. Figures sit
// beside this machine's ceilings from the same run (RSA-2048 signs/s on one
// core, net/http loopback requests/s). Run it with make bench.
//
// `tributary-bench receiver --out FILE` is the receiver process the
// whole-path scenarios start (this binary, re-executed).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/reconcile"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "receiver" {
		if err := runReceiver(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "tributary-bench:", err)
			os.Exit(1)
		}
		return
	}
	url := flag.String("database-url", os.Getenv("TRIBUTARY_BENCH_DATABASE_URL"), "PostgreSQL URL (a fresh schema is used)")
	events := flag.Int("events", 20000, "events per throughput scenario")
	only := flag.String("only", "", "comma-separated scenario prefixes to run")
	flag.IntVar(&reconcileRecords, "records", 1000000, "records of the large reconcile scenario")
	flag.DurationVar(&loadDuration, "load-duration", 30*time.Second, "API load test duration")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.IntVar(&whole.events, "whole-events", 20000, "changes sent per whole-path burst")
	flag.IntVar(&whole.senders, "senders", 64, "concurrent senders of the whole-path scenarios")
	flag.IntVar(&whole.connections, "connections", 64, "connections (shops, sandbox connections) of the whole-path scenarios")
	flag.DurationVar(&whole.drainCap, "drain-cap", 60*time.Second, "how long a whole-path scenario waits for deliveries after ingest ends")
	flag.IntVar(&steadyRate, "steady-rate", 1000, "events/s offered by the whole-path steady scenario")
	flag.IntVar(&steadySeconds, "steady-seconds", 20, "duration of the whole-path steady scenario")
	flag.BoolVar(&whole.keep, "keep", false, "keep the whole-path scratch directory (engine logs, receiver arrival files)")
	flag.StringVar(&whole.bin, "tributary-bin", "", "a built tributary binary (default: go build it once)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if *url == "" {
		fmt.Fprintln(os.Stderr, "tributary-bench: --database-url or TRIBUTARY_BENCH_DATABASE_URL is required (PostgreSQL)")
		os.Exit(2)
	}
	ctx := context.Background()
	if err := run(ctx, *url, *events, *only); err != nil {
		fmt.Fprintln(os.Stderr, "tributary-bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

var (
	loadDuration     time.Duration
	reconcileRecords int
	whole            wholeOptions
	steadyRate       int
	steadySeconds    int
)

// row is one line of the table; target says what is wanted and whether
// this run met it.
type row struct{ name, value, target, ceiling, note string }

func run(ctx context.Context, url string, events int, only string) error {
	want := func(name string) bool {
		if only == "" {
			return true
		}
		for _, p := range strings.Split(only, ",") {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	fmt.Fprintf(os.Stderr, "machine: %d CPUs (%s), %s/%s, %s; load average %s\n", runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, runtime.Version(), loadAvg())
	loadStart := loadAvg()

	signs := rsaSignsPerSecond(time.Second)
	loop, err := loopbackRequestsPerSecond(2*time.Second, 300)
	if err != nil {
		return err
	}
	tmpl, err := newOrderTemplate()
	if err != nil {
		return err
	}
	orderBytes := len(tmpl.render(1, 1, time.Now()))
	loopOrder, err := loopbackRequestsPerSecond(2*time.Second, orderBytes)
	if err != nil {
		return err
	}
	var rows []row
	rows = append(rows, row{name: "ceiling: RSA-2048 signs/s (1 core)", value: fmt.Sprintf("%.0f", signs)},
		row{name: "ceiling: net/http loopback req/s, 64 clients, 300 B body", value: fmt.Sprintf("%.0f", loop)},
		row{name: fmt.Sprintf("ceiling: net/http loopback req/s, 64 clients, %.1f kB order body", float64(orderBytes)/1000), value: fmt.Sprintf("%.0f", loopOrder)})
	ratio := func(v, c float64) string { return fmt.Sprintf("%.2f× of %.0f", v/c, c) }

	wholeRows, err := runWholeScenarios(ctx, url, want, loopOrder)
	if err != nil {
		return err
	}
	rows = append(rows, wholeRows...)

	needDB := false
	for _, p := range []string{"dispatcher only", "publish→receiver", "reconcile", "normalize", "scheduler", "api load"} {
		needDB = needDB || want(p)
	}
	if needDB {
		db, cleanup, err := freshSchema(ctx, url)
		if err != nil {
			return err
		}
		defer cleanup()
		for _, sc := range []struct {
			name   string
			scheme string
			subs   int
		}{{"dispatcher only: pre-queued deliveries/s rsa, 1 subscription", "rsa", 1},
			{"dispatcher only: pre-queued deliveries/s rsa, fan-out to 5", "rsa", 5},
			{"dispatcher only: pre-queued deliveries/s hmac, 1 subscription", "hmac", 1}} {
			if !want(sc.name) {
				continue
			}
			n := events
			if sc.subs > 1 {
				n = events / sc.subs * 2
			}
			r, err := throughput(ctx, db, sc.scheme, sc.subs, n)
			if err != nil {
				return err
			}
			c := ratio(r.perSec, loop)
			if sc.scheme == "rsa" {
				c = ratio(r.perSec, signs) + " signs/s"
			}
			rows = append(rows, row{name: sc.name, value: fmt.Sprintf("%.0f", r.perSec), ceiling: c,
				note: fmt.Sprintf("%d deliveries in %s", r.deliveries, r.elapsed.Round(time.Millisecond))})
			fmt.Fprintf(os.Stderr, "  %s: %.0f/s\n", sc.name, r.perSec)
		}
		for _, rate := range []int{100, 500, 1000} {
			if !want("publish→receiver") {
				continue
			}
			r, err := steady(ctx, db, "rsa", rate, 5*time.Second)
			if err != nil {
				return err
			}
			rows = append(rows, row{name: fmt.Sprintf("publish→receiver p50/p99 at steady %d/s (rsa, dispatcher only)", rate),
				value: fmt.Sprintf("%s / %s", r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond)),
				note:  fmt.Sprintf("%d events over %s", r.deliveries, r.elapsed)})
			fmt.Fprintf(os.Stderr, "  publish→receiver steady %d/s: p50 %s p99 %s\n", rate, r.p50, r.p99)
		}
		if want("reconcile") {
			for _, n := range []int{reconcileRecords / 10, reconcileRecords} {
				r, err := reconcile.Simulate(ctx, db, models.NewID(models.PrefixConnection), n, 0.01, 1000)
				if err != nil {
					return err
				}
				mib := func(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
				rows = append(rows,
					row{name: fmt.Sprintf("reconcile first sync, %d records", n), value: fmt.Sprintf("%.0f rec/s", r.FirstSync.RecordsPerSec),
						note: fmt.Sprintf("%s, %d created (silent), peak heap %s", r.FirstSync.Elapsed.Round(time.Millisecond), r.FirstSync.Created, mib(r.FirstSync.PeakHeapInuse))},
					row{name: fmt.Sprintf("reconcile re-poll 1%% changed, %d records", n), value: fmt.Sprintf("%.0f rec/s", r.Repoll.RecordsPerSec),
						note: fmt.Sprintf("%s, %d updated, peak heap %s", r.Repoll.Elapsed.Round(time.Millisecond), r.Repoll.Updated, mib(r.Repoll.PeakHeapInuse))})
				fmt.Fprintf(os.Stderr, "  reconcile %d: first %.0f/s, re-poll %.0f/s\n", n, r.FirstSync.RecordsPerSec, r.Repoll.RecordsPerSec)
			}
		}
		if want("normalize") {
			n := reconcileRecords / 5
			first, repoll, updated, err := normalizeReconcile(ctx, db, n)
			if err != nil {
				return err
			}
			rows = append(rows, row{name: fmt.Sprintf("poll runner: HubSpot normalize + reconcile, %d raw contacts", n),
				value: fmt.Sprintf("%.0f / %.0f rec/s", first, repoll), note: fmt.Sprintf("first sync / full re-scan with 1%% changed (%d updated events published)", updated)})
			fmt.Fprintf(os.Stderr, "  normalize+reconcile: %.0f / %.0f rec/s\n", first, repoll)
		}
		if want("scheduler") {
			r, err := schedulerClaims(ctx, db, 100000)
			if err != nil {
				return err
			}
			rows = append(rows, row{name: "scheduler claims/s, 100,000 due connections", value: fmt.Sprintf("%.0f", r.perSec),
				note: fmt.Sprintf("%d claimed, run (no-op) and rescheduled in %s", r.claimed, r.elapsed.Round(time.Millisecond))})
			fmt.Fprintf(os.Stderr, "  scheduler: %.0f claims/s\n", r.perSec)
		}
		if want("api load") {
			r, err := apiLoad(ctx, db, 50, loadDuration)
			if err != nil {
				return err
			}
			rows = append(rows, row{name: "api load: 50 clients, p50/p99", value: fmt.Sprintf("%s / %s", r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond)),
				ceiling: ratio(r.perSec, loop), note: fmt.Sprintf("%d requests in %s (%.0f/s), %d errors", r.requests, loadDuration, r.perSec, r.errors)})
			if r.errors > 0 {
				return fmt.Errorf("api load: %d errors", r.errors)
			}
		}
	}
	rows = append(rows, row{name: "peak RSS of the harness", value: fmt.Sprintf("%.0f MiB", peakRSSMiB()), note: "VmHWM of this process"},
		row{name: "machine load average (1/5/15 min) at start / end", value: loadStart + " / " + loadAvg(),
			note: fmt.Sprintf("%d CPUs, %s; a shared machine under load gives lower figures", runtime.NumCPU(), cpuModel())})

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tvalue\ttarget\tvs ceiling\tnote")
	fmt.Fprintln(tw, "--------\t-----\t------\t----------\t----")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.name, r.value, r.target, r.ceiling, r.note)
	}
	return tw.Flush()
}
