package armv6

import (
	"testing"

	"fieldgate/cmd/fieldgate/onarm"
)

// TestOnARMv6 proves the gateway on a 32-bit Pi (onarm.Test).
func TestOnARMv6(t *testing.T) { onarm.Test(t, onarm.ARMv6) }
