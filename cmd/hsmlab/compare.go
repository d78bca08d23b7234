package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/hsmlab/hsmlab/results"
)

func newCompareCmd() *cobra.Command {
	var onlyDiffs bool
	cmd := &cobra.Command{
		Use:   "compare <a/result.json> <b/result.json>",
		Short: "Two results of the same scenario side by side (for example sim and local), metric by metric",
		Long: `compare reads two result.json files of the same scenario — typically the same
scenario run in the sim and on real parts (--provider local) — and prints every
metric side by side with the difference (B − A): availability per phase,
downtime, RTO, time to detect, writes lost, RPO and errors per target; unwrap
latency p50/p95/p99/max per region and phase; each check's verdict and
measured values. Rows whose values differ are marked ≠.

Exit status: 0 when compared, 2 for unreadable files or results of different
scenarios.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rs [2]*results.Result
			for i, path := range args {
				fh, err := os.Open(path)
				if err != nil {
					return badInput(err)
				}
				rs[i], err = results.ReadJSON(fh)
				fh.Close()
				if err != nil {
					return badInput(fmt.Errorf("%s: %w", path, err))
				}
			}
			rows, err := results.Compare(rs[0], rs[1])
			if errors.Is(err, results.ErrDifferentScenarios) {
				return badInput(fmt.Errorf("cannot compare %s (%s) with %s (%s): %w", args[0], rs[0].Scenario.Name, args[1], rs[1].Scenario.Name, results.ErrDifferentScenarios))
			}
			if err != nil {
				return badInput(err)
			}
			results.WriteComparison(cmd.OutOrStdout(), rs[0], rs[1], rows, onlyDiffs)
			return nil
		},
	}
	cmd.Flags().BoolVar(&onlyDiffs, "only-diffs", false, "print only the metrics whose values differ")
	return cmd
}
