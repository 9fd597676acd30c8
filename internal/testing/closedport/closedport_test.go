package closedport_test

import (
	"net"
	"testing"
	"time"

	"github.com/stevedore-dev/stevedore/internal/testing/closedport"
)

func TestAddrRefusesConnections(t *testing.T) {
	c, err := net.DialTimeout("tcp", closedport.Addr(t), 5*time.Second)
	if err == nil {
		c.Close()
		t.Fatal("a connection to the closed port was accepted")
	}
}
