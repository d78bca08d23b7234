package partition

import (
	"fmt"
	"strings"
	"testing"
)

// fakeTB records Skip and Fatal instead of stopping the test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Skip(args ...any)  { f.skipped, f.msg = true, fmt.Sprint(args...) }
func (f *fakeTB) Fatal(args ...any) { f.failed, f.msg = true, fmt.Sprint(args...) }

func TestRequireSoftHSMWithout(t *testing.T) {
	saved := testHSMErr
	t.Cleanup(func() { testHSMErr = saved })
	testHSMErr = fmt.Errorf("find softhsm module: none found: %w", ErrSoftHSMNotFound)

	t.Setenv("HSMLAB_REQUIRE_SOFTHSM", "")
	f := &fakeTB{}
	if got := RequireSoftHSM(f); got != nil || !f.skipped || f.failed {
		t.Fatalf("without HSMLAB_REQUIRE_SOFTHSM: returned %v, skipped %v, failed %v", got, f.skipped, f.failed)
	}
	if !strings.Contains(f.msg, "scripts/install-softhsm.sh") || !strings.Contains(f.msg, "none found") {
		t.Fatalf("skip message %q does not say why and how to install", f.msg)
	}

	t.Setenv("HSMLAB_REQUIRE_SOFTHSM", "1")
	f = &fakeTB{}
	if RequireSoftHSM(f); !f.failed || f.skipped {
		t.Fatalf("with HSMLAB_REQUIRE_SOFTHSM=1: skipped %v, failed %v", f.skipped, f.failed)
	}
}
