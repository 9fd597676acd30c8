package clairreal_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v3/jwt"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/jackc/pgx/v5"
	"github.com/quay/clair/v4/httptransport/client"
	notifierpkg "github.com/quay/clair/v4/notifier"
	"github.com/quay/claircore"
)

// root is the repository's root.
const root = "../.."

// defaultDatabaseURL is internal/testing/pgtest's, used when DATABASE_URL is not set.
const defaultDatabaseURL = "postgres://127.0.0.1:5432/test?sslmode=disable"

// TestQuayOperatorWithRealClients plays what a Quay operator does with
// Stevedore as the Clair endpoint, with Clair's own programs, unmodified:
// the clair binary (v4.9.0) as the matcher, its vulnerability database
// seeded offline with clairctl import-updaters, and clairctl report against
// Stevedore alone. clairctl posts the manifest to Stevedore's indexer API
// (blocking, 201) and asks Stevedore for the vulnerability report; Stevedore
// passes it to the matcher, which reads the index report back from Stevedore
// with its own token (clair-intraservice) and matches it. Then Clair's Go
// client, as the notifier uses it, asks Stevedore which manifests the
// advisories affect, and Clair's notifier runs: a new advisory, Stevedore's
// affected manifests, Quay's webhook, the notification read through
// Stevedore.
func TestQuayOperatorWithRealClients(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	op := newQuayOperator(ctx, t)
	op.startStevedore(ctx, t)
	op.startMatcher(ctx, t)
	vr := op.clairctlReports(ctx, t)
	op.checkAffectedManifests(ctx, t, vr)
	op.runNotifier(ctx, t)
}

// quayOperator is the set-up of TestQuayOperatorWithRealClients: the
// programs, the key, the databases and addresses, and the recording proxy
// in front of Stevedore.
type quayOperator struct {
	bin, work   string
	raw         []byte // the pre-shared key
	psk         string // its base64, as Quay's SECURITY_SCANNER_V4_PSK
	env         []string
	rec         *recorder
	ref, digest string
	// Databases and addresses.
	stevedoreDB, clairDB, notifierDB                     string
	stevedoreAddr, matcherAddr, introspectionAddr        string
	notifierAddr, notifierIntrospectionAddr, clairConfig string
	stevedore, matcher                                   *process
}

// newQuayOperator builds the programs, makes the key, the databases and the
// environment, and pushes the image.
func newQuayOperator(ctx context.Context, t *testing.T) *quayOperator {
	op := &quayOperator{bin: t.TempDir(), work: t.TempDir()}
	// The programs: Clair's from this module's graph (go.mod's tool
	// directives pin them with the rest of Clair), Stevedore's from the
	// repository.
	build(ctx, t, ".", op.bin, "github.com/quay/clair/v4/cmd/clair", "github.com/quay/clair/v4/cmd/clairctl")
	build(ctx, t, root, op.bin, "./cmd/stevedore")

	// A pre-shared key as Quay's SECURITY_SCANNER_V4_PSK: base64 of 32
	// random bytes, for Stevedore, the matcher and clairctl.
	op.raw = make([]byte, 32)
	rand.Read(op.raw)
	op.psk = base64.StdEncoding.EncodeToString(op.raw)

	op.stevedoreDB = createDatabase(ctx, t, "stevedore")
	op.clairDB = createDatabase(ctx, t, "clair")
	op.notifierDB = createDatabase(ctx, t, "notifier")
	op.stevedoreAddr, op.matcherAddr, op.introspectionAddr = freeAddr(t), freeAddr(t), freeAddr(t)
	op.notifierAddr, op.notifierIntrospectionAddr = freeAddr(t), freeAddr(t)
	// Clair's clients reach Stevedore through a recording proxy, to check
	// the exchanges: clairctl's and the matcher's.
	op.rec = newRecorder(t, "http://"+op.stevedoreAddr)
	// No credentials from the machine's Docker configuration, for either
	// Stevedore or clairctl.
	dockerConfig := filepath.Join(op.work, "docker")
	if err := os.Mkdir(dockerConfig, 0o700); err != nil {
		t.Fatal(err)
	}
	// The environment, without settings meant for another Stevedore (an
	// external NATS server, a key) or Clair.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STEVEDORE_") && !strings.HasPrefix(kv, "NATS_URL=") && !strings.HasPrefix(kv, "CLAIR_") && !strings.HasPrefix(kv, "DOCKER_CONFIG=") {
			op.env = append(op.env, kv)
		}
	}
	op.env = append(op.env, "DOCKER_CONFIG="+dockerConfig)

	op.ref, op.digest = pushImage(ctx, t)
	return op
}

// startStevedore runs Stevedore as an operator runs it: one process,
// embedded NATS, the key in the environment, /matcher/ passed to Clair's
// matcher.
func (op *quayOperator) startStevedore(ctx context.Context, t *testing.T) {
	op.stevedore = start(t, "stevedore", slices.Concat(op.env, []string{"STEVEDORE_AUTH_PSK=" + op.psk}),
		filepath.Join(op.bin, "stevedore"), "serve",
		"--addr="+op.stevedoreAddr, "--database-url="+op.stevedoreDB,
		"--nats-store-dir="+filepath.Join(op.work, "nats"), "--blob-cache-dir="+filepath.Join(op.work, "blobs"),
		"--clair-matcher-url=http://"+op.matcherAddr, "--clair-notifier-url=http://"+op.notifierAddr)
	waitReady(ctx, t, "stevedore", "http://"+op.stevedoreAddr+"/healthz", op.stevedore)
}

// startMatcher runs Clair's matcher with deploy/clair/matcher.yaml's
// settings and this test's addresses, its own database, updaters off, and
// imports the advisories with clairctl as an operator without internet
// access does (export-updaters on a connected machine, import-updaters
// here). Debian's come in two update operations, the second adding glibc's
// bookworm advisory, for the notifier.
func (op *quayOperator) startMatcher(ctx context.Context, t *testing.T) {
	op.clairConfig = op.writeClairConfig(t, "clair.yaml", op.matcherAddr, op.introspectionAddr, fmt.Sprintf(`matcher:
  connstring: %q
  indexer_addr: %q
  migrations: true
  disable_updaters: true
`, op.clairDB, op.rec.URL+"/"))
	op.matcher = start(t, "clair matcher", op.env, filepath.Join(op.bin, "clair"), "-conf", op.clairConfig, "-mode", "matcher")
	waitReady(ctx, t, "clair matcher", "http://"+op.introspectionAddr+"/readyz", op.stevedore, op.matcher)
	run(ctx, t, op.env, filepath.Join(op.bin, "clairctl"), "--config", op.clairConfig, "import-updaters", filepath.Join("testdata", "updates.jsonl"))
}

// clairctlReports runs clairctl report against Stevedore as its only
// endpoint, signing as Quay does (HS256, the pre-shared key, iss quay),
// twice: the manifest is new to Stevedore (GET index_report 404), then
// known (200). Each time clairctl sends the manifest (POST, answered 201
// once the report is done) and asks for the vulnerability report, which the
// matcher makes from the index report it reads from Stevedore.
func (op *quayOperator) clairctlReports(ctx context.Context, t *testing.T) *claircore.VulnerabilityReport {
	reportPath := "/indexer/api/v1/index_report/" + op.digest
	var vr *claircore.VulnerabilityReport
	for _, pass := range []struct {
		name      string
		getStatus int
	}{{"new manifest", http.StatusNotFound}, {"known manifest", http.StatusOK}} {
		op.rec.take()
		out := run(ctx, t, op.env, filepath.Join(op.bin, "clairctl"), "--config", op.clairConfig, "--issuer", "quay",
			"report", "--host", op.rec.URL, "--out", "json", op.ref)
		vr = checkReport(t, pass.name, out, op.digest)
		// clairctl asks for the index report, makes the manifest, asks
		// again, then sends it.
		want := []exchange{
			{"quay", http.MethodGet, reportPath, pass.getStatus},
			{"quay", http.MethodGet, reportPath, pass.getStatus},
			{"quay", http.MethodPost, "/indexer/api/v1/index_report", http.StatusCreated},
			{"clair-intraservice", http.MethodGet, reportPath, http.StatusOK},
			{"quay", http.MethodGet, "/matcher/api/v1/vulnerability_report/" + op.digest, http.StatusOK},
		}
		if got := op.rec.take(); !slices.Equal(got, want) {
			t.Errorf("%s: exchanges with Stevedore:\n got %v\nwant %v", pass.name, got, want)
		}
	}
	return vr
}

// checkAffectedManifests asks Stevedore, as Clair's notifier does with
// Clair's Go client (signing as Clair's services sign between themselves),
// which manifests the advisories affect: those the matcher reported and two
// that do not apply.
func (op *quayOperator) checkAffectedManifests(ctx context.Context, t *testing.T, vr *claircore.VulnerabilityReport) {
	c, err := client.NewHTTP(ctx, client.WithAddr(op.rec.URL+"/"),
		client.WithSigner(signer{key: op.raw, issuer: "clair-intraservice"}))
	if err != nil {
		t.Fatal(err)
	}
	var vulns []claircore.Vulnerability
	for _, v := range vr.Vulnerabilities {
		vulns = append(vulns, *v)
	}
	others := unaffecting(t)
	vulns = append(vulns, others...)
	am, err := c.AffectedManifests(ctx, vulns)
	if err != nil {
		t.Fatalf("affected manifests: %v", err)
	}
	want := []exchange{{"clair-intraservice", http.MethodPost, "/indexer/api/v1/internal/affected_manifest/", http.StatusOK}}
	if got := op.rec.take(); !slices.Equal(got, want) {
		t.Errorf("affected manifests: exchanges with Stevedore:\n got %v\nwant %v", got, want)
	}
	// Claircore's answer: manifest -> the ids of the vulnerabilities that
	// affect it.
	wantIDs := slices.Sorted(maps.Keys(vr.Vulnerabilities))
	for m, ids := range am.VulnerableManifests {
		if m != op.digest {
			t.Errorf("affected manifests: %s (%v) is not the test's manifest %s", m, ids, op.digest)
			continue
		}
		ids = slices.Sorted(slices.Values(ids))
		if !slices.Equal(ids, wantIDs) {
			t.Errorf("affected manifests: %s affected by %v, want %v (the report's; not %s, %s)", m, ids, wantIDs, others[0].ID, others[1].ID)
		}
	}
	if _, ok := am.VulnerableManifests[op.digest]; !ok {
		t.Errorf("affected manifests: %s is not named (answer: %v)", op.digest, am.VulnerableManifests)
	}
	if t.Failed() {
		b, _ := json.Marshal(vulns)
		t.Logf("asked: %s", b)
		b, _ = json.Marshal(am)
		t.Logf("answered: %s", b)
	}
}

// runNotifier runs Clair's notifier as compose's clair profile runs it: it
// finds the advisory Debian's second update added, asks Stevedore which
// manifests it affects, and calls Quay's webhook; Quay then reads the
// notification through Stevedore's /notifier/ and deletes it. Clair polls
// and delivers at most once a minute: this takes two.
func (op *quayOperator) runNotifier(ctx context.Context, t *testing.T) {
	hooks := make(chan []byte, 10)
	quay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad webhook", http.StatusBadRequest)
			return
		}
		select {
		case hooks <- b:
		default:
		}
	}))
	t.Cleanup(quay.Close)
	notifierConfig := op.writeClairConfig(t, "notifier.yaml", op.notifierAddr, op.notifierIntrospectionAddr, fmt.Sprintf(`notifier:
  connstring: %q
  indexer_addr: %q
  matcher_addr: %q
  migrations: true
  poll_interval: 1m
  delivery_interval: 1m
  webhook:
    target: %q
    callback: %q
`, op.notifierDB, op.rec.URL+"/", "http://"+op.matcherAddr+"/",
		quay.URL+"/secscan/notification", op.rec.URL+"/notifier/api/v1/notification/"))
	op.rec.take()
	notifier := start(t, "clair notifier", op.env, filepath.Join(op.bin, "clair"), "-conf", notifierConfig, "-mode", "notifier")
	waitReady(ctx, t, "clair notifier", "http://"+op.notifierIntrospectionAddr+"/readyz", op.stevedore, op.matcher, notifier)
	// One notification per update operation that affects the manifest
	// (Clair's summary mode: the most severe advisory per manifest):
	// Debian's second operation added glibc's bookworm advisory; the PyPI
	// operation, the updater's first, is diffed against nothing, and of its
	// two advisories only Flask's CVE-2023-30861 affects the image.
	wantNotes := []string{
		op.digest + " added CVE-2023-4911 (bookworm)",
		op.digest + " added CVE-2023-30861 ()",
	}
	gotNotes, callbacks := op.readNotifications(ctx, t, hooks, notifier, len(wantNotes))
	slices.Sort(gotNotes)
	slices.Sort(wantNotes)
	if !slices.Equal(gotNotes, wantNotes) {
		t.Errorf("notifications:\n got %q\nwant %q", gotNotes, wantNotes)
	}
	got := op.rec.take()
	wantEx := []exchange{{"clair-intraservice", http.MethodPost, "/indexer/api/v1/internal/affected_manifest/", http.StatusOK}}
	for _, cb := range callbacks {
		wantEx = append(wantEx, exchange{"quay", http.MethodGet, cb, http.StatusOK}, exchange{"quay", http.MethodDelete, cb, http.StatusOK})
	}
	for _, want := range wantEx {
		if !slices.Contains(got, want) {
			t.Errorf("notifications: no exchange %v among %v", want, got)
		}
	}
}

// readNotifications waits for n webhooks from Clair's notifier and, as Quay
// does for each, reads the notification page the callback names through
// Stevedore and deletes it. It returns the notifications as "manifest
// reason vulnerability (codename)" and the callbacks' paths.
func (op *quayOperator) readNotifications(ctx context.Context, t *testing.T, hooks <-chan []byte, notifier *process, n int) (notes, callbacks []string) {
	for range n {
		var hook []byte
		select {
		case hook = <-hooks:
		case <-notifier.exited:
			t.Fatalf("clair notifier exited: %v", notifier.err)
		case <-ctx.Done():
			t.Fatalf("webhooks from Clair's notifier: %v (got %v)", ctx.Err(), notes)
		case <-time.After(4 * time.Minute):
			t.Fatalf("webhooks from Clair's notifier: %d in 4 minutes, want %d (it polls and delivers once a minute)", len(notes), n)
		}
		var cb notifierpkg.Callback
		if err := json.Unmarshal(hook, &cb); err != nil {
			t.Fatalf("webhook body %s: %v", hook, err)
		}
		// The callback names the notification (Clair joins the configured
		// URL and its id).
		page := quayGet(ctx, t, op.raw, http.MethodGet, cb.Callback.String())
		var np struct {
			Notifications []notifierpkg.Notification `json:"notifications"`
		}
		if err := json.Unmarshal(page, &np); err != nil {
			t.Fatalf("notification page %s: %v", page, err)
		}
		for _, n := range np.Notifications {
			code := ""
			if n.Vulnerability.Distribution != nil {
				code = n.Vulnerability.Distribution.VersionCodeName
			}
			notes = append(notes, fmt.Sprintf("%s %s %s (%s)", n.Manifest, n.Reason, n.Vulnerability.Name, code))
		}
		quayGet(ctx, t, op.raw, http.MethodDelete, cb.Callback.String())
		callbacks = append(callbacks, cb.Callback.Path)
	}
	return notes, callbacks
}

// quayGet sends a request as Quay does (its JWT: iss quay, five minutes),
// expects 200 and returns the body.
func quayGet(ctx context.Context, t *testing.T, key []byte, method, u string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := (signer{key: key, issuer: "quay"}).Sign(ctx, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %s", method, u, res.Status, b)
	}
	return b
}

// exchange is one request to Stevedore and its answer's status.
type exchange struct {
	Issuer, Method, Path string
	Status               int
}

// recorder is a reverse proxy to Stevedore that records the exchanges, in
// the order they end.
type recorder struct {
	URL string
	mu  sync.Mutex
	log []exchange
}

func newRecorder(t *testing.T, target string) *recorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := exchange{Issuer: issuerOf(r), Method: r.Method, Path: r.URL.Path}
		// Recorded as the answer's header goes out: before the client
		// can have it.
		sw := &statusWriter{ResponseWriter: w, onHeader: func(status int) {
			e.Status = status
			rec.mu.Lock()
			rec.log = append(rec.log, e)
			rec.mu.Unlock()
		}}
		proxy.ServeHTTP(sw, r)
		sw.header(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

// take returns the exchanges recorded since the last call.
func (rec *recorder) take() []exchange {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	l := rec.log
	rec.log = nil
	return l
}

// issuerOf returns the iss claim of a request's bearer token, unverified
// (Stevedore verifies it): "" when there is none.
func issuerOf(r *http.Request) string {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	parsed, err := jwt.ParseSigned(tok)
	if err != nil {
		return "unreadable token"
	}
	var cl jwt.Claims
	if err := parsed.UnsafeClaimsWithoutVerification(&cl); err != nil {
		return "unreadable claims"
	}
	return cl.Issuer
}

// statusWriter calls onHeader with an answer's status before its header
// goes out.
type statusWriter struct {
	http.ResponseWriter
	onHeader func(status int)
	done     bool
}

func (w *statusWriter) header(status int) {
	if !w.done {
		w.done = true
		w.onHeader(status)
	}
}

func (w *statusWriter) WriteHeader(code int) {
	w.header(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.header(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// checkReport decodes clairctl report's JSON output and checks that it
// lists every advisory that applies to the image and none other: glibc's in
// bookworm (not the bullseye one), Flask's fixed in 2.2.5 (not the one fixed
// in 0.12.3, below the installed 2.0.0).
func checkReport(t *testing.T, pass string, out []byte, digest string) *claircore.VulnerabilityReport {
	t.Helper()
	var vr *claircore.VulnerabilityReport
	if err := json.Unmarshal(out, &vr); err != nil {
		t.Fatalf("%s: clairctl report's output is not a vulnerability report: %v\n%s", pass, err, out)
	}
	if vr == nil {
		// clairctl prints null and exits 0 when the matcher fails.
		t.Fatalf("%s: clairctl report printed no report (its error is in its log above): %s", pass, out)
	}
	if vr.Hash.String() != digest {
		t.Errorf("%s: the report is of %s, want %s", pass, vr.Hash, digest)
	}
	want := map[string]string{ // package name -> advisory
		"libc6": "CVE-2023-4911",
		"flask": "CVE-2023-30861",
	}
	got := map[string][]string{}
	for pkgID, vulnIDs := range vr.PackageVulnerabilities {
		p := vr.Packages[pkgID]
		if p == nil {
			t.Errorf("%s: package_vulnerabilities names package %s, absent from packages", pass, pkgID)
			continue
		}
		for _, id := range vulnIDs {
			v := vr.Vulnerabilities[id]
			if v == nil {
				t.Errorf("%s: package %s: vulnerability %s absent from vulnerabilities", pass, p.Name, id)
				continue
			}
			got[p.Name] = append(got[p.Name], v.Name)
			if v.Dist != nil && v.Dist.VersionCodeName != "" && v.Dist.VersionCodeName != "bookworm" {
				t.Errorf("%s: package %s: %s of %s matched in a bookworm image", pass, p.Name, v.Name, v.Dist.PrettyName)
			}
		}
	}
	for pkg, cve := range want {
		if !slices.Equal(got[pkg], []string{cve}) {
			t.Errorf("%s: package %s: vulnerabilities %v, want [%s]", pass, pkg, got[pkg], cve)
		}
	}
	for pkg, cves := range got {
		if _, ok := want[pkg]; !ok {
			t.Errorf("%s: package %s: unexpected vulnerabilities %v", pass, pkg, cves)
		}
	}
	if t.Failed() {
		t.Fatalf("%s: report: %s", pass, out)
	}
	return vr
}

// unaffecting returns the advisories of testdata/updates.jsonl that do not
// apply to the test's image, with IDs of their own.
func unaffecting(t *testing.T) []claircore.Vulnerability {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "updates.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []claircore.Vulnerability
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct{ Vuln claircore.Vulnerability }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("testdata/updates.jsonl: %v", err)
		}
		v := e.Vuln
		dup := slices.ContainsFunc(vs, func(o claircore.Vulnerability) bool {
			return o.Name == v.Name && codename(&o) == codename(&v)
		})
		if !dup && (codename(&v) == "bullseye" || v.Name == "CVE-2018-1000656") {
			v.ID = fmt.Sprintf("unaffecting-%d", len(vs))
			vs = append(vs, v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 {
		t.Fatalf("testdata/updates.jsonl: %d advisories that do not apply, want 2", len(vs))
	}
	return vs
}

// codename is the release code name of a vulnerability's distribution.
func codename(v *claircore.Vulnerability) string {
	if v.Dist == nil {
		return ""
	}
	return v.Dist.VersionCodeName
}

// signer signs requests as Clair's services do (internal/httputil.Signer):
// an HS256 JWT with the pre-shared key, a minute's validity.
type signer struct {
	key    []byte
	issuer string
}

func (s signer) Sign(_ context.Context, req *http.Request) error {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: s.key}, nil)
	if err != nil {
		return err
	}
	now := time.Now()
	tok, err := jwt.Signed(sig).Claims(jwt.Claims{
		Issuer:    s.issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now.Add(-jwt.DefaultLeeway)),
		Expiry:    jwt.NewNumericDate(now.Add(jwt.DefaultLeeway)),
	}).CompactSerialize()
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// build builds pkgs with go build, run in dir, into out.
func build(ctx context.Context, t *testing.T, dir, out string, pkgs ...string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build Clair and Stevedore: %v", err)
	}
	cmd := exec.CommandContext(ctx, goBin, append([]string{"build", "-o", out + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s in %s: %v\n%s", strings.Join(pkgs, " "), dir, err, b)
	}
}

// createDatabase creates a database of its own for this run on the server
// of DATABASE_URL (dropped at the end) and returns its URL.
func createDatabase(ctx context.Context, t *testing.T, prefix string) string {
	t.Helper()
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = defaultDatabaseURL
	}
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("cannot reach Postgres at DATABASE_URL (scripts/test.sh starts it): %v", err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	db := "clairreal_" + prefix + "_" + hex.EncodeToString(b[:])
	ident := pgx.Identifier{db}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("create database %s: %v", db, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop database %s: %v", db, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", db, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("DATABASE_URL: %v", err)
	}
	u.Path = "/" + db
	return u.String()
}

// freeAddr returns a 127.0.0.1 address with a port free a moment ago, for
// a program of the test to listen on. The port is below Linux's ephemeral
// range (32768 and up by default), so that no port the kernel hands out
// meanwhile (to a listener on port 0, such as Stevedore's embedded NATS
// server, or to an outgoing connection) takes it before the program binds.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		port := 20000 + mrand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}
	t.Fatal("no free port found between 20000 and 32000")
	return ""
}

// process is a started program whose exit is watched.
type process struct {
	name   string
	exited chan struct{}
	err    error
}

// start starts a long-running program, stopped (SIGTERM, then SIGKILL
// after 10 s) when the test ends, and killed when the test binary dies
// without ending it; its output is logged then.
func start(t *testing.T, name string, env []string, path string, args ...string) *process {
	t.Helper()
	p := &process{name: name, exited: make(chan struct{})}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	dieWithParent(cmd)
	w := &lockedWriter{buf: &bytes.Buffer{}, mu: make(chan struct{}, 1)}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-p.exited
			}
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("--- %s's output:\n%s", name, w.String())
		}
	})
	return p
}

// lockedWriter is a bytes.Buffer written by a process's stdout and stderr
// copiers at once.
type lockedWriter struct {
	buf *bytes.Buffer
	mu  chan struct{}
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu <- struct{}{}
	defer func() { <-w.mu }()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu <- struct{}{}
	defer func() { <-w.mu }()
	return w.buf.String()
}

// waitReady polls u until it answers 200, for at most two minutes; one of
// procs that exits meanwhile fails the test at once.
func waitReady(ctx context.Context, t *testing.T, what, u string, procs ...*process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
			last = res.Status
		} else {
			last = err.Error()
		}
		for _, p := range procs {
			select {
			case <-p.exited:
				t.Fatalf("%s exited while waiting for %s: %v", p.name, what, p.err)
			default:
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not ready at %s in time: %s", what, u, last)
		case <-tick.C:
		}
	}
}

// run runs a program to its end (bounded by ctx and three minutes) and
// returns its standard output; a failure fails the test with its output.
func run(ctx context.Context, t *testing.T, env []string, path string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	dieWithParent(cmd)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("%s %s:\n%s", filepath.Base(path), strings.Join(args, " "), stderr.String())
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || ctx.Err() != nil {
			t.Fatalf("%s %s: %v (ctx: %v)\nstdout: %s", filepath.Base(path), strings.Join(args, " "), err, ctx.Err(), stdout.Bytes())
		}
		t.Fatal(err)
	}
	return stdout.Bytes()
}

// writeClairConfig writes the Clair configuration name in op.work, for a
// process listening on listen and introspection, whose API takes the PSK
// tokens Quay and clairctl sign; section is the mode's own settings. It
// returns the file's path.
func (op *quayOperator) writeClairConfig(t *testing.T, name, listen, introspection, section string) string {
	t.Helper()
	p := filepath.Join(op.work, name)
	writeFile(t, p, fmt.Sprintf(`http_listen_addr: %q
introspection_addr: %q
log_level: info
auth:
  psk:
    key: %q
    iss: ["quay", "clairctl"]
`, listen, introspection, op.psk)+section)
	return p
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// pushImage serves an in-process registry and pushes an image made of the
// fixtures corpus: a Debian 12 layer (os-release, a dpkg status with glibc
// 2.36-9+deb12u1) and a layer with Flask 2.0.0's wheel metadata. It returns
// the image's reference and manifest digest.
func pushImage(ctx context.Context, t *testing.T) (string, string) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	fixture := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join(root, "testdata", "fixtures", p))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	osLayer := layer(t, map[string][]byte{
		"etc/os-release":      fixture("osrelease/claircore_debian-12_os-release"),
		"var/lib/dpkg/status": fixture("dpkg/syft_status.d_coreutils-relationships"),
	})
	pyLayer := layer(t, map[string][]byte{
		"usr/local/lib/python3.11/site-packages/Flask-2.0.0.dist-info/METADATA": fixture("python/trivy_Flask-2.0.0.dist-info_METADATA"),
	})
	img, err := mutate.AppendLayers(empty.Image, osLayer, pyLayer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	r := strings.TrimPrefix(srv.URL, "http://") + "/stevedore/clairreal:1"
	tag, err := name.NewTag(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push %s: %v", r, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return r, d.String()
}

// layer makes a layer of files (with their parent directories).
func layer(t *testing.T, files map[string][]byte) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		var parents []string
		for d := filepath.Dir(p); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			parents = append(parents, d)
		}
		slices.Reverse(parents)
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, Size: int64(len(files[p]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[p]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}
