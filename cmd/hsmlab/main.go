// Command hsmlab is the chaos and disaster-recovery lab for an Azure Key
// Vault Managed HSM holding customer-managed keys for SQL Managed Instance,
// VM disks (through Disk Encryption Sets) and Azure Storage.
//
// The binary only parses flags, wires packages together and prints.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit statuses shared by every command.
const (
	exitOK       = 0
	exitFail     = 1 // the check found a problem (lint errors, failed scenario)
	exitBadInput = 2 // the input could not be used (bad flags, bad YAML)
)

// exitError carries an exit status through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func badInput(err error) error { return &exitError{code: exitBadInput, err: err} }

// failed reports a completed check whose outcome is negative; the output has
// already said why, so the message is short.
func failed(msg string) error { return &exitError{code: exitFail, err: errors.New(msg)} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the CLI with args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.code != exitFail {
			fmt.Fprintln(stderr, "hsmlab:", ee.err)
		}
		return ee.code
	}
	// Errors cobra produces itself (unknown flag, missing argument) are bad input.
	fmt.Fprintln(stderr, "hsmlab:", err)
	return exitBadInput
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "hsmlab",
		Short: "Chaos and DR lab for Azure Managed HSM with customer-managed keys",
		Long: `hsmlab models an Azure Key Vault Managed HSM (primary South India, extended
Central India) holding the customer-managed keys of SQL Managed Instance (TDE),
VM disks (through Disk Encryption Sets) and Azure Storage. It checks a
topology for DR mistakes (lint), prices it (cost), and — as its capabilities
land — runs fault scenarios against emulated or real components.

Without a topology file every command uses the embedded default topology
(topology/contoso.yaml), which mirrors Contoso's design.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newRunCmd(), newSuiteCmd(), newScenariosCmd(), newFaultsCmd(), newLintCmd(), newCostCmd(), newTopologyCmd(), newServeCmd(), newCompareCmd())
	return root
}
