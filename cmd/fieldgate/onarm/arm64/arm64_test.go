package arm64

import (
	"testing"

	"fieldgate/cmd/fieldgate/onarm"
)

// TestOnARM64 proves the gateway on a 64-bit Pi (onarm.Test).
func TestOnARM64(t *testing.T) { onarm.Test(t, onarm.ARM64) }
