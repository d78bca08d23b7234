package partition

import (
	"errors"
	"os"
	"testing"
)

// RequireSoftHSM returns the process's SoftHSM set up by TestMain, or skips
// the test saying why — unless HSMLAB_REQUIRE_SOFTHSM=1, when it fails it.
func RequireSoftHSM(tb testing.TB) *SoftHSM {
	tb.Helper()
	if testHSMErr == nil {
		return testHSM
	}
	msg := "SoftHSM2 unavailable: " + testHSMErr.Error()
	if !errors.Is(testHSMErr, ErrSoftHSMNotFound) {
		msg += " (scripts/install-softhsm.sh installs SoftHSM2)"
	}
	if os.Getenv("HSMLAB_REQUIRE_SOFTHSM") == "1" {
		tb.Fatal(msg + "; HSMLAB_REQUIRE_SOFTHSM=1 makes this fatal")
		return nil
	}
	tb.Skip(msg)
	return nil
}
