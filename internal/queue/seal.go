package queue

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/stevedore-dev/stevedore/report"
)

// MinJobSecret is the shortest secret a Sealer takes (bytes).
const MinJobSecret = 32

// ErrNotOpened is returned by Sealer.Open for secrets it cannot open: they
// were sealed with another key (a process that made its own key and has
// since restarted, or dispatchers and workers given different keys), or
// they were altered.
var ErrNotOpened = errors.New("the job's sealed layer credentials cannot be opened with this key (sealed by another process's key, or altered)")

// A Sealer keeps the credentials a job's layers carry (their request
// headers and the user information of their URIs, as Clair manifests and
// Harbor scan requests give them) out of the job stream's storage: Seal
// moves them into Job.Sealed, encrypted and authenticated (AES-256-GCM,
// the manifest digest as additional data), and Open puts them back. The
// processes that publish jobs and those that run them must hold the same
// key. With a random nonce per message, one key seals up to 2^32 jobs
// before the chance of a repeated nonce reaches 2^-32.
type Sealer struct{ aead cipher.AEAD }

// NewSealer returns a Sealer whose key is derived (HKDF-SHA256) from
// secret, at least MinJobSecret bytes.
func NewSealer(secret []byte) (*Sealer, error) {
	if len(secret) < MinJobSecret {
		return nil, fmt.Errorf("job key: %d bytes, want at least %d", len(secret), MinJobSecret)
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "stevedore job credentials v1", 32)
	if err != nil {
		return nil, fmt.Errorf("job key: %w", err)
	}
	return newSealer(key)
}

// NewRandomSealer returns a Sealer with a random key of its own, for a
// process that publishes and runs its jobs itself (a node with an embedded
// JetStream server): its sealed jobs can be opened by nothing else, also
// not by the same process after a restart.
func NewRandomSealer() *Sealer {
	key := make([]byte, 32)
	rand.Read(key)
	s, err := newSealer(key)
	if err != nil {
		panic(err) // a 32-byte AES key is always valid
	}
	return s
}

func newSealer(key []byte) (*Sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("job key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("job key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// layerSecret is what Seal takes from one layer.
type layerSecret struct {
	// Layer is the layer's index in the manifest.
	Layer   int         `json:"layer"`
	Headers http.Header `json:"headers,omitempty"`
	// URI is the layer's URI with its user information.
	URI string `json:"uri,omitempty"`
}

// Seal returns j with its layers' credentials sealed into Sealed: a copy
// whose layers have no headers and URIs without user information. A job
// whose layers carry none is returned as it is.
func (s *Sealer) Seal(j *Job) (*Job, error) {
	if j.Manifest == nil {
		return j, nil
	}
	var secrets []layerSecret
	layers := make([]*report.Layer, len(j.Manifest.Layers))
	for i, l := range j.Manifest.Layers {
		layers[i] = l
		if l == nil {
			continue
		}
		u, err := url.Parse(l.URI)
		hasUser := err == nil && u.User != nil
		if len(l.Headers) == 0 && !hasUser {
			continue
		}
		ls := layerSecret{Layer: i, Headers: l.Headers}
		c := *l
		c.Headers = nil
		if hasUser {
			ls.URI = l.URI
			u.User = nil
			c.URI = u.String()
		}
		layers[i] = &c
		secrets = append(secrets, ls)
	}
	if len(secrets) == 0 {
		return j, nil
	}
	plain, err := json.Marshal(secrets)
	if err != nil {
		return nil, fmt.Errorf("seal the credentials of %s: %w", j.Manifest.Hash, err)
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(nonce)
	out := *j
	m := *j.Manifest
	m.Layers = layers
	out.Manifest = &m
	out.Sealed = s.aead.Seal(nonce, nonce, plain, []byte(m.Hash))
	return &out, nil
}

// Open puts the credentials sealed in j back on its layers and clears
// Sealed; a job with nothing sealed is left as it is. An error wrapping
// ErrNotOpened leaves j unchanged; one that says the secrets do not fit
// the manifest also does.
func (s *Sealer) Open(j *Job) error {
	if len(j.Sealed) == 0 || j.Manifest == nil {
		return nil
	}
	ns := s.aead.NonceSize()
	if len(j.Sealed) < ns+s.aead.Overhead() {
		return fmt.Errorf("open the credentials of %s: %w", j.Manifest.Hash, ErrNotOpened)
	}
	plain, err := s.aead.Open(nil, j.Sealed[:ns], j.Sealed[ns:], []byte(j.Manifest.Hash))
	if err != nil {
		return fmt.Errorf("open the credentials of %s: %w", j.Manifest.Hash, ErrNotOpened)
	}
	var secrets []layerSecret
	if err := json.Unmarshal(plain, &secrets); err != nil {
		return fmt.Errorf("open the credentials of %s: %w", j.Manifest.Hash, err)
	}
	layers := make([]*report.Layer, len(j.Manifest.Layers))
	copy(layers, j.Manifest.Layers)
	for _, ls := range secrets {
		if ls.Layer < 0 || ls.Layer >= len(layers) || layers[ls.Layer] == nil {
			return fmt.Errorf("open the credentials of %s: they name layer %d of %d", j.Manifest.Hash, ls.Layer, len(layers))
		}
		c := *layers[ls.Layer]
		c.Headers = ls.Headers
		if ls.URI != "" {
			if stripped(ls.URI) != c.URI {
				return fmt.Errorf("open the credentials of %s: layer %d's URI is not the one they were sealed with", j.Manifest.Hash, ls.Layer)
			}
			c.URI = ls.URI
		}
		layers[ls.Layer] = &c
	}
	m := *j.Manifest
	m.Layers = layers
	j.Manifest, j.Sealed = &m, nil
	return nil
}

// stripped is uri without its user information.
func stripped(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	u.User = nil
	return u.String()
}
