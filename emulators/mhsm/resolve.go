package mhsm

// Resolve returns the pool region that DNS (Traffic Manager) currently
// resolves the HSM to for a client in region client: the nearest pool that
// clients see as healthy — a health change becomes visible one DNS TTL after
// it happened, so a pool that just went down is still returned during the
// TTL. It reports false when every pool looks down. Providers whose clients
// dial each region's endpoint over a real network use it to pick the path;
// the request then goes to that region's endpoint, whose own routing serves
// it.
func (h *HSM) Resolve(client string) (string, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	now := h.clk.Now()
	for _, name := range h.nearness(client) {
		if h.replicas[name].visible(now, h.cfg.DNSTTL) {
			return name, true
		}
	}
	return "", false
}
