package harbor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/stevedore-dev/stevedore/report"
)

// scanRef is what a scan request id stands for: the manifest, the SBOM
// media types Harbor asked for, and the artifact as Harbor named it (echoed
// in the report).
type scanRef struct {
	Digest     report.Digest `json:"d"`
	MediaTypes []string      `json:"m"`
	Repository string        `json:"r"`
	Tag        string        `json:"t,omitempty"`
	MimeType   string        `json:"a,omitempty"`
}

// idVersion starts every id this code makes.
const idVersion = "s1"

// maxID bounds an id read (a repository and a tag are at most a few hundred
// bytes).
const maxID = 2048

// idCodec makes and reads scan request ids: "s1." + base64url(JSON of the
// scanRef) + "." + base64url(HMAC-SHA256 of that, 128 bits), keyed by the
// token. An id is a pure function of what it names, so it survives
// restarts and needs no storage, and an id this server did not make (or
// made with another token) does not verify.
type idCodec struct{ key []byte }

func newIDCodec(token string) idCodec {
	k := sha256.Sum256([]byte("stevedore harbor scan request id\x00" + token))
	return idCodec{key: k[:]}
}

func (c idCodec) mac(payload string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(idVersion + "." + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

func (c idCodec) encode(ref scanRef) (string, error) {
	b, err := json.Marshal(ref)
	if err != nil {
		return "", fmt.Errorf("scan request id: %w", err)
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	return idVersion + "." + payload + "." + c.mac(payload), nil
}

var errUnknownID = errors.New("unknown scan request id")

// decode verifies an id and returns what it names; any failure is
// errUnknownID (the id says nothing more to whoever sent it).
func (c idCodec) decode(id string) (scanRef, error) {
	var ref scanRef
	if len(id) > maxID {
		return ref, errUnknownID
	}
	parts := strings.Split(id, ".")
	if len(parts) != 3 || parts[0] != idVersion {
		return ref, errUnknownID
	}
	if !hmac.Equal([]byte(parts[2]), []byte(c.mac(parts[1]))) {
		return ref, errUnknownID
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(b, &ref) != nil {
		return ref, errUnknownID
	}
	if _, err := report.ParseDigest(string(ref.Digest)); err != nil || len(ref.MediaTypes) == 0 {
		return ref, errUnknownID
	}
	return ref, nil
}
