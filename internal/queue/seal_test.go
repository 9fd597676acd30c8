package queue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/queue"
	"github.com/stevedore-dev/stevedore/internal/testing/natstest"
	"github.com/stevedore-dev/stevedore/report"
)

// The secrets of credentialJob, which must not be found where they are
// sealed.
var jobSecrets = []string{"robot-pw-secret", "bearer-tok-secret", "robot"}

// credentialJob is a job for manifest hexChar… whose first layer carries
// user information in its URI, whose second carries a header and whose
// third carries nothing.
func credentialJob(hexChar string) *queue.Job {
	j := job(hexChar)
	l := func(c string) report.Digest { return report.Digest("sha256:" + strings.Repeat(c, 64)) }
	j.Manifest.Layers = []*report.Layer{
		{Hash: l("1"), URI: "https://robot:robot-pw-secret@r.example/v2/x/blobs/" + string(l("1"))},
		{Hash: l("2"), URI: "https://r.example/v2/x/blobs/" + string(l("2")), Headers: http.Header{"Authorization": {"Bearer bearer-tok-secret"}}},
		{Hash: l("3"), URI: "https://r.example/v2/x/blobs/" + string(l("3"))},
	}
	return j
}

func newSealer(t *testing.T, secret string) *queue.Sealer {
	t.Helper()
	s, err := queue.NewSealer([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealThenOpenGivesTheJobBack(t *testing.T) {
	s := newSealer(t, strings.Repeat("k", queue.MinJobSecret))
	want := credentialJob("a")
	sealed, err := s.Seal(want)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed.Sealed) == 0 {
		t.Fatal("nothing sealed")
	}
	if want.Manifest.Layers[1].Headers == nil || !strings.Contains(want.Manifest.Layers[0].URI, "robot") {
		t.Fatal("Seal changed the job it was given")
	}
	for i, l := range sealed.Manifest.Layers {
		if l.Headers != nil || strings.Contains(l.URI, "@") || l.Hash != want.Manifest.Layers[i].Hash {
			t.Fatalf("sealed layer %d: %+v", i, l)
		}
	}
	enc := encodeJob(t, sealed)
	for _, secret := range jobSecrets {
		if bytes.Contains(enc, []byte(secret)) {
			t.Fatalf("%q in the sealed job: %s", secret, enc)
		}
	}
	got, err := queue.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Manifest, want.Manifest) || got.Sealed != nil {
		t.Fatalf("opened %+v, want %+v", got.Manifest, want.Manifest)
	}
}

func TestSealLeavesAJobWithoutCredentials(t *testing.T) {
	j := job("b")
	sealed, err := newSealer(t, strings.Repeat("k", 40)).Seal(j)
	if err != nil || sealed != j || j.Sealed != nil {
		t.Fatalf("a job without credentials was changed: %+v, %v", sealed, err)
	}
}

func TestOpenRefuses(t *testing.T) {
	key := strings.Repeat("k", queue.MinJobSecret)
	s := newSealer(t, key)
	sealedJob := func(t *testing.T) *queue.Job {
		sealed, err := s.Seal(credentialJob("c"))
		if err != nil {
			t.Fatal(err)
		}
		return sealed
	}
	tests := []struct {
		name   string
		opener *queue.Sealer
		alter  func(j *queue.Job)
		want   string
	}{
		{"another key", newSealer(t, key+"x"), func(*queue.Job) {}, queue.ErrNotOpened.Error()},
		{"a random key", queue.NewRandomSealer(), func(*queue.Job) {}, queue.ErrNotOpened.Error()},
		{"altered", s, func(j *queue.Job) { j.Sealed[len(j.Sealed)-1] ^= 1 }, queue.ErrNotOpened.Error()},
		{"truncated", s, func(j *queue.Job) { j.Sealed = j.Sealed[:5] }, queue.ErrNotOpened.Error()},
		{"moved to another manifest", s, func(j *queue.Job) { j.Manifest.Hash = job("d").Manifest.Hash }, queue.ErrNotOpened.Error()},
		{"a layer fewer", s, func(j *queue.Job) { j.Manifest.Layers = j.Manifest.Layers[:1] }, "they name layer 1 of 1"},
		{"another URI", s, func(j *queue.Job) { j.Manifest.Layers[0].URI = "https://elsewhere.example/x" }, "layer 0's URI is not the one they were sealed with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := sealedJob(t)
			tt.alter(j)
			before := encodeJob(t, j)
			err := tt.opener.Open(j)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if tt.want == queue.ErrNotOpened.Error() && !errors.Is(err, queue.ErrNotOpened) {
				t.Fatalf("%v is not ErrNotOpened", err)
			}
			if !bytes.Equal(encodeJob(t, j), before) {
				t.Fatal("a refused Open changed the job")
			}
		})
	}
}

func TestNewSealerRefusesAShortKey(t *testing.T) {
	if _, err := queue.NewSealer([]byte(strings.Repeat("k", queue.MinJobSecret-1))); err == nil || !strings.Contains(err.Error(), "want at least 32") {
		t.Fatalf("error %v", err)
	}
}

// TestQueuedJobsHoldNoCredentials publishes and schedules a job whose
// layers carry credentials through a real JetStream server with its file
// store: neither the stream's messages nor any file of the store hold them,
// and the worker's side opens them from the message it is given.
func TestQueuedJobsHoldNoCredentials(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	stream, err := queue.EnsureStream(ctx, srv.JS, queue.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s := newSealer(t, strings.Repeat("k", queue.MinJobSecret))
	pub := queue.NewPublisher(srv.JS, nil, queue.WithSealer(s))
	if _, err := pub.Publish(ctx, credentialJob("e")); err != nil {
		t.Fatal(err)
	}
	if err := pub.Schedule(ctx, credentialJob("f"), 2, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{queue.JobSubject(credentialJob("e").Manifest.Hash), queue.RetrySubject(credentialJob("f").Manifest.Hash)} {
		m, err := stream.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			t.Fatal(err)
		}
		checkNoSecret(t, subj, m.Data)
	}
	if found := srv.StoreHolds(t, jobSecrets...); len(found) > 0 {
		t.Errorf("the store holds %q", found)
	}
	got, err := queue.Decode(nextJob(t, srv.JS).Data())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(got); err != nil {
		t.Fatal(err)
	}
	if want := credentialJob("e").Manifest; !reflect.DeepEqual(got.Manifest, want) {
		t.Fatalf("opened %+v, want %+v", got.Manifest, want)
	}
}

// TestUnsealedJobsAreInTheStore is the control of the test above: without
// a sealer, the store holds the credentials, and the check finds them.
func TestUnsealedJobsAreInTheStore(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	if _, err := queue.EnsureStream(ctx, srv.JS, queue.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.NewPublisher(srv.JS, nil).Publish(ctx, credentialJob("e")); err != nil {
		t.Fatal(err)
	}
	if found := srv.StoreHolds(t, jobSecrets...); len(found) == 0 {
		t.Fatal("the unsealed credentials are not in the store: the store check proves nothing")
	}
}

func checkNoSecret(t *testing.T, where string, b []byte) {
	t.Helper()
	for _, secret := range jobSecrets {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%q in %s", secret, where)
		}
	}
}

// FuzzDecodeAndOpen: any message body is decoded and, when it is a job,
// its sealed credentials opened, without a panic; a body that decodes
// and opens gives a manifest that still validates.
func FuzzDecodeAndOpen(f *testing.F) {
	s, err := queue.NewSealer([]byte(strings.Repeat("k", queue.MinJobSecret)))
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := s.Seal(credentialJob("a"))
	if err != nil {
		f.Fatal(err)
	}
	b, err := json.Marshal(sealed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(encodeJob(f, job("b")))
	f.Add([]byte(`{"manifest":{"hash":"sha256:` + strings.Repeat("a", 64) + `"},"sealed":"AAAA"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := queue.Decode(data)
		if err != nil {
			return
		}
		if err := s.Open(j); err != nil {
			return
		}
		if err := j.Manifest.Validate(); err != nil {
			t.Fatalf("opened job does not validate: %v", err)
		}
	})
}

func encodeJob(tb testing.TB, j *queue.Job) []byte {
	tb.Helper()
	b, err := json.Marshal(j)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
