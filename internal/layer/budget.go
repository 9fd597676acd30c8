package layer

import "sync"

// SpoolBudget bounds what the spool files of every Read of a process hold
// at once (Options.ProcessSpool). It is safe for concurrent use; share one
// per process.
type SpoolBudget struct {
	max int64

	mu         sync.Mutex
	used, peak int64
}

// NewSpoolBudget returns a budget of max bytes.
func NewSpoolBudget(max int64) *SpoolBudget { return &SpoolBudget{max: max} }

// reserve takes n bytes of the budget, or reports false when they are not
// free.
func (b *SpoolBudget) reserve(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	return true
}

func (b *SpoolBudget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

// Max is the budget's size in bytes.
func (b *SpoolBudget) Max() int64 { return b.max }

// Used is the bytes spooled now.
func (b *SpoolBudget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Peak is the most bytes spooled at once since the budget was made.
func (b *SpoolBudget) Peak() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}
