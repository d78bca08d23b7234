package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/results"
	"github.com/hsmlab/hsmlab/scenarios"
	"github.com/hsmlab/hsmlab/topology"
	"github.com/hsmlab/hsmlab/topology/local"
	"github.com/hsmlab/hsmlab/topology/sim"
)

type runFlags struct {
	seed     uint64
	out      string
	junit    string
	provider string
	quiet    bool
	// Wall-clock providers (local).
	timescale   float64
	sqlDSN      string
	requireReal bool
	stderr      io.Writer
}

func (f *runFlags) register(cmd *cobra.Command) {
	cmd.Flags().Uint64Var(&f.seed, "seed", 0, "random seed (default: the scenario's, else 1)")
	cmd.Flags().StringVar(&f.out, "out", "out", "directory for result.json, history.jsonl and the run's data")
	cmd.Flags().StringVar(&f.junit, "junit", "", "also write JUnit XML to this file")
	cmd.Flags().StringVar(&f.provider, "provider", "sim", "where to run: sim (in-process, virtual time) or local (real parts on loopback: SoftHSM, azkeys, Azurite, toxiproxy; wall clock)")
	cmd.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "print only the verdict line")
	cmd.Flags().Float64Var(&f.timescale, "timescale", local.DefaultTimeScale, "wall-clock providers: modelled seconds per wall second (60 turns SQL's 10 minutes into 10 s); recorded in the result")
	cmd.Flags().StringVar(&f.sqlDSN, "sqlserver-dsn", "", "local provider: run SQL's data path on SQL Server (go-mssqldb connection string; default $"+local.SQLServerEnv+", else embedded)")
	cmd.Flags().BoolVar(&f.requireReal, "require-real", false, "local provider: fail instead of falling back to pure-Go partitions (no SoftHSM) or the embedded storage path (no Azurite)")
}

func (f *runFlags) providerValue(cmd *cobra.Command) (topology.Provider, error) {
	f.stderr = cmd.ErrOrStderr()
	if f.provider != "sim" && f.provider != "local" {
		return nil, badInput(fmt.Errorf("--provider %q: available providers: sim, local", f.provider))
	}
	if f.provider == "sim" && (cmd.Flags().Changed("timescale") || f.sqlDSN != "" || f.requireReal) {
		return nil, badInput(fmt.Errorf("--timescale, --sqlserver-dsn and --require-real apply to wall-clock providers (--provider local); the sim runs on virtual time"))
	}
	if f.timescale < 1 {
		return nil, badInput(fmt.Errorf("--timescale %g: must be at least 1", f.timescale))
	}
	if f.provider == "local" {
		return &local.Provider{SQLServerDSN: f.sqlDSN, InstallAzurite: true, RequireSoftHSM: f.requireReal, RequireAzurite: f.requireReal, Log: f.stderr}, nil
	}
	return sim.Provider{}, nil
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run <scenario name | scenario.yaml>",
		Short: "Run one DR scenario and check its expectations",
		Long: `run brings the scenario's topology up (by default in the simulator, under
virtual time: hours of modelled time in well under a second), probes every
workload and the HSM before, during and after the scenario's faults, and
checks the scenario's expectations against what it measured.

It writes result.json (the full record: seed, scenario, topology digest,
fault and state timeline, metrics, checks, verdict) and history.jsonl (every
probe operation) under --out/<scenario>/. The same seed gives a
byte-identical result.json.

Exit status: 0 pass, 1 fail or inconclusive, 2 bad input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prov, err := f.providerValue(cmd)
			if err != nil {
				return err
			}
			sc, err := scenarios.Load(args[0])
			if err != nil {
				return badInput(err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := runOne(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), sc, prov, f)
			if err != nil {
				return err
			}
			if f.junit != "" {
				if err := writeJUnitFile(f.junit, sc.Name, []*results.Result{res}); err != nil {
					return err
				}
			}
			if res.Verdict != lab.Pass {
				return failed("scenario " + string(res.Verdict))
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

// runOne runs a scenario and writes its artifacts; errors that stop the run
// are bad input (exit 2).
func runOne(ctx context.Context, stdout, stderr io.Writer, sc *lab.Scenario, prov topology.Provider, f runFlags) (*results.Result, error) {
	dir := filepath.Join(f.out, sc.Name)
	// Each run starts from empty data: a previous run's encrypted data
	// belongs to a previous HSM.
	if err := os.RemoveAll(filepath.Join(dir, "data")); err != nil {
		return nil, badInput(fmt.Errorf("--out: %w", err))
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, badInput(fmt.Errorf("--out: %w", err))
	}
	wall := time.Now()
	opts := lab.Options{Provider: prov, Seed: f.seed, DataDir: filepath.Join(dir, "data")}
	if prov.Name() != "sim" {
		// Real parts run on the wall clock, compressed by the time scale.
		opts.Clock = clock.NewScaled(f.timescale)
		if !f.quiet && f.stderr != nil {
			bar := newProgress(f.stderr, sc)
			defer bar.finish()
			opts.Progress = bar.update
		}
	}
	run, err := lab.Execute(ctx, sc, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil, badInput(fmt.Errorf("%s: interrupted; the environment was shut down: %w", sc.Name, err))
		}
		return nil, badInput(err)
	}
	elapsed := time.Since(wall)
	res := results.FromRun(run)
	if err := writeFile(filepath.Join(dir, "result.json"), res.WriteJSON); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, "history.jsonl"), run.History.Save); err != nil {
		return nil, err
	}
	if f.quiet {
		fmt.Fprintf(stdout, "%-40s %-12s %v modelled in %v\n", sc.Name, strings.ToUpper(string(res.Verdict)), sc.Duration.D(), elapsed.Round(time.Millisecond))
	} else {
		res.WriteSummary(stdout)
		fmt.Fprintf(stdout, "%v modelled in %v wall; result: %s\n", sc.Duration.D(), elapsed.Round(time.Millisecond), filepath.Join(dir, "result.json"))
	}
	return res, nil
}

func writeFile(path string, write func(io.Writer) error) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(fh); err != nil {
		fh.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return fh.Close()
}

func writeJUnitFile(path, name string, rs []*results.Result) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return writeFile(path, func(w io.Writer) error { return results.WriteJUnit(w, name, rs) })
}

func newSuiteCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "suite",
		Short: "Run every built-in scenario; one summary table; JUnit for all",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			prov, err := f.providerValue(cmd)
			if err != nil {
				return err
			}
			all, err := scenarios.All()
			if err != nil {
				return badInput(err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			q := f
			q.quiet = true
			var rs []*results.Result
			var rows [][]string
			start := time.Now()
			worst := lab.Pass
			for _, sc := range all {
				res, err := runOne(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), sc, prov, q)
				if err != nil {
					return err
				}
				rs = append(rs, res)
				passed := 0
				for _, c := range res.Checks {
					if c.Verdict == lab.Pass {
						passed++
					}
				}
				rows = append(rows, []string{sc.Name, strings.ToUpper(string(res.Verdict)), fmt.Sprintf("%d/%d", passed, len(res.Checks)), sc.Question})
				if res.Verdict != lab.Pass {
					worst = lab.Fail
				}
			}
			fmt.Fprintln(cmd.OutOrStdout())
			results.Table(cmd.OutOrStdout(), []string{"Scenario", "Verdict", "Checks", "Question"}, rows, 70)
			fmt.Fprintf(cmd.OutOrStdout(), "%d scenarios in %v\n", len(rs), time.Since(start).Round(time.Millisecond))
			if f.junit != "" {
				if err := writeJUnitFile(f.junit, "hsmlab suite", rs); err != nil {
					return err
				}
			}
			if worst != lab.Pass {
				return failed("suite failed")
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newScenariosCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "scenarios",
		Short: "List the built-in scenarios and the questions they answer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := scenarios.All()
			if err != nil {
				return err
			}
			var rows [][]string
			for _, s := range all {
				rows = append(rows, []string{s.Name, s.Duration.String(), s.Question})
			}
			results.Table(cmd.OutOrStdout(), []string{"Scenario", "Modelled", "Question"}, rows, 80)
			return nil
		},
	}
}

func newFaultsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "faults",
		Short: "The fault and action catalogue with every parameter",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			for _, kind := range []lab.Kind{lab.KindFault, lab.KindAction} {
				for _, ti := range lab.Types(kind) {
					fmt.Fprintf(w, "%s (%s)\n  %s\n  facts: %s\n", ti.Type, ti.Kind, ti.Summary, ti.Facts)
					if kind == lab.KindFault {
						if ir, ok := ti.New().(lab.Irreversible); ok && ir.Irreversible() {
							fmt.Fprintln(w, "  irreversible: no hold; never reverted")
						}
					}
					var rows [][]string
					for _, p := range ti.Params() {
						req := ""
						if p.Required {
							req = "required"
						}
						rows = append(rows, []string{p.Name, p.Type, req, p.Default, p.Doc})
					}
					if len(rows) > 0 {
						results.Table(w, []string{"Parameter", "Type", "", "Default", "Meaning"}, rows, 60)
					}
					fmt.Fprintln(w)
				}
			}
			fmt.Fprintln(w, "Timeline entries: {type: <fault|action>, name: <optional>, at: <offset>, hold: <fault duration; omitted = until the end>, <parameters>}")
			return nil
		},
	}
}
