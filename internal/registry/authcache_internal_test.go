package registry

import (
	"fmt"
	"testing"
	"time"
)

func TestAuthCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &AuthCache[int]{now: func() time.Time { return now }}
	get := func(key string) string {
		v, ok := c.Get(key)
		if !ok {
			return "none"
		}
		return fmt.Sprint(v)
	}
	steps := []struct {
		name string
		do   func()
		key  string
		want string
	}{
		{"empty", func() {}, "a", "none"},
		{"put", func() { c.Put("a", 1) }, "a", "1"},
		{"other key", func() {}, "b", "none"},
		{"replaced", func() { c.Put("a", 2) }, "a", "2"},
		{"not yet expired", func() { now = now.Add(AuthTTL - time.Second) }, "a", "2"},
		{"expired", func() { now = now.Add(time.Second) }, "a", "none"},
		{"put again", func() { c.Put("a", 3) }, "a", "3"},
		{"delete of another value keeps it", func() { c.Delete("a", func(v int) bool { return v == 2 }) }, "a", "3"},
		{"delete of this value", func() { c.Delete("a", func(v int) bool { return v == 3 }) }, "a", "none"},
		{"full: the oldest goes", func() {
			for i := range maxAuthEntries + 1 {
				now = now.Add(time.Millisecond)
				c.Put(fmt.Sprint("r", i), i)
			}
		}, "r0", "none"},
		{"full: the next oldest stays", func() {}, "r1", "1"},
		{"full: the newest stays", func() {}, fmt.Sprint("r", maxAuthEntries), fmt.Sprint(maxAuthEntries)},
	}
	for _, s := range steps {
		s.do()
		if got := get(s.key); got != s.want {
			t.Errorf("%s: Get(%q) = %s, want %s", s.name, s.key, got, s.want)
		}
	}
	if n := len(c.entries); n != maxAuthEntries {
		t.Errorf("%d entries kept, want the bound %d", n, maxAuthEntries)
	}
}
