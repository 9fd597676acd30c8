package resolve_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stevedore-dev/stevedore/internal/registry/resolve"
	"github.com/stevedore-dev/stevedore/internal/testing/devregistry"
)

func image(t *testing.T, file string, p v1.Platform) v1.Image {
	l, err := devregistry.LayerFromFiles(map[string][]byte{file: []byte(p.String())})
	if err != nil {
		t.Fatal(err)
	}
	img, err := devregistry.Image(l)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	srv := devregistry.NewTestServer(t)
	amd := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: image(t, "a", amd), Descriptor: v1.Descriptor{Platform: &amd}},
		mutate.IndexAddendum{Add: image(t, "b", arm), Descriptor: v1.Descriptor{Platform: &arm}},
		// An attestation manifest, as BuildKit writes them: skipped.
		mutate.IndexAddendum{Add: image(t, "c", amd), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}}},
	)
	ref, err := name.ParseReference(srv.Ref("multi:1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	single := image(t, "d", amd)
	sref, _ := name.ParseReference(srv.Ref("single:1"))
	if err := remote.Write(sref, single); err != nil {
		t.Fatal(err)
	}
	r := resolve.New()

	for _, tc := range []struct {
		ref, platform string
		want          []string
		err           error
	}{
		{srv.Ref("multi:1"), "", []string{"linux/amd64", "linux/arm64/v8"}, nil},
		{srv.Ref("multi:1"), "linux/arm64", []string{"linux/arm64/v8"}, nil},
		{srv.Ref("multi:1"), "linux/s390x", nil, resolve.ErrInvalid},
		{srv.Ref("multi:1"), "not/a/plat/form", nil, resolve.ErrInvalid},
		{srv.Ref("single:1"), "", []string{"linux/amd64"}, nil},
		{srv.Ref("single:1"), "linux/arm64", nil, resolve.ErrInvalid},
		{"Not A Reference", "", nil, resolve.ErrInvalid},
	} {
		t.Run(tc.ref+"@"+tc.platform, func(t *testing.T) {
			imgs, err := r.Resolve(ctx, tc.ref, tc.platform)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("got %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, img := range imgs {
				got = append(got, img.Platform)
				if err := img.Manifest.Validate(); err != nil {
					t.Fatal(err)
				}
				if len(img.Manifest.Layers) != 1 || img.Manifest.Layers[0].Size == 0 {
					t.Fatalf("layers %+v", img.Manifest.Layers)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("platforms %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("platforms %v, want %v", got, tc.want)
				}
			}
		})
	}
}
