// Package intake decides whether a manifest needs indexing and queues the
// job: no job when a report made by the current scanner set exists; otherwise
// one job, published with dedup (see internal/queue).
package intake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/internal/redact"
	"github.com/stevedore-dev/stevedore/internal/registry"
	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/report"
)

// Store is what intake needs of storage; *postgres.Store implements it (its
// conformance suite, internal/postgres, holds these promises on a real
// database).
type Store interface {
	// Report returns the stored report of d, or an error wrapping
	// postgres.ErrNotFound.
	Report(ctx context.Context, d report.Digest) (*report.Report, error)
	// Enqueue locks d's report row (making a CheckManifest one when there
	// is none) and, unless current says the stored report needs no run,
	// calls publish under the lock; it records the request only when
	// publish queued a job.
	Enqueue(ctx context.Context, d report.Digest, scannerState string, current func(*report.Report) bool, publish postgres.Publish) (*report.Report, bool, error)
	// PartialsToRequeue returns up to limit partial reports to run
	// again now; MarkRequeued records that one's retry was published.
	PartialsToRequeue(ctx context.Context, limit int) ([]postgres.Requeue, error)
	MarkRequeued(ctx context.Context, d report.Digest) error
	// ReportsToReindex returns up to limit finished reports to index
	// again, after after in the sweep's order when it is not nil;
	// MarkReindexQueued records that their jobs were published, in one
	// write.
	ReportsToReindex(ctx context.Context, current string, requeueAfter time.Duration, after *postgres.Reindex, limit int) ([]postgres.Reindex, error)
	MarkReindexQueued(ctx context.Context, ds []report.Digest) error
}

// Publisher is what intake needs of the job queue (*queue.Publisher).
type Publisher interface {
	// Publish queues j unless a job for its manifest is pending.
	Publish(ctx context.Context, j *queue.Job) (queue.Outcome, error)
	// Schedule stores a run of j, number attempt, due at.
	Schedule(ctx context.Context, j *queue.Job, attempt int, at time.Time) error
}

// Resolver turns an image reference into its platform manifests
// (*resolve.Resolver).
type Resolver interface {
	Resolve(ctx context.Context, ref, platform string) ([]resolve.Image, error)
}

// Dispatcher queues index jobs.
type Dispatcher struct {
	store    Store
	pub      Publisher
	resolver Resolver
	state    string
	log      *slog.Logger
	allow    registry.Allowlist

	// sweep is where the re-index sweep's pass stopped (ReindexStale).
	sweep struct {
		sync.Mutex
		after *postgres.Reindex
	}
}

// New returns a Dispatcher for the scanner-set state (scanner.State of the
// enabled scanners; workers must run the same set).
func New(st Store, pub Publisher, res Resolver, scannerState string, log *slog.Logger, opts ...Option) *Dispatcher {
	if log == nil {
		log = slog.Default()
	}
	d := &Dispatcher{store: st, pub: pub, resolver: res, state: scannerState, log: log}
	for _, o := range opts {
		o(d)
	}
	return d
}

// State is the scanner-set state the dispatcher indexes for.
func (d *Dispatcher) State() string { return d.state }

// Current reports whether r needs no new index run: it is finished under the
// current scanner set, or it is partial with its retry still to come (a
// partial whose retry time is long past lost its schedule and is run again).
func (d *Dispatcher) Current(r *report.Report) bool {
	if r.ScannerState != d.state {
		return false
	}
	switch r.State {
	case report.StateIndexFinished:
		return true
	case report.StateIndexPartial:
		return r.NextRetry != nil && time.Since(*r.NextRetry) < overdue
	}
	return false
}

// overdue is how long after its retry time a partial report is taken to have
// lost its scheduled retry.
const overdue = 10 * time.Minute

// RequeueWaiting publishes, for up to limit partial reports that an operator
// asked to retry or whose enrichment data has since been loaded, a retry due
// now (replacing the one scheduled). It returns how many it requeued.
func (d *Dispatcher) RequeueWaiting(ctx context.Context, limit int) (int, error) {
	qs, err := d.store.PartialsToRequeue(ctx, limit)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, q := range qs {
		job, err := queue.Decode(q.Job)
		if err != nil {
			d.log.ErrorContext(ctx, "stored job of a partial report is unusable", "digest", q.Digest, "error", err)
			continue
		}
		if err := d.pub.Schedule(ctx, job, q.Attempt+1, time.Now()); err != nil {
			return n, err
		}
		if err := d.store.MarkRequeued(ctx, q.Digest); err != nil {
			return n, err
		}
		d.log.InfoContext(ctx, "partial report requeued", "digest", q.Digest, "attempt", q.Attempt+1)
		n++
	}
	return n, nil
}

// Index returns the report of m as it is now, and queues a job unless that
// report is current. queued says whether a job is (now) pending.
func (d *Dispatcher) Index(ctx context.Context, m *report.Manifest) (r *report.Report, queued bool, err error) {
	// Errors are answered and logged: they show none of the layers'
	// credentials (URI user information, header values).
	defer func() {
		if err != nil {
			var secrets []string
			for _, l := range m.Layers {
				if l != nil {
					secrets = append(secrets, redact.Secrets(l.URI, l.Headers)...)
				}
			}
			err = redact.Error(err, secrets...)
		}
	}()
	if err := m.Validate(); err != nil {
		return nil, false, err
	}
	if err := d.checkLayers(m); err != nil {
		return nil, false, err
	}
	r, err = d.store.Report(ctx, m.Hash)
	switch {
	case err == nil && d.Current(r):
		return r, false, nil
	case err != nil && !errors.Is(err, postgres.ErrNotFound):
		return nil, false, err
	}
	// Not current: decide again and publish under the report row's lock,
	// serialised with the worker's final write (see postgres.Enqueue).
	var (
		out       queue.Outcome
		published bool
	)
	r, queued, err = d.store.Enqueue(ctx, m.Hash, d.state, d.Current, func(ctx context.Context, stored *report.Report, fresh bool) (bool, error) {
		gen, err := generation()
		if err != nil {
			return false, err
		}
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		defer cancel()
		out, err = d.pub.Publish(pctx, &queue.Job{Manifest: m, ScannerState: d.state, RequestedAt: time.Now().UTC(), Generation: gen})
		if err != nil {
			return false, fmt.Errorf("%w: %w", ErrQueueUnavailable, err)
		}
		published = true
		// A job pending while the stored report is IndexError is the
		// one that wrote it, about to be terminated: nothing new was
		// queued, and the report stays as it is (asking again later
		// queues one). Otherwise a pending job will bring the report up
		// to date.
		return out != queue.AlreadyQueued || fresh || stored.State != report.StateIndexError, nil
	})
	if err != nil {
		return nil, false, err
	}
	if published {
		d.log.InfoContext(ctx, "index job", "digest", m.Hash, "outcome", out.String(), "queued", queued)
	}
	return r, queued, nil
}

// publishTimeout bounds a publish made under a report row's lock; it leaves
// room for the publisher's retries through a NATS leader election.
const publishTimeout = 15 * time.Second

// generation names one decision to queue a job (it goes into the job's
// Nats-Msg-Id): a publish retried after a lost answer is dropped as a
// duplicate, while every new decision, made under the report row's lock, is
// a new job unless one is pending.
func generation() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("job generation: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// ErrQueueUnavailable is wrapped by the error of a request whose job could
// not be published (NATS down, no stream leader): nothing was recorded, and
// asking again later may work. The HTTP API answers it with 503.
var ErrQueueUnavailable = errors.New("job queue unavailable")

// IndexReference resolves an image reference (one manifest per platform of an
// image index, or the one platform asked for) and indexes each manifest.
func (d *Dispatcher) IndexReference(ctx context.Context, ref, platform string) ([]report.Image, error) {
	if err := d.checkReference(ref); err != nil {
		return nil, err
	}
	imgs, err := d.resolver.Resolve(ctx, ref, platform)
	if err != nil {
		return nil, err
	}
	out := make([]report.Image, 0, len(imgs))
	for _, img := range imgs {
		r, queued, err := d.Index(ctx, img.Manifest)
		if err != nil {
			return nil, fmt.Errorf("index %s (%s): %w", ref, img.Platform, err)
		}
		out = append(out, report.Image{Digest: img.Manifest.Hash, Platform: img.Platform, State: r.State, Queued: queued})
	}
	return out, nil
}

// reindexAgain is how long a report queued for re-index is left before the
// sweep queues it again (its job may have been lost).
const reindexAgain = 10 * time.Minute

// ReindexStale publishes re-index jobs for up to limit finished reports made
// by an older scanner-set state, or that an operator asked to re-index, most
// recently requested first. Only what changed is redone: workers reuse stored
// layer results of unchanged scanners. It returns how many it queued.
//
// A call goes on from the last report the previous one marked (a pass of
// the sweep), so that no round reads past the reports queued before it; a
// round that finds fewer than limit ends the pass, and the next starts from
// the most recently requested again (where reports that became stale during
// the pass, above where it was, are found; those an operator asks for are
// found by the next round wherever they are).
func (d *Dispatcher) ReindexStale(ctx context.Context, limit int) (int, error) {
	d.sweep.Lock()
	defer d.sweep.Unlock()
	rs, err := d.store.ReportsToReindex(ctx, d.state, reindexAgain, d.sweep.after, limit)
	if err != nil {
		return 0, err
	}
	n, err := d.reindex(ctx, rs)
	switch {
	case len(rs) < limit:
		d.sweep.after = nil
	case n.marked > 0 && before(d.sweep.after, &rs[n.marked-1]):
		d.sweep.after = &rs[n.marked-1]
	}
	return n.queued, err
}

// before reports whether a comes before b in the sweep's order (most
// recently requested first, then by digest, descending); nil is the top.
// A batch may hold reports asked for above where the pass is: the pass does
// not go back up to them.
func before(a, b *postgres.Reindex) bool {
	if a == nil || !a.RequestedAt.Equal(b.RequestedAt) {
		return a == nil || a.RequestedAt.After(b.RequestedAt)
	}
	return a.Digest > b.Digest
}

// reindexed counts a batch's reports: queued, and marked (the first marked
// of the batch: those queued and those with an unusable job).
type reindexed struct{ queued, marked int }

// reindex publishes the jobs of rs and marks them queued (see ReindexStale).
func (d *Dispatcher) reindex(ctx context.Context, rs []postgres.Reindex) (reindexed, error) {
	// Reports are marked at the end, in one write: those published, and
	// those whose stored job is unusable (so that the sweep does not find
	// them again at once). A publish that fails marks what went before.
	marked := make([]report.Digest, 0, len(rs))
	n := 0
	for _, r := range rs {
		job, err := queue.Decode(r.Job)
		if err != nil {
			d.log.ErrorContext(ctx, "stored job is unusable for re-index", "digest", r.Digest, "error", err)
			marked = append(marked, r.Digest)
			continue
		}
		job.ScannerState, job.RequestedAt, job.Force = d.state, time.Now().UTC(), r.Forced
		job.Generation = "reindex-" + job.RequestedAt.Format(time.RFC3339Nano)
		out, err := d.pub.Publish(ctx, job)
		if err != nil {
			if merr := d.store.MarkReindexQueued(ctx, marked); merr != nil {
				return reindexed{n, 0}, errors.Join(err, merr)
			}
			return reindexed{n, len(marked)}, err
		}
		marked = append(marked, r.Digest)
		d.log.InfoContext(ctx, "re-index queued", "digest", r.Digest, "outcome", out.String(), "forced", r.Forced)
		n++
	}
	if err := d.store.MarkReindexQueued(ctx, marked); err != nil {
		return reindexed{n, 0}, err
	}
	return reindexed{n, len(marked)}, nil
}

// Lookup returns, without queueing anything, the stored reports of ref's
// manifests (one per platform of an image index, or the one platform asked
// for) when every one is current (see Current); ok is false when one is not
// stored or not current. The reference and the manifests' layers are
// checked against the allowlist as IndexReference checks them.
func (d *Dispatcher) Lookup(ctx context.Context, ref, platform string) (imgs []report.Image, reports []*report.Report, ok bool, err error) {
	if err := d.checkReference(ref); err != nil {
		return nil, nil, false, err
	}
	resolved, err := d.resolver.Resolve(ctx, ref, platform)
	if err != nil {
		return nil, nil, false, err
	}
	for _, img := range resolved {
		m := img.Manifest
		if err := m.Validate(); err != nil {
			return nil, nil, false, err
		}
		if err := d.checkLayers(m); err != nil {
			return nil, nil, false, err
		}
		r, err := d.store.Report(ctx, m.Hash)
		if errors.Is(err, postgres.ErrNotFound) {
			return nil, nil, false, nil
		}
		if err != nil {
			return nil, nil, false, err
		}
		if !d.Current(r) {
			return nil, nil, false, nil
		}
		imgs = append(imgs, report.Image{Digest: m.Hash, Platform: img.Platform, State: r.State})
		reports = append(reports, r)
	}
	return imgs, reports, true, nil
}
