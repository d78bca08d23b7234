package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/hsmlab/hsmlab/topology"
)

func newCostCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "cost [topology.yaml]",
		Short: "Monthly cost of the topology's Managed HSM, compared with Dedicated HSM",
		Long: `cost prices the topology: HSM pools (one per region) at the hourly pool price,
keys, and key operations, with the prices from the topology's pricing block
(defaults: the seed's section 12; several are third-party figures marked
UNCONFIRMED in the facts). It compares the result with Dedicated HSM devices
(an HA pair per region).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			top, err := loadTopology(args)
			if err != nil {
				return err
			}
			rep := topology.Cost(top)
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			printCost(cmd.OutOrStdout(), topologyName(args), rep)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

func printCost(w io.Writer, name string, rep topology.CostReport) {
	fmt.Fprintf(w, "Managed HSM — %s\n", name)
	renderTable(w, []string{"Item", "Qty", "Unit", "Unit USD", "USD/month", "Source"}, costRows(rep.Lines), 50)
	fmt.Fprintf(w, "Total: $%.2f/month\n\nDedicated HSM comparison\n", rep.MonthlyUSD)
	renderTable(w, []string{"Item", "Qty", "Unit", "Unit USD", "USD/month", "Source"}, costRows(rep.Dedicated), 50)
	fmt.Fprintf(w, "Total: $%.2f/month — Managed HSM saves %.0f%%\n", rep.DedicatedMonthlyUSD, rep.SavingsPercent)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func costRows(lines []topology.CostLine) [][]string {
	rows := make([][]string, 0, len(lines))
	for _, l := range lines {
		rows = append(rows, []string{l.Item, fmt.Sprintf("%g", l.Quantity), l.Unit,
			fmt.Sprintf("%.2f", l.UnitUSD), fmt.Sprintf("%.2f", l.MonthlyUSD), l.Source})
	}
	return rows
}
