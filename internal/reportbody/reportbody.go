// Package reportbody encodes a report as the API serves it: in Clair's shape
// on Clair's paths (/indexer/api/v1/...) and with Stevedore's fields on the
// native path (/api/v1/reports/{digest}), each with its entity tag. The store
// keeps these encodings of every terminal report (internal/postgres), written in the
// transaction that writes the report, so that the API streams them without
// decoding the report again; the API encodes with the same functions when a
// report has no stored encoding (not terminal yet, or stored before there
// were encodings).
package reportbody

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stevedore-dev/stevedore/report"
)

// The views a report is encoded in.
const (
	// ViewClair is Clair's shape with an IndexPartial report served as
	// IndexFinished (the default).
	ViewClair = "clair"
	// ViewClairPartial is Clair's shape with an IndexPartial report served
	// as IndexPartial (--clair-serve-partial). It differs from ViewClair
	// for IndexPartial reports only, and is stored for those only.
	ViewClairPartial = "clair-partial"
	// ViewNative is the report with Stevedore's fields.
	ViewNative = "native"
)

// ClairViews returns the views that may answer a GET on Clair's paths, the
// one preferred first: with servePartial, an IndexPartial report has a
// ViewClairPartial encoding, and every other report is served as ViewClair
// (the two are the same for it).
func ClairViews(servePartial bool) []string {
	if servePartial {
		return []string{ViewClairPartial, ViewClair}
	}
	return []string{ViewClair}
}

// ClairViewOf returns the view a report is served in on Clair's paths.
func ClairViewOf(r *report.Report, servePartial bool) string {
	if servePartial && r.State == report.StateIndexPartial {
		return ViewClairPartial
	}
	return ViewClair
}

// Body is one encoded answer of a report.
type Body struct {
	View string
	// ETag is the answer's entity tag, quoted.
	ETag string
	Data []byte
}

// Clair returns the answer of r on Clair's paths, exactly as the API writes
// it (JSON and a newline).
func Clair(r *report.Report, servePartial bool) ([]byte, error) {
	return encode(clairView(r, servePartial))
}

// Native returns the answer of r on the native path.
func Native(r *report.Report) ([]byte, error) { return encode(r) }

// Encode returns r in view, with its entity tag.
func Encode(r *report.Report, view string) (Body, error) {
	var (
		data []byte
		err  error
	)
	switch view {
	case ViewClair:
		data, err = Clair(r, false)
	case ViewClairPartial:
		data, err = Clair(r, true)
	case ViewNative:
		data, err = Native(r)
	default:
		return Body{}, fmt.Errorf("encode the report of %s: unknown view %q", r.Hash, view)
	}
	if err != nil {
		return Body{}, fmt.Errorf("encode the %s report of %s: %w", view, r.Hash, err)
	}
	return Body{View: view, ETag: ETag(r, view), Data: data}, nil
}

// Stored returns the views stored for r: ViewNative and ViewClair, and
// ViewClairPartial for an IndexPartial report.
func Stored(r *report.Report) []string {
	if r.State == report.StateIndexPartial {
		return []string{ViewNative, ViewClair, ViewClairPartial}
	}
	return []string{ViewNative, ViewClair}
}

// ETag is the entity tag of a report served in a view: it changes whenever
// the stored report is written again (a retried partial report replaced by
// the complete report, a re-index), and between views.
func ETag(r *report.Report, view string) string {
	h := sha256.New()
	fmt.Fprintf(h, "v1\x00%s\x00%s\x00%s\x00%s\x00%s\x00%d\x00%d", view, r.Hash, r.UpdatedAt.UTC().Format(time.RFC3339Nano),
		r.State, r.ScannerState, r.Attempt, len(r.Packages))
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}

// encode is the API's JSON encoding: json.Encoder's, with its newline.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
