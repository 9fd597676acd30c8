package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/dustin/go-humanize"
	"golang.org/x/term"

	"github.com/stevedore-dev/stevedore/internal/indexer"
	"github.com/stevedore-dev/stevedore/report"
)

// Progress counts the layers the in-process workers fetch and scan and the
// bytes they read, and draws them as one status line on a terminal (layers,
// bytes, elapsed time), redrawn in place. On anything but a terminal it
// draws nothing. Its methods are safe for concurrent use; a nil *Progress
// does nothing.
type Progress struct {
	w     io.Writer
	fd    int
	on    bool
	start time.Time

	// size sums the known sizes of the layers opened.
	fetching, scanned, bytes, size atomic.Int64

	mu    sync.Mutex
	label string
	shown bool // a status line is on the screen
	local bool // layer counts are known (in-process pipeline)
	frame int
}

// NewProgress returns a Progress drawing on f when f is a terminal.
func NewProgress(f *os.File) *Progress {
	fd := int(f.Fd())
	return newProgress(f, fd, term.IsTerminal(fd))
}

func newProgress(w io.Writer, fd int, on bool) *Progress {
	return &Progress{w: w, fd: fd, on: on, start: time.Now()}
}

// Enabled says whether p draws anything.
func (p *Progress) Enabled() bool { return p != nil && p.on }

// Wrap returns f counting through p: a layer is fetching from Open until
// its reader is closed (the layer is read and scanned in one streaming
// pass), then scanned; bytes are the compressed bytes read.
func (p *Progress) Wrap(f indexer.Fetcher) indexer.Fetcher {
	if p == nil {
		return f
	}
	p.mu.Lock()
	p.local = true
	p.mu.Unlock()
	return &countingFetcher{f: f, p: p}
}

// SetLabel names what is being scanned (an image reference).
func (p *Progress) SetLabel(s string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.label = s
	p.mu.Unlock()
}

// Line is the status line at elapsed time d.
func (p *Progress) Line(d time.Duration) string {
	p.mu.Lock()
	label, local := p.label, p.local
	p.frame++
	frame := p.frame
	p.mu.Unlock()
	spin := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}[frame%10]
	parts := []string{spin + " scanning " + label}
	if local {
		bytes := humanize.IBytes(uint64(p.bytes.Load()))
		if size := p.size.Load(); size > 0 {
			bytes += " / " + humanize.IBytes(uint64(size))
		}
		parts = append(parts, fmt.Sprintf("layers: %d scanned, %d fetching", p.scanned.Load(), p.fetching.Load()), bytes)
	} else {
		parts = append(parts, "waiting for the server")
	}
	parts = append(parts, d.Truncate(time.Second).String())
	return strings.Join(parts, " · ")
}

// Run draws the status line every interval until ctx ends, then clears
// it.
func (p *Progress) Run(ctx context.Context, every time.Duration) {
	if !p.Enabled() {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p.draw()
		select {
		case <-ctx.Done():
			// The final counts, then a clean line for what follows.
			p.draw()
			p.clear()
			return
		case <-t.C:
		}
	}
}

func (p *Progress) draw() {
	line := p.Line(time.Since(p.start))
	if w, _, err := term.GetSize(p.fd); err == nil && w > 1 && utf8.RuneCountInString(line) >= w {
		line = string([]rune(line)[:w-1])
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r"+line+"\x1b[K")
	p.shown = true
}

func (p *Progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

// LogWriter returns a writer for log lines to w that first clears the
// status line, so that they do not mix (it is drawn again at the next
// tick).
func (p *Progress) LogWriter(w io.Writer) io.Writer {
	if !p.Enabled() {
		return w
	}
	return writerFunc(func(b []byte) (int, error) {
		p.clear()
		return w.Write(b)
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

type countingFetcher struct {
	f indexer.Fetcher
	p *Progress
}

func (c *countingFetcher) Open(ctx context.Context, l *report.Layer) (io.ReadCloser, error) {
	rc, err := c.f.Open(ctx, l)
	if err != nil {
		return nil, err
	}
	c.p.fetching.Add(1)
	if l.Size > 0 {
		c.p.size.Add(l.Size)
	}
	return &countingReader{ReadCloser: rc, p: c.p}, nil
}

// countingReader counts bytes and passes on the wrapped reader's
// VerifiedDigest, which the layer reader relies on.
type countingReader struct {
	io.ReadCloser
	p    *Progress
	done atomic.Bool
}

func (r *countingReader) Read(b []byte) (int, error) {
	n, err := r.ReadCloser.Read(b)
	r.p.bytes.Add(int64(n))
	return n, err
}

func (r *countingReader) Close() error {
	if r.done.CompareAndSwap(false, true) {
		r.p.fetching.Add(-1)
		r.p.scanned.Add(1)
	}
	return r.ReadCloser.Close()
}

// VerifiedDigest passes on the wrapped reader's.
func (r *countingReader) VerifiedDigest() report.Digest {
	if v, ok := r.ReadCloser.(interface{ VerifiedDigest() report.Digest }); ok {
		return v.VerifiedDigest()
	}
	return ""
}
