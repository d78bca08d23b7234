package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hsmlab/hsmlab/topology"
)

func newTopologyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topology",
		Short: "Work with topology files",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print the embedded default topology (a starting point for your own)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(topology.DefaultSource())
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "validate topology.yaml",
		Short: "Check a topology file for structural errors (with file:line:column)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			top, err := loadTopology(args)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (topology %q, digest %s)\n", args[0], top.Name, top.Digest()[:12])
			return nil
		},
	})
	return cmd
}
