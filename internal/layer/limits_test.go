package layer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/scanner"
)

// limitCase is a layer read with limits, and the error the limits must
// give (none when msg is empty).
type limitCase struct {
	name string
	blob []byte
	opts Options
	msg  []string // empty: no error
}

// limitCases are TestLimits' layers.
func limitCases(t *testing.T) []limitCase {
	big := strings.Repeat("x", 10<<10)
	var replaced []entry
	for range 20 {
		replaced = append(replaced, entry{name: "var/lib/dpkg/status", body: big})
	}
	var many []entry
	for i := range 11 {
		many = append(many, entry{name: fmt.Sprintf("node_modules/p%d/package.json", i), body: "{}"})
	}
	zeros := makeTar(t, entry{name: "opt/zeros", body: strings.Repeat("\x00", 1<<20)})
	small := makeTar(t, entry{name: "etc/os-release", body: "ID=x\n"})
	return []limitCase{
		{
			name: "one path replaced again and again, spooled each time",
			blob: gzipBytes(t, makeTar(t, replaced...)),
			opts: Options{MaxInMemory: 1 << 10, MaxSpool: 50 << 10},
			msg:  []string{"bad layer: tar entry 6 (\"var/lib/dpkg/status\")", "more than the limit of 51200 bytes spooled to disk (--layer-max-spool)"},
		},
		{
			name: "spool under the limit",
			blob: gzipBytes(t, makeTar(t, replaced[:4]...)),
			opts: Options{MaxInMemory: 1 << 10, MaxSpool: 50 << 10},
		},
		{
			name: "gzip decompressing past the limit",
			blob: gzipBytes(t, zeros),
			opts: Options{MaxUncompressed: 64 << 10},
			msg:  []string{"bad layer: gzip: more than the limit of 65536 decompressed bytes (--layer-max-uncompressed)"},
		},
		{
			name: "zstd decompressing past the limit",
			blob: zstdBytes(t, zeros),
			opts: Options{MaxUncompressed: 64 << 10},
			msg:  []string{"bad layer: zstd: more than the limit of 65536 decompressed bytes"},
		},
		{
			name: "uncompressed tar past the limit",
			blob: zeros,
			opts: Options{MaxUncompressed: 64 << 10},
			msg:  []string{"bad layer: tar: more than the limit of 65536 decompressed bytes"},
		},
		{
			name: "gzip bomb after the end of the tar",
			blob: gzipBytes(t, append(append([]byte(nil), small...), make([]byte, 1<<20)...)),
			opts: Options{MaxUncompressed: 64 << 10},
			msg:  []string{"more than the limit of 65536 decompressed bytes"},
		},
		{
			name: "exactly the decompressed limit",
			blob: gzipBytes(t, small),
			opts: Options{MaxUncompressed: int64(len(small))},
		},
		{
			name: "more files for one scanner than the limit",
			blob: gzipBytes(t, makeTar(t, many...)),
			opts: Options{MaxFilesPerScanner: 10},
			msg:  []string{"tar entry 11", "more than the limit of 10 files for scanner all (--layer-max-packages)"},
		},
		{
			name: "as many files as the limit",
			blob: gzipBytes(t, makeTar(t, many[:10]...)),
			opts: Options{MaxFilesPerScanner: 10},
		},
	}
}

// TestLimits: a layer over a bound of Options fails with ErrLimit and
// ErrBadLayer, a message naming the limit, and no more spooled than allowed.
func TestLimits(t *testing.T) {
	tests := limitCases(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.opts.TempDir = dir
			budget := NewSpoolBudget(1 << 30)
			tt.opts.ProcessSpool = budget
			c, err := Read(context.Background(), bytes.NewReader(tt.blob), sha256Digest(tt.blob), []scanner.Scanner{everything()}, tt.opts)
			if len(tt.msg) == 0 {
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				c.Close()
			} else {
				if err == nil {
					c.Close()
					t.Fatal("Read succeeded")
				}
				if !errors.Is(err, ErrLimit) || !errors.Is(err, ErrBadLayer) {
					t.Errorf("error %v: want ErrLimit and ErrBadLayer", err)
				}
				for _, m := range tt.msg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q: want %q in it", err, m)
					}
				}
			}
			if max := tt.opts.MaxSpool; max > 0 && budget.Peak() > max {
				t.Errorf("spooled %d bytes at once, more than the limit of %d", budget.Peak(), max)
			}
			if budget.Used() != 0 {
				t.Errorf("%d bytes of the budget still used after Close", budget.Used())
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("spool files left: %v", left)
			}
		})
	}
}

// TestProcessSpoolBudget: reads that share a budget spool at most its size
// at once; one that does not fit fails with ErrSpoolBusy (transient, not a
// bad layer), and fits once the others' contents are closed.
func TestProcessSpoolBudget(t *testing.T) {
	blob := gzipBytes(t, makeTar(t, entry{name: "a", body: strings.Repeat("a", 80<<10)}))
	budget := NewSpoolBudget(100 << 10)
	opts := Options{MaxInMemory: 1 << 10, TempDir: t.TempDir(), ProcessSpool: budget}
	ss := []scanner.Scanner{everything()}
	first, err := Read(context.Background(), bytes.NewReader(blob), sha256Digest(blob), ss, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := budget.Used(); got != 80<<10 {
		t.Fatalf("budget used %d, want %d", got, 80<<10)
	}
	_, err = Read(context.Background(), bytes.NewReader(blob), sha256Digest(blob), ss, opts)
	if !errors.Is(err, ErrSpoolBusy) || errors.Is(err, ErrBadLayer) {
		t.Fatalf("second read while the first holds the budget: %v, want ErrSpoolBusy and not ErrBadLayer", err)
	}
	if !strings.Contains(err.Error(), "in use by the layers read at once (--process-max-spool)") {
		t.Errorf("error %q does not say why", err)
	}
	if got := budget.Used(); got != 80<<10 {
		t.Fatalf("budget used %d after the failed read, want %d", got, 80<<10)
	}
	first.Close()
	second, err := Read(context.Background(), bytes.NewReader(blob), sha256Digest(blob), ss, opts)
	if err != nil {
		t.Fatalf("after the first was closed: %v", err)
	}
	second.Close()
	if budget.Used() != 0 || budget.Peak() > budget.Max() {
		t.Errorf("used %d, peak %d of %d", budget.Used(), budget.Peak(), budget.Max())
	}
}
