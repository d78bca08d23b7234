package partition

import (
	"fmt"
	"os"
	"testing"
)

// The SoftHSM configuration is per process (read in C_Initialize), so the
// test binary sets one up once, in a temporary directory removed at exit.
var (
	testHSM    *SoftHSM
	testHSMErr error
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hsmlab-partition-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "partition tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	testHSM, testHSMErr = NewSoftHSM(dir)
	if testHSMErr == nil {
		// A token made by softhsm2-util before the module is initialised,
		// so the tests cover that path too.
		testHSMErr = testHSM.InitToken(PreMadeToken, "5678", PreMadeTokenPin)
	}
	return m.Run()
}

// PreMadeToken is the label of the token TestMain creates with
// softhsm2-util, with user PIN PreMadeTokenPin.
const (
	PreMadeToken    = "premade"
	PreMadeTokenPin = "1234"
)
