package lab

// Outcomer is implemented by faults and actions whose Inject or Do can end
// in more than one expected way — a purge attempt refused under purge
// protection, or carried out without it. Outcome is asked right after Inject
// or Do and returns a short word for what happened ("refused", "purged"),
// or "" when there is nothing to add. The run records it in the history
// event (Event.Outcome, and appended to its Detail) and expectations read
// it with outcome(step). A refusal that is the expected result is an
// outcome, not an error: Inject returns nil for it, so succeeded(step)
// stays true and the run notes no failure.
type Outcomer interface{ Outcome() string }

func outcomeOf(v any) string {
	if o, ok := v.(Outcomer); ok {
		return o.Outcome()
	}
	return ""
}
