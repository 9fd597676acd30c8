package enrich

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Source is where the updater fetches one kind of data.
type Source struct {
	Name string
	URL  string
}

// Updater keeps enrichment data current from its sources: every Interval it
// asks each source with a conditional request (If-None-Match,
// If-Modified-Since) and loads what changed. It runs on one replica at a
// time: the leader of the background work (internal/maintenance).
type Updater struct {
	Store   *Store
	Sources []Source
	// Interval is how often the sources are asked (required by Run;
	// internal/app has the default).
	Interval time.Duration
	Client   *http.Client
	Logger   *slog.Logger
	// OnLoad, if set, is called after new data is loaded or confirmed.
	OnLoad func(ctx context.Context, name string)
}

// Run updates every source at once and then every Interval until ctx ends.
func (u *Updater) Run(ctx context.Context) error {
	if u.Interval <= 0 {
		return fmt.Errorf("enrichment updater: interval %s: want above zero", u.Interval)
	}
	t := time.NewTicker(u.Interval)
	defer t.Stop()
	for {
		for _, src := range u.Sources {
			if err := u.Update(ctx, src); err != nil && ctx.Err() == nil {
				u.Logger.WarnContext(ctx, "enrichment update failed", "data", src.Name, "source", src.URL, "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Update asks src once and loads what it answers, if anything changed.
func (u *Updater) Update(ctx context.Context, src Source) error {
	client := u.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Minute}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return fmt.Errorf("update %s: %w", src.Name, err)
	}
	if meta, err := u.Store.Meta(ctx, src.Name); err == nil && meta.Source == src.URL {
		if meta.ETag != "" {
			req.Header.Set("If-None-Match", meta.ETag)
		}
		if meta.LastModified != "" {
			req.Header.Set("If-Modified-Since", meta.LastModified)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		err = fmt.Errorf("update %s from %s: %w", src.Name, src.URL, err)
		u.Store.RecordError(ctx, src.Name, err)
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		if err := u.Store.Confirm(ctx, src.Name); err != nil {
			return err
		}
		u.Logger.InfoContext(ctx, "enrichment data is current", "data", src.Name, "source", src.URL)
	case http.StatusOK:
		raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxDataSize+1))
		if err != nil {
			err = fmt.Errorf("update %s from %s: read: %w", src.Name, src.URL, err)
			u.Store.RecordError(ctx, src.Name, err)
			return err
		}
		d, err := u.Store.Load(ctx, src.Name, src.URL, resp.Header.Get("ETag"), resp.Header.Get("Last-Modified"), raw)
		if err != nil {
			return err
		}
		u.Logger.InfoContext(ctx, "enrichment data loaded", "data", src.Name, "source", src.URL, "entries", d.Entries, "digest", d.Digest)
	default:
		err := fmt.Errorf("update %s from %s: HTTP %s", src.Name, src.URL, resp.Status)
		u.Store.RecordError(ctx, src.Name, err)
		return err
	}
	if u.OnLoad != nil {
		u.OnLoad(ctx, src.Name)
	}
	return nil
}
