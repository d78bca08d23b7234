package topology

import (
	"fmt"
	"math"
	"strings"
)

// CostLine is one line of a monthly bill.
type CostLine struct {
	// Item says what is billed ("Managed HSM pool southindia").
	Item string `json:"item"`
	// Quantity is how many Units are billed per month.
	Quantity float64 `json:"quantity"`
	// Unit is what one UnitUSD buys ("pool-hour", "key-month", "device-month").
	Unit string `json:"unit"`
	// UnitUSD is the price of one Unit.
	UnitUSD float64 `json:"unitUSD"`
	// MonthlyUSD is Quantity × UnitUSD, rounded to cents.
	MonthlyUSD float64 `json:"monthlyUSD"`
	// Source says where the price comes from and whether it is confirmed.
	Source string `json:"source"`
}

// CostReport is the monthly cost of a topology's Managed HSM and of the
// Dedicated HSM deployment it replaces (seed section 12).
type CostReport struct {
	// Lines are the Managed HSM bill: one line per pool, then keys, then
	// operations.
	Lines []CostLine `json:"lines"`
	// MonthlyUSD is the sum of Lines.
	MonthlyUSD float64 `json:"monthlyUSD"`
	// Dedicated is the comparison: an HA set of Dedicated HSM devices in
	// every region that has a Managed HSM pool, one line per region.
	Dedicated []CostLine `json:"dedicatedHSM"`
	// DedicatedMonthlyUSD is the sum of Dedicated.
	DedicatedMonthlyUSD float64 `json:"dedicatedMonthlyUSD"`
	// SavingsPercent is how much cheaper the Managed HSM is than the
	// Dedicated HSM comparison, in percent (negative if dearer; 0 when the
	// comparison costs nothing), rounded to 0.01.
	SavingsPercent float64 `json:"savingsPercent"`
	// Notes say which prices are UNCONFIRMED and what drives the bill.
	Notes []string `json:"notes"`
}

// Sources of the prices (facts §12).
const (
	costSourcePool      = "third-party design note, UNCONFIRMED (azure-facts.md §12); seed §12: ~$2,304/month per pool"
	costSourceKeys      = "third-party note \"$3–$15/month for 3 keys\", UNCONFIRMED (azure-facts.md §12)"
	costSourceOps       = "seed §12: keys + operations ~$15–20/month; UNCONFIRMED (azure-facts.md §12)"
	costSourceDedicated = "third-party note ~$6,984/month per HA pair, UNCONFIRMED (azure-facts.md §12); seed §12"
)

// Cost prices t with t.Pricing: every HSM pool for HoursPerMonth hours at
// PoolHourlyUSD (one line per pool region), every key at KeyMonthlyUSD and a
// flat OperationsMonthlyUSD; and, for comparison, DedicatedHSMDevicesPerRegion
// Dedicated HSM devices at DedicatedHSMDeviceMonthlyUSD in every region that
// has a pool. t should have been through ApplyDefaults (zero prices cost
// nothing). With the default topology and prices this reproduces the seed's
// section 12: $4,608 for two pools, $4,628 in all (the seed rounds to
// ~$4,620), $13,968 for four Dedicated HSM devices, a saving of about 67%.
// Cost does not modify t; amounts are rounded to cents.
func Cost(t *Topology) CostReport {
	var r CostReport
	if t == nil {
		return r
	}
	p := t.Pricing

	for _, pool := range t.HSM.Pools {
		r.Lines = append(r.Lines, costLine("Managed HSM pool "+pool.Region, p.HoursPerMonth, "pool-hour", p.PoolHourlyUSD, costSourcePool))
	}
	r.Lines = append(r.Lines,
		costLine("Managed HSM keys", float64(len(t.HSM.Keys)), "key-month", p.KeyMonthlyUSD, costSourceKeys),
		costLine("Managed HSM key operations", 1, "month", p.OperationsMonthlyUSD, costSourceOps),
	)
	r.MonthlyUSD = sumCostLines(r.Lines)

	for _, pool := range t.HSM.Pools {
		r.Dedicated = append(r.Dedicated, costLine("Dedicated HSM devices "+pool.Region, float64(p.DedicatedHSMDevicesPerRegion), "device-month", p.DedicatedHSMDeviceMonthlyUSD, costSourceDedicated))
	}
	r.DedicatedMonthlyUSD = sumCostLines(r.Dedicated)
	if r.DedicatedMonthlyUSD > 0 {
		r.SavingsPercent = roundTo(100*(1-r.MonthlyUSD/r.DedicatedMonthlyUSD), 100)
	}

	poolMonthly := roundCents(p.PoolHourlyUSD * p.HoursPerMonth)
	r.Notes = append(r.Notes,
		fmt.Sprintf("All prices are UNCONFIRMED third-party figures (azure-facts.md §12): pool %s/hour, key %s/month, operations %s/month, Dedicated HSM device %s/month. The official price page (https://azure.microsoft.com/pricing/details/key-vault/) was not read; override them under pricing:.",
			usd(p.PoolHourlyUSD), usd(p.KeyMonthlyUSD), usd(p.OperationsMonthlyUSD), usd(p.DedicatedHSMDeviceMonthlyUSD)),
		fmt.Sprintf("Each pool costs %s/month (%g hours at %s/hour). Multi-region replication consumes a second pool in the extended region and doubles the pool bill (x2, azure-facts.md §2 MRR); this topology has %d pool(s).",
			usd(poolMonthly), p.HoursPerMonth, usd(p.PoolHourlyUSD), len(t.HSM.Pools)),
		"Key rotation is free (azure-facts.md §7 ROT). A soft-deleted HSM is billed at the full hourly rate until it is purged (azure-facts.md §5, §12 SOFT); removing an extended region purges it at once and stops its billing (§2 MRR).",
		fmt.Sprintf("The Dedicated HSM comparison is region for region: %d device(s) (an HA set) in each of the %d pool region(s), as in seed §12.",
			p.DedicatedHSMDevicesPerRegion, len(t.HSM.Pools)),
	)
	if one := roundCents(float64(p.DedicatedHSMDevicesPerRegion) * p.DedicatedHSMDeviceMonthlyUSD); len(t.HSM.Pools) > 1 && one > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("The seed's closing summary says \"34%% less\": that compares this Managed HSM with a single-region Dedicated HSM set (%s/month), giving %.1f%% here; region for region the saving is %.1f%%.",
			usd(one), 100*(1-r.MonthlyUSD/one), r.SavingsPercent))
	}
	return r
}

func costLine(item string, qty float64, unit string, unitUSD float64, source string) CostLine {
	return CostLine{Item: item, Quantity: qty, Unit: unit, UnitUSD: unitUSD, MonthlyUSD: roundCents(qty * unitUSD), Source: source}
}

func sumCostLines(ls []CostLine) float64 {
	var s float64
	for _, l := range ls {
		s += l.MonthlyUSD
	}
	return roundCents(s)
}

func roundCents(x float64) float64 { return roundTo(x, 100) }

func roundTo(x, scale float64) float64 { return math.Round(x*scale) / scale }

// usd formats x as dollars with thousands separators: "$13,968.00".
func usd(x float64) string {
	sign := ""
	if x < 0 {
		sign, x = "-", -x
	}
	s := fmt.Sprintf("%.2f", x)
	intPart, frac := s[:len(s)-3], s[len(s)-3:]
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + "$" + b.String() + frac
}
