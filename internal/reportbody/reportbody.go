// Package reportbody encodes a report as the API serves it: in Clair's shape
// on Clair's paths (/indexer/api/v1/...) and with Stevedore's fields on the
// native path (/api/v1/reports/{digest}), each with its entity tag. The store
// keeps these encodings of every terminal report (internal/postgres), gzip
// compressed (EncodeStored), written in the transaction that writes the
// report, so that the API streams them without decoding the report again;
// the API encodes with the same functions when a report has no stored
// encoding (not terminal yet, or stored before there were encodings).
package reportbody

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/stevedore-dev/stevedore/internal/iocount"
	"github.com/stevedore-dev/stevedore/report"
)

// The content codings of an encoded answer (HTTP's Content-Encoding).
const (
	// EncodingIdentity is the JSON as it is.
	EncodingIdentity = "identity"
	// EncodingGzip is the JSON gzip compressed (RFC 1952).
	EncodingGzip = "gzip"
)

// GzipLevel is the compression level of stored answers, chosen on real
// index reports (BenchmarkCompress) for the job path, where FinishManifest
// compresses each answer once: with its compressor reused (Compressor), an
// answer costs 1.04-1.4 times what klauspost/compress's stateless
// compression does (which keeps no state and allocates ~1 KB), and is 12-14 %
// smaller (a 27-212 KB Clair answer in 8.4-10.7 % of its size instead of
// 9.7-12.3 %). A compressor of this level allocates ~800 KB when made,
// which costs about as much as compressing a 30 KB answer: hence the reuse.
// Level 9 saves another 6-7 % for 3-4 times the time.
const GzipLevel = 5

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
	// ETag is the entity tag of the answer's JSON (its identity coding),
	// quoted: the same for every coding of the answer (see the API for the
	// tag each coding is served with).
	ETag string
	// Encoding is the content coding of Data: EncodingIdentity or
	// EncodingGzip.
	Encoding string
	// IdentitySize is the length of the JSON, len(Data) for
	// EncodingIdentity.
	IdentitySize int64
	Data         []byte
}

// Clair returns the answer of r on Clair's paths, exactly as the API writes
// it (JSON and a newline).
func Clair(r *report.Report, servePartial bool) ([]byte, error) {
	return encode(clairView(r, servePartial))
}

// Native returns the answer of r on the native path.
func Native(r *report.Report) ([]byte, error) { return encode(r) }

// Encode returns r in view, with its entity tag, as JSON (EncodingIdentity).
func Encode(r *report.Report, view string) (Body, error) {
	var b bytes.Buffer
	if err := encodeView(&b, r, view); err != nil {
		return Body{}, err
	}
	return Body{View: view, ETag: ETag(r, view), Encoding: EncodingIdentity, IdentitySize: int64(b.Len()), Data: b.Bytes()}, nil
}

// Compressor compresses answers as they are stored, at GzipLevel, reusing
// its compressors. Its zero value is ready to use; it is safe for
// concurrent use.
type Compressor struct {
	pool sync.Pool
}

// EncodeStored returns r in view as it is stored: its JSON gzip compressed
// (encoding/json hands the compressor the JSON in one write).
func (c *Compressor) EncodeStored(r *report.Report, view string) (Body, error) {
	data, n, err := c.compress(func(w io.Writer) error { return encodeView(w, r, view) })
	if err != nil {
		return Body{}, fmt.Errorf("compress the %s report of %s: %w", view, r.Hash, err)
	}
	return Body{View: view, ETag: ETag(r, view), Encoding: EncodingGzip, IdentitySize: n, Data: data}, nil
}

// Gzip returns b, an answer in EncodingIdentity, compressed as stored
// answers are.
func (c *Compressor) Gzip(b Body) (Body, error) {
	if b.Encoding != EncodingIdentity {
		return Body{}, fmt.Errorf("compress the %s answer: it is %s already", b.View, b.Encoding)
	}
	data, _, err := c.compress(func(w io.Writer) error {
		_, err := w.Write(b.Data)
		return err
	})
	if err != nil {
		return Body{}, fmt.Errorf("compress the %s answer: %w", b.View, err)
	}
	b.Encoding, b.Data = EncodingGzip, data
	return b, nil
}

// compress returns what write writes, gzip compressed, and its length
// before compression.
func (c *Compressor) compress(write func(io.Writer) error) ([]byte, int64, error) {
	zw, _ := c.pool.Get().(*gzip.Writer)
	if zw == nil {
		var err error
		if zw, err = gzip.NewWriterLevel(nil, GzipLevel); err != nil {
			return nil, 0, err
		}
	}
	var out bytes.Buffer
	zw.Reset(&out)
	cw := &iocount.Writer{W: zw}
	if err := write(cw); err != nil {
		return nil, 0, err
	}
	if err := zw.Close(); err != nil {
		return nil, 0, err
	}
	c.pool.Put(zw)
	return out.Bytes(), cw.N, nil
}

// DecodeNative reads back the report of a native answer, whose bytes src
// gives in encoding (EncodingGzip or EncodingIdentity): the store keeps a
// usable report's content in that answer only (internal/postgres). The
// answer is decoded as it is read (the decompressor and the report in
// memory, not the answer's JSON).
func DecodeNative(encoding string, src io.Reader) (*report.Report, error) {
	switch encoding {
	case EncodingIdentity:
	case EncodingGzip:
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, fmt.Errorf("decode the native answer: %w", err)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, fmt.Errorf("decode the native answer: unknown content coding %q", encoding)
	}
	r := new(report.Report)
	dec := json.NewDecoder(src)
	if err := dec.Decode(r); err != nil {
		return nil, fmt.Errorf("decode the native answer: %w", err)
	}
	// What the API writes: one JSON value and its newline (read to the
	// end, where gzip checks its trailer).
	switch _, err := dec.Token(); {
	case err == nil:
		return nil, errors.New("decode the native answer: data after the report")
	case err != io.EOF:
		return nil, fmt.Errorf("decode the native answer: %w", err)
	}
	return r, nil
}

// encodeView writes r in view to w, as the API writes it.
func encodeView(w io.Writer, r *report.Report, view string) error {
	var v any
	switch view {
	case ViewClair:
		v = clairView(r, false)
	case ViewClairPartial:
		v = clairView(r, true)
	case ViewNative:
		v = r
	default:
		return fmt.Errorf("encode the report of %s: unknown view %q", r.Hash, view)
	}
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return fmt.Errorf("encode the %s report of %s: %w", view, r.Hash, err)
	}
	return nil
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
