package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// parsedCache keeps the last parsed version of one data set, by digest, so
// that reports do not each parse it again. The zero value is ready to use.
type parsedCache[T any] struct {
	mu     sync.Mutex
	digest string
	parsed *T
}

// load returns data set name from st, parsed, or the gap that stops its use
// (as the one Gap an enricher returns):
// never loaded, last confirmed current longer than maxAge ago (0: no
// limit), or not parseable as a T. what names the data in the gap's reason
// ("repository-to-CPE mapping"). An error is a failure to read it.
func (c *parsedCache[T]) load(ctx context.Context, st *Store, name, what string, maxAge time.Duration) (*T, []Gap, error) {
	d, err := st.Get(ctx, name)
	if errors.Is(err, ErrNotLoaded) {
		return nil, []Gap{{Data: name, Reason: "the " + what + " is not loaded: configure its URL or import it (stevedore enrichment import " + name + " FILE)" + lastError(d)}}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if age := time.Since(d.LoadedAt); maxAge > 0 && age > maxAge {
		return nil, []Gap{{Data: name, Reason: fmt.Sprintf("the %s from %s was last confirmed %s ago, older than the allowed %s%s",
			what, d.Source, age.Round(time.Second), maxAge, lastError(d))}}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.digest != d.Digest || c.parsed == nil {
		var parsed T
		if err := json.Unmarshal(d.Raw, &parsed); err != nil {
			return nil, []Gap{{Data: name, Reason: "the loaded " + what + " is unusable: " + err.Error()}}, nil
		}
		c.digest, c.parsed = d.Digest, &parsed
	}
	return c.parsed, nil, nil
}

func lastError(d *Dataset) string {
	if d == nil || d.LastError == "" {
		return ""
	}
	return " (last update: " + d.LastError + ")"
}
