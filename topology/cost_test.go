package topology_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/hsmlab/hsmlab/topology"
)

func costNear(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestCostSeedSection12 checks that the default topology and prices
// reproduce the seed's section 12.
func TestCostSeedSection12(t *testing.T) {
	r := topology.Cost(topology.Default())

	var pools float64
	poolLines := 0
	for _, l := range r.Lines {
		if strings.HasPrefix(l.Item, "Managed HSM pool ") {
			poolLines++
			pools += l.MonthlyUSD
			if l.MonthlyUSD != 2304 {
				t.Errorf("%s: $%.2f/month, want the seed's ~$2,304", l.Item, l.MonthlyUSD)
			}
		}
		if l.MonthlyUSD != math.Round(l.Quantity*l.UnitUSD*100)/100 {
			t.Errorf("%s: %g × %g ≠ %g", l.Item, l.Quantity, l.UnitUSD, l.MonthlyUSD)
		}
		if l.Source == "" || l.Unit == "" {
			t.Errorf("%s: needs a unit and a source", l.Item)
		}
	}
	if poolLines != 2 || pools != 4608 {
		t.Errorf("pools: %d lines, $%.2f; want 2 lines, $4,608 (seed: ~$2,304 × 2)", poolLines, pools)
	}
	if r.MonthlyUSD < 4620 || r.MonthlyUSD > 4628 {
		t.Errorf("total $%.2f/month; the seed says ~$4,620 (pools $4,608 + keys and operations ~$15–20)", r.MonthlyUSD)
	}
	if len(r.Dedicated) != 2 || r.DedicatedMonthlyUSD != 13968 {
		t.Errorf("Dedicated HSM: %d lines, $%.2f; want 2 regions × 2 devices = $13,968", len(r.Dedicated), r.DedicatedMonthlyUSD)
	}
	var devices float64
	for _, l := range r.Dedicated {
		devices += l.Quantity
	}
	if devices != 4 {
		t.Errorf("Dedicated HSM devices = %g, want 4 (seed §12)", devices)
	}
	if !costNear(r.SavingsPercent, 67, 0.5) {
		t.Errorf("savings %.2f%%, want ~67%% (seed §12)", r.SavingsPercent)
	}
	if want := math.Round(100*(1-r.MonthlyUSD/r.DedicatedMonthlyUSD)*100) / 100; r.SavingsPercent != want {
		t.Errorf("savings %.2f%% is not 1 − total/dedicated = %.2f%%", r.SavingsPercent, want)
	}

	notes := strings.Join(r.Notes, "\n")
	for _, want := range []string{"UNCONFIRMED", "third-party", "§12", "doubles", "MRR"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes do not mention %q:\n%s", want, notes)
		}
	}
	t.Logf("%+v", r)
}

// TestCostPriceParameters checks that every price parameter moves the bill.
func TestCostPriceParameters(t *testing.T) {
	base := topology.Cost(topology.Default())
	for _, tc := range []struct {
		name      string
		set       func(*topology.Pricing)
		total     float64 // want MonthlyUSD
		dedicated float64 // want DedicatedMonthlyUSD
	}{
		{"pool hourly price", func(p *topology.Pricing) { p.PoolHourlyUSD = 4 }, 2*4*720 + 20, 13968},
		{"hours per month", func(p *topology.Pricing) { p.HoursPerMonth = 730 }, 2*3.2*730 + 20, 13968},
		{"key price", func(p *topology.Pricing) { p.KeyMonthlyUSD = 1 }, 4608 + 3 + 5, 13968},
		{"operations price", func(p *topology.Pricing) { p.OperationsMonthlyUSD = 12 }, 4608 + 15 + 12, 13968},
		{"dedicated device price", func(p *topology.Pricing) { p.DedicatedHSMDeviceMonthlyUSD = 5000 }, 4628, 20000},
		{"dedicated devices per region", func(p *topology.Pricing) { p.DedicatedHSMDevicesPerRegion = 3 }, 4628, 6 * 3492},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := topology.Default().Clone()
			tc.set(&c.Pricing)
			r := topology.Cost(c)
			if !costNear(r.MonthlyUSD, tc.total, 0.005) || !costNear(r.DedicatedMonthlyUSD, tc.dedicated, 0.005) {
				t.Errorf("total $%.2f, dedicated $%.2f; want $%.2f, $%.2f", r.MonthlyUSD, r.DedicatedMonthlyUSD, tc.total, tc.dedicated)
			}
			if r.MonthlyUSD == base.MonthlyUSD && r.DedicatedMonthlyUSD == base.DedicatedMonthlyUSD {
				t.Error("changing the price changed nothing")
			}
			if r.SavingsPercent == base.SavingsPercent {
				t.Error("savings did not move")
			}
		})
	}
}

// TestCostSinglePool checks that dropping the extended region halves the pool bill.
func TestCostSinglePool(t *testing.T) {
	c := topology.Default().Clone()
	c.HSM.Pools = c.HSM.Pools[:1]
	r := topology.Cost(c)
	if r.MonthlyUSD != 2304+20 || r.DedicatedMonthlyUSD != 6984 {
		t.Errorf("one pool: total $%.2f, dedicated $%.2f; want $2,324 and $6,984", r.MonthlyUSD, r.DedicatedMonthlyUSD)
	}
	for _, n := range r.Notes {
		if strings.Contains(n, "34%") {
			t.Errorf("the two-region vs one-region note makes no sense with one pool: %s", n)
		}
	}
}

func TestCostSeedSummaryNote(t *testing.T) {
	r := topology.Cost(topology.Default())
	for _, n := range r.Notes {
		if strings.Contains(n, "34%") {
			if !strings.Contains(n, "33.7%") || !strings.Contains(n, "$6,984.00") {
				t.Errorf("note should compute the seed's 34%% from a one-region Dedicated set: %s", n)
			}
			return
		}
	}
	t.Errorf("no note explains the seed's \"34%% less\": %q", r.Notes)
}

func TestCostDegenerate(t *testing.T) {
	if r := topology.Cost(nil); r.MonthlyUSD != 0 || len(r.Lines) != 0 {
		t.Errorf("Cost(nil) = %+v", r)
	}
	c := topology.Default().Clone()
	c.Pricing.DedicatedHSMDeviceMonthlyUSD = 0
	r := topology.Cost(c)
	if r.SavingsPercent != 0 || math.IsNaN(r.SavingsPercent) || math.IsInf(r.SavingsPercent, 0) {
		t.Errorf("savings with a free Dedicated HSM = %v, want 0", r.SavingsPercent)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Errorf("report does not marshal: %v", err)
	}
}

func TestCostDoesNotModifyTopology(t *testing.T) {
	c := topology.Default()
	before := c.Digest()
	topology.Cost(c)
	if c.Digest() != before {
		t.Error("Cost modified the topology")
	}
}

func TestCostJSON(t *testing.T) {
	b, err := json.Marshal(topology.Cost(topology.Default()))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"lines", "monthlyUSD", "dedicatedHSM", "dedicatedMonthlyUSD", "savingsPercent", "notes"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, b)
		}
	}
	line := m["lines"].([]any)[0].(map[string]any)
	for _, k := range []string{"item", "quantity", "unit", "unitUSD", "monthlyUSD", "source"} {
		if _, ok := line[k]; !ok {
			t.Errorf("cost line JSON has no %q: %v", k, line)
		}
	}
}
